/* Figures of the clusters check: sizes and per-cluster composition. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, PALETTE = LA.palette;
  LA.register("cluster_sizes", function (id, fig, D) {
    var rows = D.checks.clusters.tables.sizes;
    Plotly.newPlot(id, [{type: "bar",
      x: rows.map(function (r) { return r.cluster < 0 ? "noise" : "c" + r.cluster; }),
      y: rows.map(function (r) { return r.n; }),
      marker: {color: rows.map(function (r) { return LA.clusterColour(r.cluster); })}}],
      {title: {text: "Cluster sizes"}, margin: {l: 50, r: 10, t: 40, b: 40}, yaxis: {title: {text: "points"}}}, LA.config);
  });
  LA.register("composition", function (id, fig, D) {
    var col = fig.column, comp = D.checks.clusters.tables.composition[col];
    var rows = comp.clusters, values = comp.values.slice(0, 25);
    var z = rows.map(function (r) { return values.map(function (v) {
      var t = r.top.filter(function (t) { return t.value === v; })[0]; return t ? t.share : 0; }); });
    Plotly.newPlot(id, [{type: "heatmap", z: z, zmin: 0, zmax: 1, colorscale: [[0, "#f4f7fb"], [1, "#1f4e9c"]],
      x: values.map(function (v) { return esc(short(v, 24)); }),
      y: rows.map(function (r) { return (r.cluster < 0 ? "noise" : "c" + r.cluster) + " (" + r.n + ")"; }),
      hovertemplate: "%{y}<br>%{x}: %{z:.0%}<extra></extra>", colorbar: {title: {text: "share"}}}],
      {title: {text: "Composition of each cluster: " + esc(short(col, 40))},
       margin: {l: 90, r: 10, t: 40, b: 80}, yaxis: {type: "category", autorange: "reversed"}}, LA.config);
  });
})(window.LatentAudit);
