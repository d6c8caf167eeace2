/* Figures of the outliers check: the isolation-ratio histogram with its threshold. */
(function (LA) {
  "use strict";
  LA.register("outlier_hist", function (id, fig, D) {
    var P = LA.points, r = LA.own(P.columns, "outliers.isolation_ratio") || [];
    var thr = D.checks.outliers.tables.threshold;
    Plotly.newPlot(id, [{type: "histogram", nbinsx: 60, marker: {color: LA.palette[0]},
      x: r.map(function (v) { return Math.log10(Math.max(v, 1e-6)); })}],
      {title: {text: "Isolation ratio (log10)" + (P.sampled ? ", on the plotted sample" : "")},
       margin: {l: 50, r: 10, t: 40, b: 40}, yaxis: {type: "log", title: {text: "points"}},
       xaxis: {title: {text: "log10 isolation ratio"}},
       shapes: [{type: "line", x0: Math.log10(thr), x1: Math.log10(thr), yref: "paper", y0: 0, y1: 1,
                 line: {color: "#c62828", dash: "dash"}}],
       annotations: [{x: Math.log10(thr), yref: "paper", y: 1, text: "threshold", showarrow: false,
                      xanchor: "left", font: {color: "#c62828"}}]}, LA.config);
  });
})(window.LatentAudit);
