/* Figures of the generator_attributes check: per column, the level shares of the data (as
   the probe reads it, out of fold) and of the generations, with intervals; a strip of
   generations read as each flagged level. User strings (column names, levels, ids) go
   through LA.esc before plotly sees them and through textContent elsewhere. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, PALETTE = LA.palette;
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }

  function strip(root, D, col) {
    col.levels.forEach(function (lv) {
      var ex = lv.examples;
      if (!lv.flagged || !ex || !ex.images || !ex.images.length) return;
      var box = document.createElement("div");
      box.style.margin = "4px 0 10px 0";
      var cap = document.createElement("div");
      cap.className = "note";
      cap.textContent = "Generations read as " + col.name + " = " + lv.level + " (" + lv.direction + "-produced):";
      box.appendChild(cap);
      ex.images.forEach(function (key, t) {
        var src = LA.own(D.thumbnails, "generator_attributes:" + key);
        if (!src) return;
        var img = document.createElement("img");
        img.src = src; img.width = 72; img.height = 72;
        img.alt = ex.ids[t]; img.title = ex.ids[t];
        img.style.imageRendering = "pixelated"; img.style.marginRight = "4px";
        box.appendChild(img);
      });
      root.appendChild(box);
    });
  }

  LA.register("generator_attributes_shares", function (id, fig, D) {
    var T = D.checks.generator_attributes.tables, col = T.columns[fig.index];
    var root = document.getElementById(id), plot = document.createElement("div");
    root.appendChild(plot);
    var x = col.levels.map(function (lv) { return esc(short(lv.level, 28)) + (lv.flagged ? " ✱" : ""); });
    function bars(name, share, ci, colour) {
      return {type: "bar", name: name, x: x, marker: {color: colour},
        y: col.levels.map(function (lv) { return lv[share]; }),
        error_y: {type: "data", symmetric: false,
          array: col.levels.map(function (lv) { return lv[ci][1] - lv[share]; }),
          arrayminus: col.levels.map(function (lv) { return lv[share] - lv[ci][0]; })},
        text: col.levels.map(function (lv) {
          return "<b>" + esc(short(col.name, 30)) + " = " + esc(short(lv.level, 40)) + "</b>" +
            "<br>data (probe, out of fold) " + pct(lv.real_share) + " [" + pct(lv.real_ci[0]) + ", " + pct(lv.real_ci[1]) + "]" +
            "<br>data (labelled) " + pct(lv.labelled_share) +
            "<br>generations " + pct(lv.generated_share) + " [" + pct(lv.generated_ci[0]) + ", " + pct(lv.generated_ci[1]) + "]" +
            "<br>gap " + LA.num(lv.gap) + " [" + LA.num(lv.gap_ci[0]) + ", " + LA.num(lv.gap_ci[1]) + "], ratio " +
            (lv.ratio === null ? "∞" : LA.num(lv.ratio)) +
            "<br>BH-adjusted p " + LA.pval(lv.q_value) + (lv.flagged ? "<br><b>flagged: " + lv.direction + "-produced</b>" : ""); }),
        hovertemplate: "%{text}<extra></extra>", textposition: "none"};
    }
    var traces = [bars("data (as the probe reads it)", "real_share", "real_ci", PALETTE[0]),
                  bars("generations", "generated_share", "generated_ci", PALETTE[6])];
    plot.style.height = "340px";
    Plotly.newPlot(plot, traces, {
      title: {text: "Shares of " + esc(short(col.name, 40)) + ": data vs generations"},
      barmode: "group", margin: {l: 50, r: 10, t: 40, b: 70},
      yaxis: {title: {text: "share"}, tickformat: ".0%", rangemode: "tozero"},
      xaxis: {tickangle: col.levels.length > 6 ? -35 : 0},
      legend: {orientation: "h", y: -0.25}}, LA.config);
    strip(root, D, col);
  });
})(window.LatentAudit);
