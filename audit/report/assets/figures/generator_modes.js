/* Figures of the generator_modes check: the latent map with the generations and the dropped
   regions of the real data (and of the reference) outlined. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, hull = LA.hull;

  function area(poly) {
    var a = 0;
    for (var i = 0; i < poly.length; i++) {
      var p = poly[i], q = poly[(i + 1) % poly.length];
      a += p[0] * q[1] - q[0] * p[1];
    }
    return Math.abs(a) / 2;
  }

  // the members of each region as markers, an outline round each compact one (a region
  // spread over much of the map gets none: its hull would cover points it does not hold),
  // and its label at the member nearest its centre
  function regionTraces(R, name, colour, fill, prefix, box, where) {
    var out = [], groups = new Map(), span = Math.max(box[0], box[1]);
    for (var i = 0; i < R.ids.length; i++) {
      if (!groups.has(R.region[i])) groups.set(R.region[i], []);
      groups.get(R.region[i]).push(i);
    }
    out.push({type: "scattergl", mode: "markers", name: name + " (" + R.ids.length + ")",
      x: R.x, y: R.y, hoverinfo: "text", marker: {size: 6, color: colour},
      text: R.ids.map(function (s, i) { return "<b>" + esc(short(s, 80)) + "</b><br>" + prefix + " " + (R.region[i] + 1); })});
    var lx = [], ly = [], lt = [], outlined = 0;
    Array.from(groups.keys()).sort(function (a, b) { return a - b; }).forEach(function (g) {
      var pts = groups.get(g).map(function (i) { return [R.x[i], R.y[i]]; });
      var cx = pts.reduce(function (s, q) { return s + q[0]; }, 0) / pts.length;
      var cy = pts.reduce(function (s, q) { return s + q[1]; }, 0) / pts.length;
      var near = pts.reduce(function (b, q) {
        var d = (q[0] - cx) * (q[0] - cx) + (q[1] - cy) * (q[1] - cy);
        return d < b[0] ? [d, q] : b; }, [Infinity, pts[0]])[1];
      lx.push(near[0]); ly.push(near[1]); lt.push(prefix + " " + (g + 1));
      var h = hull(pts), pad = 0.015 * span;
      if (h.length >= 3 && area(h) > 0.05 * box[0] * box[1]) return;     // sprawling
      var ring = h.length >= 3 ? h.map(function (q) {
        var dx = q[0] - cx, dy = q[1] - cy, r = Math.sqrt(dx * dx + dy * dy) || 1;
        return [q[0] + pad * dx / r, q[1] + pad * dy / r]; })
        : Array.from({length: 24}, function (_, s) {
            var a = 2 * Math.PI * s / 24, r = 2 * pad;
            return [cx + r * Math.cos(a), cy + r * Math.sin(a)]; });
      ring.push(ring[0]);
      out.push({type: "scatter", mode: "lines", fill: "toself", fillcolor: fill,
        line: {color: colour, width: 1.5}, name: prefix + " outline", legendgroup: prefix,
        showlegend: outlined++ === 0, hoverinfo: "text", hoveron: "fills",
        text: prefix + " " + (g + 1) + ": " + pts.length + " points",
        x: ring.map(function (q) { return q[0]; }), y: ring.map(function (q) { return q[1]; })});
    });
    if (lt.length) out.push({type: "scatter", mode: "text", x: lx, y: ly, text: lt, showlegend: false,
      textposition: where, textfont: {color: colour, size: 12}, hoverinfo: "skip",
      name: prefix + " labels"});
    return out;
  }

  LA.register("generator_modes_map", function (id, fig, D) {
    var P = LA.points, T = D.checks.generator_modes.tables, G = T.generations;
    var real = T.real && T.real.points, ref = T.reference && T.reference.points;
    var lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
    [[P.x, P.y], [G.x, G.y]].forEach(function (xy) {
      for (var i = 0; i < xy[0].length; i++) {
        lo[0] = Math.min(lo[0], xy[0][i]); hi[0] = Math.max(hi[0], xy[0][i]);
        lo[1] = Math.min(lo[1], xy[1][i]); hi[1] = Math.max(hi[1], xy[1][i]);
      }
    });
    var box = [hi[0] - lo[0], hi[1] - lo[1]].map(function (v) { return isFinite(v) && v > 0 ? v : 1; });
    var traces = [{type: "scattergl", mode: "markers", name: "real data (" + P.x.length + ")",
      hoverinfo: "skip", x: P.x, y: P.y, marker: {size: 4, color: "#b8bec8", opacity: 0.5}}];
    if (ref) traces.push({type: "scattergl", mode: "markers", name: "reference (" + ref.rest_x.length + ")",
      hoverinfo: "skip", x: ref.rest_x, y: ref.rest_y, marker: {size: 4, color: "#c9b3e6", opacity: 0.5}});
    traces.push({type: "scattergl", mode: "markers", name: "generations (" + G.x.length + ")",
      hoverinfo: "skip", x: G.x, y: G.y, marker: {size: 3, color: "#5470c6", opacity: 0.45}});
    if (real && real.ids.length) traces = traces.concat(regionTraces(real, "real, dropped", "#c62828",
      "rgba(198,40,40,0.12)", "mode", box, "top center"));
    if (ref && ref.ids.length) traces = traces.concat(regionTraces(ref, "reference, dropped", "#6a1b9a",
      "rgba(106,27,154,0.12)", "reference mode", box, "bottom center"));
    var note = [];
    if (G.sampled) note.push("generations: a sample of " + G.shown);
    if (P.sampled) note.push("data: plotted sample");
    Plotly.newPlot(id, traces, {title: {text: "Dropped modes on the latent map" +
        (note.length ? " (" + note.join("; ") + ")" : "")},
      margin: {l: 40, r: 10, t: 40, b: 40}, hovermode: "closest", legend: {itemsizing: "constant"},
      xaxis: {zeroline: false}, yaxis: {zeroline: false}}, LA.config);
  });
})(window.LatentAudit);
