/* Figures of the generator_holes check: the prior map, generations at their prior
   coordinates coloured by realism, each prior hole ringed and numbered at its centre. */
(function (LA) {
  "use strict";
  var esc = LA.esc, hull = LA.hull;

  LA.register("prior_map", function (id, fig, D) {
    var T = D.checks.generator_holes.tables, M = T.map, holes = T.holes || [];
    var fmt = function (v) { return v === null || v === undefined ? "–" : Number(v).toPrecision(3); };
    var traces = [{type: "scattergl", mode: "markers", name: "generations (" + M.x.length + ")",
      x: M.x, y: M.y,
      text: M.ids.map(function (g, i) {
        return "<b>" + esc(g) + "</b><br>log10 realism " + fmt(M.log_realism[i]) +
          (M.unrealistic[i] ? "<br>unrealistic" : "") + (M.hole[i] ? "<br>hole " + M.hole[i] : ""); }),
      hoverinfo: "text",
      marker: {size: 5, color: M.log_realism, cmin: -1, cmax: 1, cmid: 0,
               colorscale: [[0, "#b2182b"], [0.5, "#f7f7f7"], [1, "#2166ac"]],
               colorbar: {title: {text: "log10 realism"}, thickness: 12}, opacity: 0.8}}];
    var planar = M.axes[0] === "z0";
    holes.forEach(function (h, k) {
      var xs = [], ys = [];
      for (var i = 0; i < M.hole.length; i++) if (M.hole[i] === k + 1) { xs.push(M.x[i]); ys.push(M.y[i]); }
      traces.push({type: "scattergl", mode: "markers", name: esc(h.id) + " members", hoverinfo: "skip",
        x: xs, y: ys, marker: {size: 9, symbol: "circle-open", color: "#c62828", line: {width: 1}}});
      if (planar && xs.length >= 3) {      // in the prior's own plane, outline the region
        var hp = hull(xs.map(function (x, j) { return [x, ys[j]]; }));
        hp.push(hp[0]);
        traces.push({type: "scatter", mode: "lines", name: esc(h.id) + " outline", hoverinfo: "skip",
          x: hp.map(function (p) { return p[0]; }), y: hp.map(function (p) { return p[1]; }),
          line: {color: "#c62828", width: 2, dash: "dot"}, showlegend: false});
      }
    });
    var notes = [];
    if (holes.length) {       // WebGL traces draw over SVG ones: centres are WebGL too, labels annotations
      traces.push({type: "scattergl", mode: "markers", name: "hole centres",
        x: M.centres.map(function (c) { return c[0]; }), y: M.centres.map(function (c) { return c[1]; }),
        hovertext: holes.map(function (h) {
          return "<b>" + esc(h.id) + "</b><br>prior mass " + (100 * h.prior_mass).toFixed(2) + "%" +
            "<br>unrealistic " + (100 * h.unrealistic_rate).toFixed(0) + "% (outside " +
            fmt(h.rate_outside) + ")<br>p (BH) " + LA.pval(h.p_value); }),
        hoverinfo: "text",
        marker: {size: 16, symbol: "x", color: "#111", line: {width: 1, color: "#fff"}}});
      holes.forEach(function (h, i) {
        notes.push({x: M.centres[i][0], y: M.centres[i][1], text: "<b>hole " + (i + 1) + "</b>",
          showarrow: true, arrowhead: 0, ax: 0, ay: -28, bgcolor: "rgba(255,255,255,0.85)",
          font: {color: "#111", size: 13}});
      });
    }
    Plotly.newPlot(id, traces, {title: {text: "Generations at their prior coordinates, coloured by realism"},
      margin: {l: 50, r: 10, t: 40, b: 40}, hovermode: "closest", showlegend: true,
      legend: {orientation: "h", x: 0, y: -0.28}, annotations: notes,
      xaxis: {title: {text: esc(M.axes[0])}, zeroline: false},
      yaxis: {title: {text: esc(M.axes[1] || "")}, zeroline: false}}, LA.config);
  });
})(window.LatentAudit);
