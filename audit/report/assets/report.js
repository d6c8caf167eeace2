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
  // every numeric per-sample column of the checks, keyed "<check>.<column>"; booleans come
  // packed as u8 (audit/report/html.py pack_array)
  var BOOLEAN = new Set();
  Object.keys(P.columns).forEach(function (k) {
    if (P.columns[k].$packed === "u8") BOOLEAN.add(k);
    P.columns[k] = plain(P.columns[k]);
  });
  // the columns the map itself uses, by name
  var CLUSTER = own(P.columns, "clusters.cluster"), RATIO = own(P.columns, "outliers.isolation_ratio"),
    GLOSH = own(P.columns, "outliers.glosh");
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
    return safe(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function short(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  // convex hull (Andrew's monotone chain) of [x, y] points: the outline of a region on a map
  function hull(pts) {
    var p = pts.slice().sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    if (p.length < 3) return p;
    function cross(o, a, b) { return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]); }
    var lo = [], hi = [];
    p.forEach(function (q) {
      while (lo.length >= 2 && cross(lo[lo.length - 2], lo[lo.length - 1], q) <= 0) lo.pop();
      lo.push(q);
    });
    p.slice().reverse().forEach(function (q) {
      while (hi.length >= 2 && cross(hi[hi.length - 2], hi[hi.length - 1], q) <= 0) hi.pop();
      hi.push(q);
    });
    return lo.slice(0, -1).concat(hi.slice(0, -1));
  }

  // User data never keys a plain object: lookups go through Map, or through ``own`` on the
  // parsed JSON (whose keys are own properties), so "__proto__", "constructor" or
  // "toString" are ordinary names. plotly.js keys its category axes and legends with plain
  // objects, so a label equal to an Object.prototype member gets a zero-width space appended
  // (``safe``; invisible, and applied by ``esc`` to every user string drawn by plotly).
  function own(o, k) { return o != null && Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined; }
  function safe(s) {
    s = String(s);
    return s === "__proto__" || s in Object.prototype || s in Function.prototype ? s + "\u200b" : s;
  }
  // numbers in hover text and labels: about 3 significant digits
  function num(v, d) {
    if (v === null || v === undefined || (typeof v === "number" && isNaN(v))) return "–";
    v = Number(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential((d || 3) - 1);
    return String(Number(v.toPrecision(d || 3)));
  }
  // p-values: never "0" (a p below the smallest double prints as "< 1e-300")
  function pval(p) {
    if (p === null || p === undefined) return "–";
    if (p < 1e-300) return "< 1e-300";
    return p < 1e-3 ? p.toExponential(1) : p.toPrecision(2);
  }
  // one colour per cluster, shared by the map and every cluster chart; noise is grey
  var NOISE = "#b0b0b0";
  function clusterColour(c) { c = Number(c); return c < 0 ? NOISE : PALETTE[c % PALETTE.length]; }
  function clusterName(c) { return Number(c) < 0 ? "noise" : "cluster " + c; }

  // ---- the map -------------------------------------------------------------------------
  var hover = [];
  for (var i = 0; i < P.ids.length; i++) {
    var parts = ["<b>" + esc(short(P.ids[i], 80)) + "</b>"];
    P.color_by.forEach(function (c) {
      var v = P.metadata[c].values[i];
      parts.push(esc(short(c, 30)) + ": " + esc(short(v === null ? "<missing>" : (typeof v === "number" ? num(v) : v), 60)));
    });
    if (CLUSTER) parts.push("cluster: " + clusterName(CLUSTER[i]).replace("cluster ", ""));
    if (RATIO) parts.push("isolation ratio: " + num(RATIO[i]));
    hover.push(parts.join("<br>"));
  }
  var modes = [];
  if (CLUSTER) modes.push({label: "cluster", kind: "categorical",
    values: CLUSTER.map(clusterName),
    colour: function (cat) { return cat === "noise" ? NOISE : clusterColour(cat.replace("cluster ", "")); }});
  P.color_by.forEach(function (c) {
    var m = P.metadata[c];
    modes.push({label: c, kind: m.kind, values: m.values});
  });
  if (RATIO) modes.push({label: "outlier score (log10 isolation ratio)",
    kind: "numeric", values: RATIO.map(function (v) { return Math.log10(Math.max(v, 1e-6)); })});
  if (GLOSH) modes.push({label: "GLOSH outlier score", kind: "numeric", values: GLOSH});
  // every other per-sample column a check returned: flags as categories, numbers on a scale
  Object.keys(P.columns).forEach(function (k) {
    if (k === "clusters.cluster" || k === "outliers.isolation_ratio" || k === "outliers.glosh") return;
    var v = P.columns[k];
    if (BOOLEAN.has(k)) {
      modes.push({label: k, kind: "categorical", values: v.map(function (b) { return b ? "yes" : "no"; })});
    } else {
      modes.push({label: k, kind: "numeric", values: v.map(function (x) { return isNaN(x) ? null : x; })});
    }
  });
  if (!modes.length) modes.push({label: "none", kind: "none", values: []});

  var select = document.getElementById("colour-by");
  modes.forEach(function (m, k) {
    var o = document.createElement("option");
    o.value = String(k); o.textContent = m.label; select.appendChild(o);
  });
  var highlight = null;
  var OTHER = {other: true};                       // the "(other)" group: no user value equals it
  // a categorical column whose values are all CSS colour names ("green", "#0a0") is drawn in
  // those colours, so legend, hover and marker agree; other columns take the palette in order
  var cssColour = (function () {
    var probe = document.createElement("span"), seen = new Map();
    return function (v) {
      if (typeof v !== "string" || !/^(#[0-9a-f]{3,8}|[a-z]{3,20})$/i.test(v)) return null;
      if (!seen.has(v)) {
        probe.style.color = ""; probe.style.color = v;
        seen.set(v, probe.style.color ? v : null);
      }
      return seen.get(v);
    };
  })();
  function categoryColours(cats) {
    var real = cats.filter(function (c) { return c !== OTHER && c !== "<missing>"; });
    var named = real.length > 0 && real.every(function (c) { return cssColour(c) !== null; });
    return function (cat, k) {
      if (cat === "<missing>") return "#b0b0b0";
      return named ? cssColour(cat) : PALETTE[k % PALETTE.length];
    };
  }
  function isLight(col) {
    var probe = document.createElement("canvas").getContext("2d");
    probe.fillStyle = "#000"; probe.fillStyle = col;
    var h = probe.fillStyle;                        // "#rrggbb" or "rgba(...)"
    var m = /^#(..)(..)(..)$/.exec(h);
    if (!m) return false;
    var r = parseInt(m[1], 16), g = parseInt(m[2], 16), b = parseInt(m[3], 16);
    return 0.299 * r + 0.587 * g + 0.114 * b > 215;
  }

  function mapTraces(mode) {
    var base = {type: "scattergl", mode: "markers", hoverinfo: "text", hoverlabel: {align: "left"}};
    var traces = densityTrace ? [densityTrace] : [];
    if (mode.kind === "categorical") {
      var counts = new Map();
      mode.values.forEach(function (v) { counts.set(v, (counts.get(v) || 0) + 1); });
      var cats = Array.from(counts.keys()).sort(function (a, b) { return counts.get(b) - counts.get(a); });
      var keep = new Set(cats.slice(0, 19)), other = cats.length > 19;
      var groups = new Map();
      mode.values.forEach(function (v, i) {
        var key = keep.has(v) ? v : OTHER;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(i);
      });
      var shown = cats.slice(0, 19).concat(other ? [OTHER] : []);
      var colourOf = mode.colour || categoryColours(shown);
      shown.forEach(function (cat, k) {
        var idx = groups.get(cat) || [], col = cat === OTHER ? "#6e7074" : colourOf(cat, k);
        traces.push(Object.assign({}, base, {
          name: esc(short(cat === OTHER ? "(other)" : cat, 40)) + " (" + idx.length + ")",
          x: idx.map(function (i) { return P.x[i]; }), y: idx.map(function (i) { return P.y[i]; }),
          text: idx.map(function (i) { return hover[i]; }), customdata: idx,
          marker: {size: 5, opacity: 0.75, color: col,
                   line: isLight(col) ? {width: 0.5, color: "#555"} : {width: 0}}
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
  // the legend starts below the top margin, where the modebar sits, so nothing covers it
  var mapLayout = {margin: {l: 40, r: 10, t: 36, b: 40}, hovermode: "closest",
    legend: {itemsizing: "constant", y: 1, yanchor: "top"}, xaxis: {zeroline: false}, yaxis: {zeroline: false}};
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
      var thumb = own(D.thumbnails, id);
      if (thumb) { img.src = thumb; img.hidden = false; } else { img.hidden = true; }
      txt.textContent = "";
      var lines = [id].concat(P.color_by.map(function (c) {
        var v = P.metadata[c].values[i];
        return c + ": " + (v === null ? "<missing>" : (typeof v === "number" ? num(v) : v)); }));
      if (CLUSTER) lines.push("cluster: " + clusterName(CLUSTER[i]).replace("cluster ", ""));
      if (RATIO) lines.push("isolation ratio: " + num(RATIO[i]));
      lines.forEach(function (l, k) { var d = document.createElement("div"); d.textContent = l;
        if (k === 0) d.style.fontWeight = "600"; txt.appendChild(d); });
      var muted = document.querySelector("#hover-panel > .muted");
      if (muted) muted.textContent = thumb ? "" : "(no thumbnail for this point)";
    });
  }

  // ---- "show on map" for a finding's evidence ---------------------------------------------
  var pos = new Map();
  P.ids.forEach(function (id, i) { pos.set(id, i); });
  var findingIds = new Map();
  D.findings.forEach(function (f) { findingIds.set(f.id, f.evidence_ids); });
  document.querySelectorAll("button.show").forEach(function (b) {
    b.addEventListener("click", function () {
      var ev = findingIds.get(b.getAttribute("data-finding")) || [];
      var idx = ev.map(function (e) { return pos.get(e); }).filter(function (i) { return i !== undefined; });
      highlight = {type: "scattergl", mode: "markers", name: "evidence", hoverinfo: "text",
        x: idx.map(function (i) { return P.x[i]; }), y: idx.map(function (i) { return P.y[i]; }),
        text: idx.map(function (i) { return hover[i]; }), customdata: idx,
        marker: {size: 13, color: "rgba(0,0,0,0)", line: {color: "#d00", width: 2}}};
      drawMap();
      document.getElementById("map").scrollIntoView({behavior: "smooth"});
    });
  });

  // figures in a folded <details> are drawn while hidden: resize them when it opens
  document.querySelectorAll("details").forEach(function (d) {
    d.addEventListener("toggle", function () {
      if (!d.open) return;
      d.querySelectorAll(".js-plotly-plot").forEach(function (g) { Plotly.Plots.resize(g); });
    });
  });

  // ---- the figure registry --------------------------------------------------------------
  // Kinds are namespaced per check: the page runs LatentAudit.forCheck("<check>") before
  // figures/<check>.js, whose register("kind", fn) then draws that check's figures of that
  // kind only, so two checks may use one kind name without clashing; one script
  // registering a kind twice is an error. Built-in kinds (below) serve every check.
  var drawers = new Map(), BUILTIN = "", scope = BUILTIN;
  function drawer(check, kind) {
    return drawers.get(check + "/" + kind) || drawers.get(BUILTIN + "/" + kind);
  }
  function register(kind, fn) {
    var key = scope + "/" + kind;
    if (drawers.has(key)) {
      throw new Error("figure kind " + kind + " is registered twice" +
                      (scope ? " by figures/" + scope + ".js" : " (built in)"));
    }
    drawers.set(key, fn);
  }
  // built in: a histogram of one of the check's per-sample columns (on the drawn points),
  // {"kind": "histogram", "column": "<column>", "title": ..., "threshold": ..., "log_y": ...}
  register("histogram", function (id, fig, D) {
    var v = own(P.columns, fig.check + "." + fig.column) || [];
    var layout = {title: {text: esc(fig.title || fig.column) + (P.sampled ? ", on the plotted sample" : "")},
      margin: {l: 50, r: 10, t: 40, b: 40}, xaxis: {title: {text: esc(fig.column)}},
      yaxis: {title: {text: "points"}, type: fig.log_y ? "log" : "linear"}};
    if (typeof fig.threshold === "number") {
      layout.shapes = [{type: "line", x0: fig.threshold, x1: fig.threshold, yref: "paper", y0: 0, y1: 1,
                        line: {color: "#c62828", dash: "dash"}}];
    }
    Plotly.newPlot(id, [{type: "histogram", nbinsx: 60, marker: {color: PALETTE[0]},
      x: v.filter(function (x) { return !isNaN(x); })}], layout, CONFIG);
  });
  window.LatentAudit = {
    data: D, points: P, densityTrace: densityTrace, unpack: unpack, esc: esc, short: short, palette: PALETTE, config: CONFIG,
    own: own, safe: safe, num: num, pval: pval, clusterColour: clusterColour, clusterName: clusterName,
    categoryColours: categoryColours, hull: hull,
    forCheck: function (check) { scope = String(check); },
    register: register,
    drawer: drawer,
    drawAll: function () {
      D.figures.forEach(function (f) {
        if (f.kind === "map") { drawMap(); bindHover(); return; }
        var fn = drawer(f.check, f.kind);
        if (!fn) { console.warn("no drawer for figure kind " + f.kind + " of check " + f.check); return; }
        try { fn(f.id, f, D); } catch (e) { console.error("figure " + f.id + ": " + e); }
      });
    }
  };
})();

// The sticky nav wraps onto more lines when a run has many checks: anchor jumps keep each
// heading below it by measuring it (scroll-margin-top reads --nav-h).
(function () {
  function navHeight() {
    var nav = document.querySelector("nav");
    if (nav) document.documentElement.style.setProperty("--nav-h", nav.offsetHeight + "px");
  }
  navHeight();
  window.addEventListener("resize", navHeight);
  document.addEventListener("DOMContentLoaded", navHeight);
})();
