/* Figures of the holes check: the 2-D map with the hole centres marked. */
(function (LA) {
  "use strict";
  var esc = LA.esc;
  LA.register("holes_map", function (id, fig, D) {
    var P = LA.points, holes = D.checks.holes.tables.holes;
    var fmt = function (v) { return v === null || v === undefined ? "–" : Number(v).toPrecision(3); };
    var traces = [{type: "scattergl", mode: "markers", name: "data", hoverinfo: "skip",
      x: P.x, y: P.y, marker: {size: 4, color: "#b8bec8", opacity: 0.6}}];
    traces.push({type: "scatter", mode: "markers+text", name: "hole centres",
      x: holes.map(function (h) { return h.map[0]; }), y: holes.map(function (h) { return h.map[1]; }),
      text: holes.map(function (h, i) { return String(i + 1); }), textposition: "top center",
      hovertext: holes.map(function (h) {
        return "<b>" + esc(h.id) + "</b><br>radius " + fmt(h.radius) + "<br>observed " + h.observed +
          ", expected " + fmt(h.expected) + "<br>p (BH) " + LA.pval(h.p_value); }),
      hoverinfo: "text",
      marker: {size: 16, symbol: "circle-open", color: "#c62828", line: {width: 3}}});
    Plotly.newPlot(id, traces, {title: {text: "Holes on the latent map" + (P.sampled ? " (data: plotted sample)" : "")},
      margin: {l: 40, r: 10, t: 40, b: 40}, hovermode: "closest", showlegend: true,
      xaxis: {zeroline: false}, yaxis: {zeroline: false}}, LA.config);
  });
})(window.LatentAudit);
