/* Figures of the coverage check: the joint map of data and reference, per-group coverage
   bars with intervals, and the attribute-combination heatmap. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, PALETTE = LA.palette, hull = LA.hull;

  LA.register("coverage_map", function (id, fig, D) {
    var P = LA.points, R = D.checks.coverage.tables.reference_points;
    function subset(pred) {
      var idx = [];
      for (var i = 0; i < R.ids.length; i++) if (pred(i)) idx.push(i);
      return idx;
    }
    function trace(name, idx, marker) {
      return {type: "scattergl", mode: "markers", name: name + " (" + idx.length + ")",
        x: idx.map(function (i) { return R.x[i]; }), y: idx.map(function (i) { return R.y[i]; }),
        text: idx.map(function (i) { return "<b>" + esc(short(R.ids[i], 80)) + "</b><br>" + name +
          (R.gap[i] >= 0 ? "<br>gap " + (R.gap[i] + 1) : ""); }),
        hoverinfo: "text", marker: marker};
    }
    var traces = [{type: "scattergl", mode: "markers", name: "data (" + P.x.length + ")", hoverinfo: "skip",
      x: P.x, y: P.y, marker: {size: 4, color: "#b8bec8", opacity: 0.5}}];
    traces.push(trace("reference, covered", subset(function (i) { return !R.uncovered[i]; }),
      {size: 4, color: "#5470c6", opacity: 0.5}));
    traces.push(trace("reference, uncovered (scattered)", subset(function (i) { return R.uncovered[i] && R.gap[i] < 0; }),
      {size: 6, color: "#e08a00"}));
    traces.push(trace("reference, uncovered (in a gap)", subset(function (i) { return R.gap[i] >= 0; }),
      {size: 7, color: "#c62828"}));
    // each reported gap region as one outlined area (the convex hull of its points on the
    // map, a ring round a lone point) labelled at its centre, so a reader sees where it is
    var regions = new Map();
    for (var i = 0; i < R.ids.length; i++) if (R.gap[i] >= 0) {
      if (!regions.has(R.gap[i])) regions.set(R.gap[i], []);
      regions.get(R.gap[i]).push([R.x[i], R.y[i]]);
    }
    var xs = R.x.concat(P.x), ys = R.y.concat(P.y);
    var span = Math.max(Math.max.apply(null, xs) - Math.min.apply(null, xs),
                        Math.max.apply(null, ys) - Math.min.apply(null, ys)) || 1;
    var lx = [], ly = [], lt = [];
    Array.from(regions.keys()).sort(function (a, b) { return a - b; }).forEach(function (g, k) {
      var pts = regions.get(g), h = hull(pts), pad = 0.015 * span;
      var cx = pts.reduce(function (s, p) { return s + p[0]; }, 0) / pts.length;
      var cy = pts.reduce(function (s, p) { return s + p[1]; }, 0) / pts.length;
      var ring = h.length >= 3 ? h.map(function (p) {            // pushed out a little
        var dx = p[0] - cx, dy = p[1] - cy, r = Math.sqrt(dx * dx + dy * dy) || 1;
        return [p[0] + pad * dx / r, p[1] + pad * dy / r]; })
        : Array.from({length: 24}, function (_, t) {
            var a = 2 * Math.PI * t / 24, r = pad * 2 + (h.length === 2 ? Math.hypot(h[1][0] - h[0][0], h[1][1] - h[0][1]) / 2 : 0);
            return [cx + r * Math.cos(a), cy + r * Math.sin(a)]; });
      ring.push(ring[0]);
      traces.push({type: "scatter", mode: "lines", fill: "toself", fillcolor: "rgba(198,40,40,0.12)",
        line: {color: "#c62828", width: 1.5}, name: "gap region outline", legendgroup: "gaps",
        showlegend: k === 0, hoverinfo: "text", hoveron: "fills",
        text: "gap " + (g + 1) + ": " + pts.length + " uncovered reference points",
        x: ring.map(function (p) { return p[0]; }), y: ring.map(function (p) { return p[1]; })});
      lx.push(cx); ly.push(cy); lt.push("gap " + (g + 1));
    });
    if (lt.length) traces.push({type: "scatter", mode: "text", x: lx, y: ly, text: lt,
      textfont: {color: "#8e0000", size: 12}, hoverinfo: "skip", showlegend: false, name: "gap labels"});
    Plotly.newPlot(id, traces, {title: {text: "Data and reference on the latent map"},
      margin: {l: 40, r: 10, t: 40, b: 40}, hovermode: "closest", legend: {itemsizing: "constant"},
      xaxis: {zeroline: false}, yaxis: {zeroline: false}}, LA.config);
  });

  LA.register("coverage_groups", function (id, fig, D) {
    var T = D.checks.coverage.tables, rows = T.groups.slice(0, 80);
    var overall = D.checks.coverage.metrics["coverage.coverage"];
    var cols = [];
    rows.forEach(function (r) { if (cols.indexOf(r.column) < 0) cols.push(r.column); });
    var traces = cols.map(function (col, k) {
      var rs = rows.filter(function (r) { return r.column === col; });
      return {type: "bar", orientation: "h", name: esc(short(col, 30)),
        y: rs.map(function (r) { return esc(short(col, 24)) + " = " + esc(short(r.value, 24)); }),
        x: rs.map(function (r) { return r.coverage; }),
        error_x: {type: "data", symmetric: false,
          array: rs.map(function (r) { return r.ci[1] - r.coverage; }),
          arrayminus: rs.map(function (r) { return r.coverage - r.ci[0]; })},
        customdata: rs.map(function (r) { return [r.n, r.covered]; }),
        hovertemplate: "%{y}<br>coverage %{x:.1%} (%{customdata[1]} of %{customdata[0]})<extra></extra>",
        marker: {color: PALETTE[k % PALETTE.length]}};
    });
    Plotly.newPlot(id, traces, {title: {text: "Coverage of the reference by group (95% intervals)"},
      barmode: "group", height: Math.max(320, 22 * rows.length + 90),
      margin: {l: 220, r: 10, t: 40, b: 40}, xaxis: {range: [0, 1.02], tickformat: ".0%"},
      yaxis: {type: "category", autorange: "reversed", automargin: true},
      shapes: [{type: "line", x0: overall, x1: overall, yref: "paper", y0: 0, y1: 1,
                line: {color: "#333", dash: "dash"}}],
      annotations: [{x: overall, yref: "paper", y: 1.02, text: "overall", showarrow: false}]}, LA.config);
  });

  LA.register("coverage_combinations", function (id, fig, D) {
    var C = D.checks.coverage.tables.combinations, div = document.getElementById(id);
    var label = document.createElement("label");
    label.textContent = "Pair ";
    var select = document.createElement("select");
    C.pairs.forEach(function (p, k) {
      var o = document.createElement("option");
      o.value = String(k);
      var nf = 0;
      p.flagged.forEach(function (row) { row.forEach(function (f) { if (f) nf++; }); });
      o.textContent = p.a + " × " + p.b + (nf ? " (" + nf + " flagged)" : "");
      select.appendChild(o);
    });
    label.appendChild(select);
    div.parentNode.insertBefore(label, div);
    function draw() {
      var p = C.pairs[Number(select.value) || 0];
      var z = [], text = [];
      p.observed.forEach(function (row, i) {
        z.push(row.map(function (o, j) {
          var e = p.expected[i][j];
          return Math.max(-4, Math.min(4, Math.log2((o + 0.5) / (e + 0.5))));
        }));
        text.push(row.map(function (o, j) {
          return o + " / " + p.expected[i][j].toFixed(0) + (p.flagged[i][j] ? " ✱" : ""); }));
      });
      Plotly.react(id, [{type: "heatmap", z: z, text: text, texttemplate: "%{text}",
        x: p.cols.map(function (v) { return esc(short(v, 20)); }),
        y: p.rows.map(function (v) { return esc(short(v, 20)); }),
        zmid: 0, zmin: -4, zmax: 4, colorscale: "RdBu", reversescale: false,
        hovertemplate: "%{y} × %{x}<br>observed / expected: %{text}<extra></extra>",
        colorbar: {title: {text: "log2 obs/exp"}}}],
        {title: {text: esc(short(p.a, 30)) + " × " + esc(short(p.b, 30)) +
                 " (expected from " + (C.mode === "reference" ? "the reference" : "independence") + ")"},
         margin: {l: 120, r: 10, t: 40, b: 80},
         xaxis: {type: "category", title: {text: esc(short(p.b, 40))}},
         yaxis: {type: "category", autorange: "reversed", title: {text: esc(short(p.a, 40))}}}, LA.config);
    }
    select.addEventListener("change", draw);
    draw();
  });
})(window.LatentAudit);
