/* Figures of the generator_smoothness check: the step size along every interpolation path,
   and the paths, their jumps and the jump regions in the prior's first two coordinates. */
(function (LA) {
  "use strict";
  var esc = LA.esc, num = LA.num;
  function T(D) { return D.checks.generator_smoothness.tables; }

  // step size ÷ median step along each path (log scale), jumps marked
  LA.register("smoothness_steps", function (id, fig, D) {
    var t = T(D), paths = t.paths || [], S = t.steps, traces = [];
    var jx = [], jy = [], jt = [];
    paths.forEach(function (p, i) {
      var x = p.ratio.map(function (v, s) { return (s + 0.5) / S; });
      var jumping = p.jumps.length > 0;
      traces.push({type: "scatter", mode: "lines", showlegend: false, x: x,
        y: p.ratio.map(function (v) { return v === null ? null : Math.max(v, 1e-3); }),
        line: {width: jumping ? 1.6 : 0.8, color: jumping ? "#c62828" : "#8a94a6"},
        opacity: jumping ? 0.9 : 0.45, hoverinfo: "text",
        text: p.ratio.map(function (v, s) {
          return esc(p.from) + " → " + esc(p.to) + "<br>step " + (s + 1) + ": " + num(v) + "× the median";
        })});
      p.jumps.forEach(function (s) {
        jx.push((s + 0.5) / S); jy.push(Math.max(p.ratio[s] || 1e-3, 1e-3));
        jt.push(esc(p.from) + " → " + esc(p.to) + "<br>jump at step " + (s + 1) + ": " + num(p.ratio[s]) + "× the median");
      });
    });
    traces.push({type: "scatter", mode: "markers", name: "jumps (" + jx.length + ")", x: jx, y: jy,
      text: jt, hoverinfo: "text", marker: {size: 8, symbol: "x", color: "#c62828"}});
    var shapes = [];
    if (typeof t.ratio_threshold === "number") {
      shapes.push({type: "line", xref: "paper", x0: 0, x1: 1, y0: t.ratio_threshold, y1: t.ratio_threshold,
        line: {color: "#c62828", dash: "dash", width: 1}});
    }
    Plotly.newPlot(id, traces, {title: {text: "Step size along each path (÷ the median step)"},
      margin: {l: 50, r: 10, t: 40, b: 40}, hovermode: "closest", shapes: shapes,
      xaxis: {title: {text: "position along the path"}, range: [0, 1]},
      yaxis: {title: {text: "step ÷ median"}, type: "log"}}, LA.config);
  });

  // the paths in the prior's first two coordinates, jump locations and region centres
  LA.register("smoothness_prior", function (id, fig, D) {
    var t = T(D), F = t.prior_paths || {paths: [], jumps: [], centres: []}, traces = [];
    var xs = [], ys = [];
    F.paths.forEach(function (path) {
      path.forEach(function (pt) { xs.push(pt[0]); ys.push(pt[1]); });
      xs.push(null); ys.push(null);
    });
    traces.push({type: "scattergl", mode: "lines", name: "paths (" + F.paths.length + ")", x: xs, y: ys,
      hoverinfo: "skip", line: {width: 0.7, color: "#b8bec8"}});
    var J = F.jumps || [];
    traces.push({type: "scatter", mode: "markers", name: "jumps (" + J.length + ")",
      x: J.map(function (j) { return j.x; }), y: J.map(function (j) { return j.y; }),
      text: J.map(function (j) {
        return "jump on path " + j.path + (j.region === null ? "" : "<br>region " + (j.region + 1)); }),
      hoverinfo: "text", marker: {size: 7, symbol: "x", color: "#c62828"}});
    var C = F.centres || [];
    traces.push({type: "scatter", mode: "markers+text", name: "region centres",
      x: C.map(function (c) { return c.x; }), y: C.map(function (c) { return c.y; }),
      text: C.map(function (c, i) { return c.id ? String(i + 1) : ""; }), textposition: "top center",
      hovertext: C.map(function (c, i) {
        return (c.id ? "<b>" + esc(c.id) + "</b>" : "region " + (i + 1) + " (not confirmed)"); }),
      hoverinfo: "text",
      marker: {size: 16, symbol: "circle-open", line: {width: 3},
        color: C.map(function (c) { return c.flagged ? "#c62828" : "#8a94a6"; })}});
    var dims = F.dims || 2;
    Plotly.newPlot(id, traces, {title: {text: "Interpolation paths and jumps in the prior" +
        (dims > 2 ? " (first two of " + dims + " coordinates)" : "")},
      margin: {l: 40, r: 10, t: 40, b: 40}, hovermode: "closest", showlegend: true,
      xaxis: {title: {text: "z0"}, zeroline: false},
      yaxis: {title: {text: dims > 1 ? "z1" : ""}, zeroline: false}},
      LA.config);
  });
})(window.LatentAudit);
