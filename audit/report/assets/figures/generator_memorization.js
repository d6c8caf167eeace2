/* Figures of the generator_memorization check: the copy statistic of the generations
   against the real samples' leave-one-out null, with the near-copy threshold. */
(function (LA) {
  "use strict";
  var esc = LA.esc;
  LA.register("copy_distances", function (id, fig, D) {
    var T = D.checks.generator_memorization.tables, H = T.histogram, e = H.log10_edges;
    var mids = [];
    for (var i = 0; i + 1 < e.length; i++) mids.push((e[i] + e[i + 1]) / 2);
    var width = e.length > 1 ? e[1] - e[0] : 1;
    var what = T.scale === "local" ? "distance to the nearest real sample / its spacing"
                                   : "distance to the nearest real sample";
    var traces = [
      {type: "bar", name: "real samples (leave-one-out)", x: mids, y: H.real, width: width,
       marker: {color: "#5470c6"}, opacity: 0.55},
      {type: "bar", name: "generations", x: mids, y: H.generated, width: width,
       marker: {color: "#e08a00"}, opacity: 0.55}];
    var shapes = [], notes = [];
    if (H.log10_threshold !== null && H.log10_threshold !== undefined) {
      shapes.push({type: "line", x0: H.log10_threshold, x1: H.log10_threshold, yref: "paper", y0: 0, y1: 1,
                   line: {color: "#c62828", dash: "dash"}});
    }
    if (H.zeros.generated > 0 || H.zeros.real > 0) {
      notes.push({xref: "paper", yref: "paper", x: 0, y: 1.02, showarrow: false, xanchor: "left",
        text: esc("exact copies (0): " + (100 * H.zeros.generated).toFixed(1) + "% of generations, " +
                  (100 * H.zeros.real).toFixed(1) + "% of real samples")});
    }
    Plotly.newPlot(id, traces, {title: {text: "Near-copies: " + esc(what)},
      barmode: "overlay", margin: {l: 50, r: 10, t: 50, b: 40}, shapes: shapes, annotations: notes,
      xaxis: {title: {text: "log10 " + esc(what)}}, yaxis: {title: {text: "share"}}}, LA.config);
  });
})(window.LatentAudit);
