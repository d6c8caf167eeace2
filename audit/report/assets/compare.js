/* latent-audit compare: draws both maps and the cluster mapping from the embedded JSON.
   User strings are escaped before they reach plotly (which renders a subset of HTML in
   labels) and set with textContent elsewhere; user data never keys a plain object (Map). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("compare-data").textContent);
  var P = D.points;

  // per-point arrays come packed (audit/report/html.py pack_array)
  var TYPED = {f32: Float32Array, i8: Int8Array, i16: Int16Array, i32: Int32Array,
    u32: Uint32Array, u8: Uint8Array};
  function unpack(o) {
    if (!o || o.$packed === undefined) return o;
    var s = atob(o.b64), bytes = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return new TYPED[o.$packed](bytes.buffer);
  }
  function plain(o) { return Array.prototype.slice.call(unpack(o)); }
  // plotly keys category axes and legends with plain objects: a label equal to an
  // Object.prototype member gets an invisible zero-width space (as in report.js)
  function safe(s) {
    s = String(s);
    return s === "__proto__" || s in Object.prototype || s in Function.prototype ? s + "\u200b" : s;
  }
  function esc(s) {
    return safe(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function short(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  function num(v) {
    if (v === null || v === undefined || (typeof v === "number" && isNaN(v))) return "–";
    return String(Number(Number(v).toPrecision(3)));
  }
  var CONFIG = {displaylogo: false, responsive: true};
  // low score (the neighbourhood fell apart) stands out in red; unchanged fades to grey-blue
  var SCORE_SCALE = [[0, "#b71c1c"], [0.5, "#f2a93b"], [1, "#c5cde0"]];

  var n = P.ids.length;
  var score = n ? plain(P.score).map(function (v) { return isNaN(v) ? null : v; }) : [];
  var bxy = n ? plain(P.base_xy) : [], cxy = n ? plain(P.cand_xy) : [];
  var X = {base: [], cand: []}, Y = {base: [], cand: []};
  for (var i = 0; i < n; i++) {
    X.base.push(bxy[2 * i]); Y.base.push(bxy[2 * i + 1]);
    X.cand.push(cxy[2 * i]); Y.cand.push(cxy[2 * i + 1]);
  }
  var pos = new Map();
  P.ids.forEach(function (id, k) { pos.set(id, k); });
  var hover = P.ids.map(function (id, k) {
    return "<b>" + esc(short(id, 80)) + "</b><br>neighbourhood score: " + num(score[k]);
  });
  var idx = P.ids.map(function (_, k) { return k; });
  var SIDES = [["base", "fig-base"], ["cand", "fig-cand"]];
  var hi = null;                               // the marked point: index, or null

  function traces(side) {
    var main = {type: "scattergl", mode: "markers", name: "matched points", hoverinfo: "text",
      hoverlabel: {align: "left"}, x: X[side], y: Y[side], text: hover, customdata: idx,
      marker: {size: 5, opacity: 0.85, color: score, cmin: 0, cmax: 1,
               colorscale: SCORE_SCALE, showscale: side === "cand",
               colorbar: {title: {text: "score"}}}};
    var mark = {type: "scattergl", mode: "markers", name: "selected", hoverinfo: "skip",
      x: hi === null ? [] : [X[side][hi]], y: hi === null ? [] : [Y[side][hi]],
      marker: {size: 16, color: "rgba(0,0,0,0)", line: {color: "#111", width: 2.5}}};
    var ev = {type: "scattergl", mode: "markers", name: "evidence", hoverinfo: "skip",
      x: evidence.map(function (k) { return X[side][k]; }),
      y: evidence.map(function (k) { return Y[side][k]; }),
      marker: {size: 11, color: "rgba(0,0,0,0)", line: {color: "#d00", width: 1.5}}};
    return [main, ev, mark];
  }
  var evidence = [];
  var layout = {margin: {l: 40, r: 10, t: 10, b: 40}, hovermode: "closest", showlegend: false,
    xaxis: {zeroline: false}, yaxis: {zeroline: false}};
  function drawMaps() {
    SIDES.forEach(function (s) { Plotly.react(s[1], traces(s[0]), layout, CONFIG); });
  }
  var marks = 0;                               // how often a point was marked (tests)
  function mark(k) {
    hi = k; marks++;
    SIDES.forEach(function (s) {
      Plotly.restyle(s[1], {x: [[X[s[0]][k]]], y: [[Y[s[0]][k]]]}, [2]);
    });
    var panel = document.getElementById("compare-hover");
    panel.textContent = "";
    var b = document.createElement("strong"); b.className = "hover-id"; b.textContent = P.ids[k];
    var t = document.createElement("span"); t.className = "hover-score";
    t.textContent = " neighbourhood score " + num(score[k]) + "; baseline (" + num(X.base[k]) +
      ", " + num(Y.base[k]) + "), candidate (" + num(X.cand[k]) + ", " + num(Y.cand[k]) + ")";
    panel.appendChild(b); panel.appendChild(t);
  }
  var echo = null;                             // the tooltip we raised on the other map
  function bind() {
    SIDES.forEach(function (s, j) {
      var div = document.getElementById(s[1]), other = SIDES[1 - j][1];
      var on = function (e) {
        var pt = e.points && e.points[0];
        if (!(pt && pt.curveNumber === 0 && typeof pt.customdata === "number")) return;
        // plotly may fire our own echo later (hover is throttled): never echo it back
        if (echo && echo.fig === s[1] && echo.k === pt.customdata) { echo = null; return; }
        mark(pt.customdata);
        // the same point's tooltip on the other map (id and score on both)
        // (scattergl hovers by position, not point number: the point sits exactly there)
        var k = pt.customdata, side = SIDES[1 - j][0];
        echo = {fig: other, k: k};
        Plotly.Fx.hover(other, {xval: X[side][k], yval: Y[side][k]});
      };
      div.on("plotly_hover", on);
      div.on("plotly_click", on);
    });
  }

  // "show on maps" for a finding's evidence
  var findingIds = new Map();
  P.evidence.forEach(function (f) { findingIds.set(f.id, f.ids); });
  document.querySelectorAll("button.show").forEach(function (b) {
    b.addEventListener("click", function () {
      var ids = findingIds.get(b.getAttribute("data-finding")) || [];
      evidence = ids.map(function (e) { return pos.get(e); }).filter(function (k) { return k !== undefined; });
      drawMaps();
      document.getElementById("maps").scrollIntoView({behavior: "smooth"});
    });
  });

  // the cluster mapping: a heatmap of the contingency table
  function drawClusters() {
    var C = D.clusters;
    if (!C || !document.getElementById("fig-clusters")) return;
    var kinds = new Map();
    Object.keys(C.kinds).forEach(function (k) { kinds.set(k, C.kinds[k]); });
    var appeared = new Set(C.appeared.map(String));
    var ylab = C.base_labels.map(function (b) {
      return b === -1 ? "noise" : "base " + b + " (" + esc(kinds.get(String(b)) || "?") + ")";
    });
    var xlab = C.cand_labels.map(function (c) {
      return c === -1 ? "noise" : "cand " + c + (appeared.has(String(c)) ? " (appeared)" : "");
    });
    var z = C.table.map(function (row) {
      var tot = row.reduce(function (a, v) { return a + v; }, 0);
      return row.map(function (v) { return tot ? v / tot : 0; });
    });
    var text = C.table.map(function (row) { return row.map(String); });
    Plotly.newPlot("fig-clusters", [{type: "heatmap", x: xlab, y: ylab, z: z, text: text,
      texttemplate: "%{text}", zmin: 0, zmax: 1, colorscale: [[0, "#f4f7fb"], [1, "#1f4e99"]],
      colorbar: {title: {text: "share of row"}},
      hovertemplate: "%{y} → %{x}<br>%{text} points (%{z:.0%} of the row)<extra></extra>"}],
      {margin: {l: 150, r: 10, t: 10, b: 60}, height: Math.max(320, 34 * ylab.length + 90),
       yaxis: {autorange: "reversed", type: "category"},
       xaxis: {type: "category"}}, CONFIG);
  }

  drawMaps(); bind(); drawClusters();
  window.LatentCompare = {data: D, ids: P.ids, score: score, x: X, y: Y, mark: mark,
    marks: function () { return marks; }, esc: esc, safe: safe};
})();
