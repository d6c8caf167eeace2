/* Figures of the generator_fidelity check: the generations on the latent map, coloured by
   their realism score (log scale, 1 = the edge of the real data's tighter balls). */
(function (LA) {
  "use strict";
  var esc = LA.esc;
  LA.register("generator_fidelity_map", function (id, fig, D) {
    var P = LA.points, T = D.checks.generator_fidelity.tables, M = T.map;
    var realism = M.realism;
    // log2 of realism, clipped to [-3, 3]; null is an infinite score (a copy of a real point)
    var colour = realism.map(function (v) {
      return v === null ? 3 : Math.max(-3, Math.min(3, Math.log2(Math.max(v, 1e-9)))); });
    var fmt = function (v) { return v === null ? "∞" : Number(v).toPrecision(3); };
    var traces = [{type: "scattergl", mode: "markers", name: "real data (" + P.x.length + ")",
      hoverinfo: "skip", x: P.x, y: P.y, marker: {size: 4, color: "#b8bec8", opacity: 0.5}}];
    traces.push({type: "scattergl", mode: "markers", name: "generations (" + M.rows.length + ")",
      x: M.x, y: M.y,
      text: M.rows.map(function (i, j) { return "<b>gen-" + i + "</b><br>realism " + esc(fmt(realism[j])); }),
      hoverinfo: "text",
      marker: {size: 5, color: colour, cmin: -3, cmax: 3, opacity: 0.85,
        colorscale: [[0, "#b2182b"], [0.5, "#f7f7f7"], [1, "#2166ac"]],
        colorbar: {title: {text: "realism"}, tickvals: [-3, -2, -1, 0, 1, 2, 3],
          ticktext: ["≤1/8", "1/4", "1/2", "1", "2", "4", "≥8"]}}});
    var note = [];
    if (M.sampled) note.push("a sample of " + M.shown + " of " + M.n + " generations");
    if (P.sampled) note.push("data: plotted sample");
    Plotly.newPlot(id, traces, {title: {text: "Generations on the latent map, by realism" +
        (note.length ? " (" + note.join("; ") + ")" : "")},
      margin: {l: 40, r: 10, t: 40, b: 40}, hovermode: "closest",
      legend: {itemsizing: "constant", orientation: "h", x: 0, y: -0.12},
      xaxis: {zeroline: false}, yaxis: {zeroline: false}}, LA.config);
  });
})(window.LatentAudit);
