/* Figures of the bias check, per protected column: leakage against its permutation null,
   the cluster × group heatmap with flagged cells marked, the disparity bars with Wilson
   intervals; then the outcome slices and the WEAT results. Every user string (column,
   group, slice and selection names) goes through LA.esc before it reaches plotly. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, PALETTE = LA.palette;
  var RED = "#c62828", GREY = "#9aa3ad";

  function tables(D) { return D.checks.bias.tables; }
  var fmtP = LA.pval, own = LA.own;
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function label(s, n) { return esc(short(s, n || 28)); }

  // ---- leakage: the probe's AUC against its permutation null ---------------------------
  LA.register("bias_leakage", function (id, fig, D) {
    var col = fig.column, L = tables(D).columns[col].leakage;
    var parts = [["raw", "latents", PALETTE[0]], ["adjusted", "attributes regressed out", PALETTE[2]]];
    var traces = [], shapes = [], notes = [];
    parts.forEach(function (p, k) {
      var r = L[p[0]]; if (!r) return;
      traces.push({type: "histogram", x: r.null, name: "null: " + esc(p[1]), opacity: 0.6,
                   marker: {color: p[2]}, nbinsx: 25});
      var c = r.flagged ? RED : "#1d232b";
      shapes.push({type: "line", x0: r.auc, x1: r.auc, yref: "paper", y0: 0, y1: 1,
                   line: {color: c, width: 2, dash: k ? "dot" : "solid"}});
      notes.push({xref: "paper", x: 0.01, yref: "paper", y: 1 - 0.09 * k, showarrow: false,
                  xanchor: "left", font: {color: c}, bgcolor: "rgba(255,255,255,0.8)",
                  text: (k ? "dotted" : "solid") + " line, " + esc(p[1]) + ": AUC " + r.auc.toFixed(3) + ", p " + fmtP(r.p) +
                        ", BH-adjusted p (q) " + fmtP(r.q) + (r.flagged ? " ⚠" : "")});
    });
    Plotly.newPlot(id, traces, {
      title: {text: "Can " + label(col, 40) + " be read from the latents? Probe AUC vs permutation null"},
      barmode: "overlay", margin: {l: 50, r: 10, t: 40, b: 40}, shapes: shapes, annotations: notes,
      xaxis: {title: {text: "cross-validated AUC (0.5 = chance)"}}, yaxis: {title: {text: "permutations"}},
      legend: {orientation: "h", y: -0.25}}, LA.config);
  });

  // ---- representation: cluster × group heatmap of observed / expected --------------------
  LA.register("bias_representation", function (id, fig, D) {
    var col = fig.column, R = tables(D).columns[col].representation;
    var cell = new Map();
    R.cells.forEach(function (c) { cell.set(c.cluster + "\u0000" + c.group, c); });
    var z = [], text = [], hover = [];
    R.clusters.forEach(function (cl) {
      var zr = [], tr = [], hr = [];
      R.groups.forEach(function (g) {
        var c = cell.get(cl + "\u0000" + g);
        var lr = c.ratio === null ? 0 : (c.ratio > 0 ? Math.log2(c.ratio) : -3);
        zr.push(Math.max(-3, Math.min(3, lr)));
        tr.push(c.ratio === null ? "–" : "×" + c.ratio.toFixed(2) + (c.flagged ? " ★" : ""));
        hr.push(LA.clusterName(cl) + ", " + label(g, 40) + "<br>observed " + c.observed +
                ", expected " + c.expected.toFixed(1) + "<br>share " + pct(c.share) +
                " vs " + pct(c.overall_share) + " overall<br>p " + fmtP(c.p) + ", q " + fmtP(c.q) +
                (c.flagged ? "<br><b>flagged</b>" : ""));
      });
      z.push(zr); text.push(tr); hover.push(hr);
    });
    Plotly.newPlot(id, [{type: "heatmap", z: z, text: text, customdata: hover, texttemplate: "%{text}",
      x: R.groups.map(function (g, k) { return k; }), y: R.clusters.map(function (c, k) { return k; }),
      zmin: -3, zmax: 3, zmid: 0,
      colorscale: [[0, "#2b5c9e"], [0.5, "#f7f7f7"], [1, "#b2182b"]],
      hovertemplate: "%{customdata}<extra></extra>",
      colorbar: {title: {text: "log2 obs/exp"}}}],
      {title: {text: "Representation of " + label(col, 40) + " per cluster (★ = flagged; " +
               "Cramér's V " + (R.cramers_v_corrected === null ? "–" : R.cramers_v_corrected.toFixed(2)) +
               ", p " + fmtP(R.p) + ")"},
       margin: {l: 60, r: 10, t: 40, b: 60},
       yaxis: {autorange: "reversed", tickvals: R.clusters.map(function (c, k) { return k; }),
               ticktext: R.clusters.map(function (c) { return Number(c) < 0 ? "noise" : "c" + c; })},
       xaxis: {tickvals: R.groups.map(function (g, k) { return k; }),
               ticktext: R.groups.map(function (g) { return label(g); })},
       height: Math.max(320, 60 + 26 * R.clusters.length)}, LA.config);
  });

  // ---- disparity: per-group rates with Wilson intervals -----------------------------------
  var FLAG_NAMES = {low_density: "low density", noise: "HDBSCAN noise", outlier: "GLOSH outliers",
                    uncovered: "reference uncovered"};
  LA.register("bias_disparity", function (id, fig, D) {
    var col = fig.column, Dp = tables(D).columns[col].disparity;
    var flags = Object.keys(Dp), groups = [];
    flags.forEach(function (f) { Dp[f].groups.forEach(function (g) {
      if (groups.indexOf(g.group) < 0) groups.push(g.group); }); });
    var xs = flags.map(function (f) {
      var r = Dp[f];
      return (own(FLAG_NAMES, f) || esc(f)) + "<br>ratio " + (r.ratio === null ? "–" : r.ratio.toFixed(2)) +
             (r.flagged ? " ⚠" : "");
    });
    var traces = groups.map(function (g, k) {
      var ys = [], lo = [], hi = [], hov = [];
      flags.forEach(function (f) {
        var row = Dp[f].groups.filter(function (r) { return r.group === g; })[0];
        if (!row) { ys.push(null); lo.push(0); hi.push(0); hov.push(""); return; }
        ys.push(row.rate); lo.push(row.rate - row.ci[0]); hi.push(row.ci[1] - row.rate);
        hov.push(label(g, 40) + ": " + pct(row.rate) + " [" + pct(row.ci[0]) + ", " + pct(row.ci[1]) +
                 "] of " + row.n + " " + esc(Dp[f].unit) + (row.tested ? "" : " (untested: too small)"));
      });
      return {type: "bar", name: label(g), x: xs, y: ys, customdata: hov,
              hovertemplate: "%{customdata}<extra></extra>",
              marker: {color: PALETTE[k % PALETTE.length]},
              error_y: {type: "data", symmetric: false, array: hi, arrayminus: lo, color: "#333"}};
    });
    Plotly.newPlot(id, traces, {
      title: {text: "Where the groups of " + label(col, 40) + " sit (rate with 95% Wilson interval; four-fifths rule on the ratio)"},
      barmode: "group", margin: {l: 50, r: 10, t: 40, b: 70},
      yaxis: {title: {text: "share of the group"}, tickformat: ".0%"}}, LA.config);
  });

  // ---- outcome slices ----------------------------------------------------------------------
  LA.register("bias_slices", function (id, fig, D) {
    var S = tables(D).slices;
    var rows = S.rows.slice().sort(function (a, b) { return (b.effect || -1e9) - (a.effect || -1e9); })
      .slice(0, 30).reverse();
    var isRate = S.kind === "rate";
    var ticks = rows.map(function (r) { return label(r.slice, 40) + (r.flagged ? " ⚠" : ""); });
    var y = rows.map(function (r, k) { return k; });
    Plotly.newPlot(id, [{type: "scatter", mode: "markers", x: rows.map(function (r) { return r.value; }), y: y,
      marker: {size: 9, color: rows.map(function (r) { return r.flagged ? RED : GREY; })},
      error_x: {type: "data", symmetric: false, color: "#555",
                array: rows.map(function (r) { return r.ci[1] === null ? 0 : r.ci[1] - r.value; }),
                arrayminus: rows.map(function (r) { return r.ci[0] === null ? 0 : r.value - r.ci[0]; })},
      customdata: rows.map(function (r) {
        return label(r.slice, 60) + "<br>n " + r.n + ", " + esc(S.description) + " " +
               (isRate ? pct(r.value) : r.value.toPrecision(3)) + "<br>effect " +
               (r.effect === null ? "–" : r.effect.toFixed(2)) + ", p " + fmtP(r.p) + ", q " + fmtP(r.q);
      }), hovertemplate: "%{customdata}<extra></extra>"}],
      {title: {text: "Outcome slices: " + esc(S.description) + " (worst 30 by effect; red = flagged)"},
       margin: {l: 220, r: 10, t: 40, b: 40}, height: Math.max(320, 80 + 20 * rows.length),
       xaxis: {title: {text: esc(S.description) + " (95% interval)"}, tickformat: isRate ? ".0%" : ""},
       yaxis: {tickvals: y, ticktext: ticks, automargin: true, zeroline: false},
       shapes: [{type: "line", x0: S.overall, x1: S.overall, yref: "paper", y0: 0, y1: 1,
                 line: {color: "#1d232b", dash: "dash"}}],
       annotations: [{x: S.overall, yref: "paper", y: 1, text: "overall", showarrow: false,
                      xanchor: "left"}]}, LA.config);
  });

  // ---- WEAT ----------------------------------------------------------------------------------
  LA.register("bias_weat", function (id, fig, D) {
    var W = tables(D).weat.filter(function (w) { return w.effect_size !== undefined && w.effect_size !== null; });
    Plotly.newPlot(id, [{type: "bar", orientation: "h",
      y: W.map(function (w, k) { return k; }), x: W.map(function (w) { return w.effect_size; }),
      text: W.map(function (w) { return "p " + fmtP(w.p) + ", q " + fmtP(w.q) + (w.exact ? " (exact)" : ""); }),
      textposition: "auto",
      marker: {color: W.map(function (w) { return w.flagged ? RED : PALETTE[0]; })},
      customdata: W.map(function (w) {
        return "X: " + label(w.sets.X, 50) + " (" + w.sizes.X + ")<br>Y: " + label(w.sets.Y, 50) + " (" + w.sizes.Y +
               ")<br>A: " + label(w.sets.A, 50) + " (" + w.sizes.A + ")<br>B: " + label(w.sets.B, 50) + " (" + w.sizes.B +
               ")<br>" + esc(w.alternative) + " p " + fmtP(w.p) + ", " + w.n_partitions + " partitions" +
               "<br>cosine in " + (w.space === "latents" ? "the encoder's output" : "the analysis space") +
               (w.templates && w.templates.length ? "; " + w.templates.length + " SEAT template(s)" : "");
      }), hovertemplate: "%{customdata}<extra></extra>"}],
      {title: {text: "WEAT effect sizes (red = flagged)"}, margin: {l: 120, r: 10, t: 40, b: 40},
       height: Math.max(260, 90 + 36 * W.length),
       xaxis: {title: {text: "effect size (positive: X closer to A than Y is)"}, zeroline: true},
       yaxis: {autorange: "reversed", tickvals: W.map(function (w, k) { return k; }),
               ticktext: W.map(function (w) { return label(w.name, 30); })}}, LA.config);
  });
})(window.LatentAudit);
