/* Figures of the generator_editing check: the edit matrix (raw and relative, intervals in
   the hover) and, per attribute, a slider of decoded outputs of a few prior points moved
   along its direction (an HTML range input switches the step). User strings (attribute
   names, levels, ids) go through LA.esc before plotly sees them and through textContent
   elsewhere; nothing is keyed by user data. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, PALETTE = LA.palette;
  function T(D) { return D.checks.generator_editing.tables; }
  function fmt(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d === undefined ? 2 : d); }
  function sd(v) { return (v > 0 ? "+" : "") + Number(v).toFixed(1); }

  LA.register("generator_editing_matrix", function (id, fig, D) {
    var X = T(D).matrix, names = X.attributes.map(function (a) { return esc(short(a, 24)); });
    var m = names.length;
    function hover(a, b) {
      var lines = ["edit <b>" + names[a] + "</b> → read <b>" + names[b] + "</b>",
        "change " + fmt(X.raw[a][b], 3) + " SD [" + fmt(X.raw_ci[0][a][b], 3) + ", " + fmt(X.raw_ci[1][a][b], 3) + "]"];
      if (a !== b) {
        lines.push("relative " + fmt(X.relative[a][b]) + " [" + fmt(X.relative_ci[0][a][b]) + ", " + fmt(X.relative_ci[1][a][b]) + "]");
        lines.push("BH-adjusted p " + (X.q_value[a][b] === null ? "– (row not editable)" : LA.pval(X.q_value[a][b])));
        lines.push("read-out correlation: real data " + fmt(X.association_real[a][b]) + ", generations " + fmt(X.association_generated[a][b]));
        if (X.flagged[a][b]) lines.push("<b>flagged</b>");
      } else {
        lines.push(X.editable[a] ? "intended change" : "not editable");
      }
      return lines.join("<br>");
    }
    var hovers = [], rel = [], rawText = [], relText = [];
    for (var a = 0; a < m; a++) {
      hovers.push([]); rel.push([]); rawText.push([]); relText.push([]);
      for (var b = 0; b < m; b++) {
        hovers[a].push(hover(a, b));
        rel[a].push(a === b ? null : X.relative[a][b]);
        rawText[a].push(fmt(X.raw[a][b]));
        relText[a].push(a === b ? "" : fmt(X.relative[a][b]) + (X.flagged[a][b] ? " ✱" : ""));
      }
    }
    var lim = 0.1;
    X.raw.forEach(function (r) { r.forEach(function (v) { if (v !== null && Math.abs(v) > lim) lim = Math.abs(v); }); });
    var rmax = 1;
    rel.forEach(function (r) { r.forEach(function (v) { if (v !== null && v > rmax) rmax = v; }); });
    var common = {type: "heatmap", x: names, y: names, customdata: hovers,
                  hovertemplate: "%{customdata}<extra></extra>", texttemplate: "%{text}",
                  textfont: {size: m > 8 ? 8 : 12}};
    Plotly.newPlot(id, [
      Object.assign({}, common, {z: X.raw, zmin: -lim, zmax: lim, text: rawText,
        colorscale: [[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]],
        colorbar: {x: 0.45, len: 0.9, thickness: 10, title: {text: "SD"}}, xaxis: "x", yaxis: "y"}),
      Object.assign({}, common, {z: rel, zmin: 0, zmax: rmax, text: relText,
        colorscale: [[0, "#f7f7f7"], [1, "#b2182b"]],
        colorbar: {x: 1.0, len: 0.9, thickness: 10}, xaxis: "x2", yaxis: "y2"})],
      {height: Math.max(360, 120 + 40 * m), margin: {l: 100, r: 30, t: 60, b: 90},
       annotations: [["Read-out change, SD per step", 0.2],
                     ["Relative leakage (✱ flagged)", 0.78]].map(function (t) {
         return {text: "<b>" + t[0] + "</b>", x: t[1], y: 1.1, xref: "paper", yref: "paper", showarrow: false, font: {size: 11}}; }),
       xaxis: {domain: [0, 0.43], tickangle: -30, type: "category", title: {text: "read"}},
       yaxis: {autorange: "reversed", type: "category", title: {text: "edited"}},
       xaxis2: {domain: [0.57, 0.98], tickangle: -30, anchor: "y2", type: "category", title: {text: "read"}},
       yaxis2: {autorange: "reversed", anchor: "x2", type: "category", showticklabels: false}}, LA.config);
  });

  LA.register("generator_editing_slider", function (id, fig, D) {
    var tab = T(D), S = tab.sliders[fig.index], names = tab.matrix.attributes;
    var targets = tab.attributes.map(function (a) { return a.target_level; });
    var steps = S.steps, nT = steps.length, images = S.images.length > 0;
    // the step closest to the starting point (0 when the count is odd): changes are from it
    var start = 0;
    steps.forEach(function (t, k) { if (Math.abs(t) < Math.abs(steps[start])) start = k; });
    var root = document.getElementById(id);
    root.style.minHeight = "0";
    var head = document.createElement("div");
    head.style.fontWeight = "600"; head.style.margin = "8px 0 4px 0";
    head.textContent = "Slider along " + S.attribute + " (prior standard deviations)";
    root.appendChild(head);
    var bar = document.createElement("div");
    bar.style.display = "flex"; bar.style.alignItems = "center"; bar.style.gap = "10px";
    var input = document.createElement("input");
    input.type = "range"; input.min = "0"; input.max = String(nT - 1); input.step = "1";
    input.value = String(nT - 1); input.style.width = "320px";
    input.setAttribute("aria-label", "step along " + S.attribute);
    var label = document.createElement("span");
    bar.appendChild(input); bar.appendChild(label);
    root.appendChild(bar);
    var grid = document.createElement("table");
    grid.className = "metrics";
    var thead = document.createElement("thead"), hr = document.createElement("tr");
    var heads = ["prior point", images ? "decoded" : "decoded row"].concat(names);
    heads.forEach(function (h, k) {
      var th = document.createElement("th");
      var lvl = k >= 2 ? targets[k - 2] : null;
      th.textContent = k >= 2 ? short(h, 20) + (lvl !== null && lvl !== undefined ? ": " + short(String(lvl), 16) : "") + " (SD)" : h;
      if (k >= 2 && h === S.attribute) th.style.color = PALETTE[0];
      hr.appendChild(th);
    });
    thead.appendChild(hr); grid.appendChild(thead);
    var body = document.createElement("tbody"), cells = [];
    S.points.forEach(function (pid, p) {
      var tr = document.createElement("tr"), c0 = document.createElement("td");
      c0.textContent = pid; tr.appendChild(c0);
      var out = document.createElement("td"), img = null, row = null;
      if (images) {
        img = document.createElement("img"); img.width = 96; img.height = 96;
        img.style.imageRendering = "pixelated"; img.alt = pid;
        out.appendChild(img);
      } else {
        row = document.createElement("code");
        out.appendChild(row);
      }
      tr.appendChild(out);
      var reads = names.map(function () { var td = document.createElement("td"); tr.appendChild(td); return td; });
      body.appendChild(tr);
      cells.push({img: img, row: row, reads: reads});
    });
    grid.appendChild(body); root.appendChild(grid);
    // every attribute's mean read-out change (over the points) at the shown step
    var chart = document.createElement("div");
    chart.style.height = "260px";
    root.appendChild(chart);
    var x = names.map(function (n) { return esc(short(n, 24)); });
    var lim = 0.5;
    S.readouts.forEach(function (pt) { pt.forEach(function (r) { r.forEach(function (v, b) {
      var d = v === null || pt[start][b] === null ? 0 : Math.abs(v - pt[start][b]);
      if (d > lim) lim = d; }); }); });
    function meanChange(t) {
      return names.map(function (_, b) {
        var s = 0, k = 0;
        S.readouts.forEach(function (pt) {
          if (pt[t][b] !== null && pt[start][b] !== null) { s += pt[t][b] - pt[start][b]; k++; } });
        return k ? s / k : null;
      });
    }
    function bars(t) {
      return [{type: "bar", x: x, y: meanChange(t),
        marker: {color: names.map(function (n) { return n === S.attribute ? PALETTE[0] : "#fc8452"; })},
        hovertemplate: "%{x}: %{y:.2f} SD<extra></extra>"}];
    }
    var layout = {title: {text: "Mean read-out change at this step (SD)", font: {size: 12}},
      margin: {l: 50, r: 10, t: 30, b: 50}, yaxis: {range: [-lim * 1.1, lim * 1.1]},
      xaxis: {type: "category"}};
    function show(t) {
      Plotly.react(chart, bars(t), layout, LA.config);
      label.textContent = "step " + sd(steps[t]) + " SD (" + (t + 1) + " of " + nT + ")";
      cells.forEach(function (c, p) {
        if (c.img) {
          var src = LA.own(D.thumbnails, "generator_editing:" + S.images[p][t]);
          if (src) { c.img.src = src; c.img.hidden = false; } else { c.img.hidden = true; }
        } else {
          c.row.textContent = S.columns.map(function (h, k) { return h + "=" + LA.num(S.rows[p][t][k]); }).join("  ");
        }
        c.reads.forEach(function (td, b) {
          var v = S.readouts[p][t][b], v0 = S.readouts[p][start][b];
          td.textContent = fmt(v) + (v !== null && v0 !== null ? " (" + (v - v0 >= 0 ? "+" : "") + fmt(v - v0) + ")" : "");
        });
      });
    }
    input.addEventListener("input", function () { show(Number(input.value)); });
    show(Number(input.value));
  });
})(window.LatentAudit);
