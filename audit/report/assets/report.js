/* latent-audit report: draws the figures from the embedded JSON. User strings are escaped
   before they reach plotly (which renders a subset of HTML in labels) and set with
   textContent elsewhere, so metadata can never inject markup or script. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("audit-data").textContent);
  var P = D.points;

  // ---- per-point arrays come packed (base64 little-endian typed arrays, see
  // audit/report/html.py pack_array); turn them back into plain arrays -------------------
  var TYPED = {f32: Float32Array, i8: Int8Array, i16: Int16Array, i32: Int32Array,
    u32: Uint32Array, u8: Uint8Array};
  function unpack(o) {
    if (!o || o.$packed === undefined) return o;
    var s = atob(o.b64), bytes = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return new TYPED[o.$packed](bytes.buffer);
  }
  function plain(o) { return Array.prototype.slice.call(unpack(o)); }
  P.x = plain(P.x); P.y = plain(P.y);
  Object.keys(P.columns).forEach(function (k) { P.columns[k] = plain(P.columns[k]); });
  Object.keys(P.metadata).forEach(function (c) {
    var m = P.metadata[c];
    if (m.kind === "numeric") {
      m.values = plain(m.values).map(function (v) { return isNaN(v) ? null : v; });
    } else {
      var cats = m.categories;
      m.values = plain(m.codes).map(function (k) { return k < 0 ? "<missing>" : cats[k]; });
    }
  });
  // the density of all N points, drawn under a sampled map (null when every point is drawn)
  var densityTrace = null;
  if (P.density) {
    var G = P.density, counts = unpack(G.counts), ny = G.counts.shape[0], nx = G.counts.shape[1];
    var z = [];
    for (var r = 0; r < ny; r++) {
      var row = new Array(nx);
      for (var q = 0; q < nx; q++) { var c = counts[r * nx + q]; row[q] = c > 0 ? Math.log10(c) : null; }
      z.push(row);
    }
    densityTrace = {type: "heatmap", name: "density of all " + G.n.toLocaleString("en-US") + " points",
      x0: G.x0, dx: G.dx, y0: G.y0, dy: G.dy, z: z, zsmooth: false, hoverinfo: "skip",
      showscale: false, showlegend: true, opacity: 0.85,
      colorscale: [[0, "#eceef3"], [1, "#5f6675"]]};
  }
  var PALETTE = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452",
    "#9a60b4", "#ea7ccc", "#2f4554", "#c23531", "#61a0a8", "#d48265", "#749f83", "#ca8622",
    "#bda29a", "#6e7074", "#546570", "#c4ccd3", "#0b7a75"];
  var CONFIG = {displaylogo: false, responsive: true};

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function short(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // ---- the map -------------------------------------------------------------------------
  var hover = [];
  for (var i = 0; i < P.ids.length; i++) {
    var parts = ["<b>" + esc(short(P.ids[i], 80)) + "</b>"];
    P.color_by.forEach(function (c) {
      var v = P.metadata[c].values[i];
      parts.push(esc(short(c, 30)) + ": " + esc(short(v === null ? "<missing>" : v, 60)));
    });
    if (P.columns.cluster) parts.push("cluster: " + P.columns.cluster[i]);
    if (P.columns.isolation_ratio) parts.push("isolation ratio: " + P.columns.isolation_ratio[i].toFixed(2));
    hover.push(parts.join("<br>"));
  }
  var modes = [];
  if (P.columns.cluster) modes.push({label: "cluster", kind: "categorical",
    values: P.columns.cluster.map(function (c) { return c < 0 ? "noise" : "cluster " + c; })});
  P.color_by.forEach(function (c) {
    var m = P.metadata[c];
    modes.push({label: c, kind: m.kind, values: m.values});
  });
  if (P.columns.isolation_ratio) modes.push({label: "outlier score (log10 isolation ratio)",
    kind: "numeric", values: P.columns.isolation_ratio.map(function (v) { return Math.log10(Math.max(v, 1e-6)); })});
  if (P.columns.glosh) modes.push({label: "GLOSH outlier score", kind: "numeric", values: P.columns.glosh});
  if (!modes.length) modes.push({label: "none", kind: "none", values: []});

  var select = document.getElementById("colour-by");
  modes.forEach(function (m, k) {
    var o = document.createElement("option");
    o.value = String(k); o.textContent = m.label; select.appendChild(o);
  });
  var highlight = null;

  function mapTraces(mode) {
    var base = {type: "scattergl", mode: "markers", hoverinfo: "text", hoverlabel: {align: "left"}};
    var traces = densityTrace ? [densityTrace] : [];
    if (mode.kind === "categorical") {
      var counts = {};
      mode.values.forEach(function (v) { counts[v] = (counts[v] || 0) + 1; });
      var cats = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a]; });
      var keep = cats.slice(0, 19), other = cats.length > 19;
      var groups = {};
      mode.values.forEach(function (v, i) {
        var key = keep.indexOf(v) >= 0 ? v : "(other)";
        (groups[key] = groups[key] || []).push(i);
      });
      (other ? keep.concat(["(other)"]) : keep).forEach(function (cat, k) {
        var idx = groups[cat] || [];
        traces.push(Object.assign({}, base, {
          name: esc(short(cat, 40)) + " (" + idx.length + ")",
          x: idx.map(function (i) { return P.x[i]; }), y: idx.map(function (i) { return P.y[i]; }),
          text: idx.map(function (i) { return hover[i]; }), customdata: idx,
          marker: {size: 5, opacity: 0.75, color: cat === "noise" ? "#b0b0b0" : PALETTE[k % PALETTE.length]}
        }));
      });
    } else {
      var vals = mode.kind === "numeric" ? mode.values : null;
      traces.push(Object.assign({}, base, {
        name: "points", x: P.x, y: P.y, text: hover, customdata: P.x.map(function (_, i) { return i; }),
        marker: vals ? {size: 5, opacity: 0.8, color: vals, colorscale: "Viridis", showscale: true,
                        colorbar: {title: {text: esc(short(mode.label, 30))}}}
                     : {size: 5, opacity: 0.75, color: PALETTE[0]}
      }));
    }
    if (highlight) traces.push(highlight);
    return traces;
  }
  var mapLayout = {margin: {l: 40, r: 10, t: 10, b: 40}, hovermode: "closest",
    legend: {itemsizing: "constant"}, xaxis: {zeroline: false}, yaxis: {zeroline: false}};
  function drawMap() {
    Plotly.react("fig-map", mapTraces(modes[Number(select.value) || 0]), mapLayout, CONFIG);
  }
  select.addEventListener("change", drawMap);

  // ---- hover panel with thumbnails --------------------------------------------------------
  function bindHover() {
    var div = document.getElementById("fig-map");
    div.on("plotly_hover", function (ev) {
      var pt = ev.points[0]; if (!pt || pt.customdata === undefined) return;
      var i = pt.customdata, id = P.ids[i];
      var img = document.getElementById("hover-img"), txt = document.getElementById("hover-text");
      var thumb = D.thumbnails[id];
      if (thumb) { img.src = thumb; img.hidden = false; } else { img.hidden = true; }
      txt.textContent = "";
      var lines = [id].concat(P.color_by.map(function (c) {
        var v = P.metadata[c].values[i]; return c + ": " + (v === null ? "<missing>" : v); }));
      lines.forEach(function (l, k) { var d = document.createElement("div"); d.textContent = l;
        if (k === 0) d.style.fontWeight = "600"; txt.appendChild(d); });
      var muted = document.querySelector("#hover-panel > .muted");
      if (muted) muted.textContent = thumb ? "" : "(no thumbnail for this point)";
    });
  }

  // ---- "show on map" for a finding's evidence ---------------------------------------------
  var pos = {};
  P.ids.forEach(function (id, i) { pos[id] = i; });
  var findingIds = {};
  D.findings.forEach(function (f) { findingIds[f.id] = f.evidence_ids; });
  document.querySelectorAll("button.show").forEach(function (b) {
    b.addEventListener("click", function () {
      var ev = findingIds[b.getAttribute("data-finding")] || [];
      var idx = ev.map(function (e) { return pos[e]; }).filter(function (i) { return i !== undefined; });
      highlight = {type: "scattergl", mode: "markers", name: "evidence", hoverinfo: "text",
        x: idx.map(function (i) { return P.x[i]; }), y: idx.map(function (i) { return P.y[i]; }),
        text: idx.map(function (i) { return hover[i]; }), customdata: idx,
        marker: {size: 13, color: "rgba(0,0,0,0)", line: {color: "#d00", width: 2}}};
      drawMap();
      document.getElementById("map").scrollIntoView({behavior: "smooth"});
    });
  });

  // ---- the figure registry: each check's script registers the kinds it draws ------------
  var drawers = {};
  window.LatentAudit = {
    data: D, points: P, densityTrace: densityTrace, unpack: unpack, esc: esc, short: short, palette: PALETTE, config: CONFIG,
    register: function (kind, fn) { drawers[kind] = fn; },
    drawAll: function () {
      D.figures.forEach(function (f) {
        if (f.kind === "map") { drawMap(); bindHover(); return; }
        var fn = drawers[f.kind];
        if (!fn) { console.warn("no drawer for figure kind " + f.kind); return; }
        fn(f.id, f, D);
      });
    }
  };
})();
