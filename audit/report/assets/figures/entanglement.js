/* Figures of the entanglement check: probes, the three matrices, the per-dimension map,
   arithmetic consistency, attribute sliders and interpolation grids. Every user string
   (attribute names, levels, ids, metadata) goes through LA.esc before plotly sees it. */
(function (LA) {
  "use strict";
  var esc = LA.esc, short = LA.short, PALETTE = LA.palette;
  function T(D) { return D.checks.entanglement.tables; }
  function lab(s) { return esc(short(s, 24)); }
  function fmt(v, d) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(d === undefined ? 2 : d); }
  function thumb(D, key) { return key ? D.thumbnails["entanglement:" + key] : undefined; }

  LA.register("entanglement_probes", function (id, fig, D) {
    var rows = T(D).attributes.filter(function (a) { return a.probe; });
    var x = rows.map(function (a) { return lab(a.name); });
    var y = rows.map(function (a) { return a.probe.score; });
    Plotly.newPlot(id, [
      {type: "bar", name: "probe score", x: x, y: y,
       marker: {color: rows.map(function (a) { return a.probe.encoded ? PALETTE[0] : "#b0b0b0"; })},
       error_y: {type: "data", symmetric: false,
                 array: rows.map(function (a) { return a.probe.ci[1] === null ? 0 : a.probe.ci[1] - a.probe.score; }),
                 arrayminus: rows.map(function (a) { return a.probe.ci[0] === null ? 0 : a.probe.score - a.probe.ci[0]; })},
       text: rows.map(function (a) { return (a.probe.metric === "r2" ? "R² " : "balanced accuracy ") + fmt(a.probe.score, 3) +
         "<br>interval [" + fmt(a.probe.ci[0], 3) + ", " + fmt(a.probe.ci[1], 3) + "]<br>chance " + fmt(a.probe.chance, 3) +
         "<br>" + a.probe.n + " rows"; }),
       hovertemplate: "%{x}<br>%{text}<extra></extra>", textposition: "none"},
      {type: "scatter", mode: "markers", name: "chance", x: x,
       y: rows.map(function (a) { return a.probe.chance; }),
       marker: {symbol: "line-ew-open", size: 28, color: "#c62828", line: {width: 2}},
       hovertemplate: "chance %{y:.3f}<extra></extra>"}],
      {title: {text: "Linear probes: how much of each attribute the latents encode"},
       margin: {l: 50, r: 10, t: 40, b: 60}, yaxis: {title: {text: "balanced accuracy / R²"}, range: [Math.min(0, Math.min.apply(null, y.concat([0]))), 1.05]},
       showlegend: true, legend: {orientation: "h", y: -0.2}}, LA.config);
  });

  LA.register("entanglement_matrices", function (id, fig, D) {
    var J = T(D).joint, names = J.attributes.map(lab), m = names.length;
    function hover(mat, lo, hi, label) {
      return mat.map(function (row, a) { return row.map(function (v, b) {
        return names[a] + " → " + names[b] + "<br>" + label + " " + fmt(v) +
          (lo ? " [" + fmt(lo[a][b]) + ", " + fmt(hi[a][b]) + "]" : ""); }); });
    }
    var leak = J.leakage.map(function (row, a) { return row.map(function (v, b) { return a === b ? null : v; }); });
    var lmax = 1;
    leak.forEach(function (r) { r.forEach(function (v) { if (v !== null && v > lmax) lmax = v; }); });
    var diverge = [[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]];
    var common = {type: "heatmap", x: names, y: names, hoverinfo: "text", texttemplate: "%{z:.2f}",
                  textfont: {size: m > 8 ? 8 : 11}};
    var dom = [[0, 0.29], [0.355, 0.645], [0.71, 1]];
    var traces = [
      Object.assign({}, common, {z: J.association, zmin: -1, zmax: 1, colorscale: diverge,
        text: hover(J.association, J.association_ci[0], J.association_ci[1], "association"),
        colorbar: {x: 0.29, len: 0.9, thickness: 10}, xaxis: "x", yaxis: "y"}),
      Object.assign({}, common, {z: J.cosine, zmin: -1, zmax: 1, colorscale: diverge,
        text: hover(J.cosine, J.cosine_ci[0], J.cosine_ci[1], "cosine"),
        colorbar: {x: 0.645, len: 0.9, thickness: 10}, xaxis: "x2", yaxis: "y2"}),
      Object.assign({}, common, {z: leak, zmin: 0, zmax: lmax, colorscale: [[0, "#f7f7f7"], [1, "#b2182b"]],
        text: hover(J.leakage, J.leakage_ci[0], J.leakage_ci[1], "leakage"),
        colorbar: {x: 1.0, len: 0.9, thickness: 10}, xaxis: "x3", yaxis: "y3"})];
    var layout = {margin: {l: 90, r: 30, t: 60, b: 90}, height: 420,
      annotations: [["Correlation in the data", 0.145], ["Cosine of joint directions", 0.5],
                    ["Edit leakage (row → column)", 0.855]].map(function (t) {
        return {text: "<b>" + t[0] + "</b>", x: t[1], y: 1.1, xref: "paper", yref: "paper", showarrow: false}; })};
    [1, 2, 3].forEach(function (k) {
      var s = k === 1 ? "" : String(k);
      layout["xaxis" + s] = {domain: dom[k - 1], anchor: "y" + s, tickangle: -40};
      layout["yaxis" + s] = {anchor: "x" + s, autorange: "reversed", showticklabels: k === 1};
    });
    Plotly.newPlot(id, traces, layout, LA.config);
  });

  LA.register("entanglement_mi", function (id, fig, D) {
    var F = T(D).factors, d = F.nmi.length;
    var dims = F.nmi.map(function (_, j) { return "z" + j + (F.dead[j] ? " (dead)" : ""); });
    Plotly.newPlot(id, [
      {type: "heatmap", z: F.nmi, x: F.attributes.map(lab), y: dims, zmin: 0, zmax: 1,
       colorscale: [[0, "#f4f7fb"], [1, "#1f4e9c"]], texttemplate: "%{z:.2f}",
       hovertemplate: "%{y} · %{x}<br>normalised MI %{z:.3f}<extra></extra>",
       colorbar: {title: {text: "MI / H"}, x: 0.7, thickness: 10}, xaxis: "x", yaxis: "y"},
      {type: "bar", orientation: "h", y: dims, x: F.variance_ratio, xaxis: "x2", yaxis: "y2",
       marker: {color: F.dead.map(function (v) { return v ? "#c62828" : PALETTE[0]; })},
       hovertemplate: "%{y}<br>variance / median %{x:.3g}<extra></extra>", showlegend: false}],
      {title: {text: "Per-dimension map: which latent dimensions carry which attribute"},
       margin: {l: 80, r: 10, t: 40, b: 60}, height: Math.max(320, 60 + 26 * d),
       xaxis: {domain: [0, 0.66]}, yaxis: {autorange: "reversed", type: "category"},
       xaxis2: {domain: [0.8, 1], type: "log", title: {text: "variance / median"}, anchor: "y2"},
       yaxis2: {anchor: "x2", autorange: "reversed", type: "category", showticklabels: false}}, LA.config);
  });

  LA.register("entanglement_consistency", function (id, fig, D) {
    var tests = T(D).consistency.tests, order = T(D).joint ? T(D).joint.attributes : [];
    function used(key) {
      var seen = tests.map(function (t) { return t[key]; });
      return order.filter(function (a) { return seen.indexOf(a) >= 0; });
    }
    var A = used("attribute"), B = used("by");
    var z = A.map(function () { return B.map(function () { return null; }); });
    var text = A.map(function () { return B.map(function () { return ""; }); });
    tests.forEach(function (t) {
      var i = A.indexOf(t.attribute), j = B.indexOf(t.by);
      z[i][j] = t.mean_cosine;
      text[i][j] = "direction of " + lab(t.attribute) + " within groups of " + lab(t.by) +
        "<br>mean cosine " + fmt(t.mean_cosine) + " (shuffled: " + fmt(t.null_mean) + ")" +
        "<br>BH-adjusted p " + (t.q_value === null ? "n/a" : LA.pval(Number(t.q_value))) +
        (t.flagged ? "<br><b>flagged</b>" : "");
    });
    Plotly.newPlot(id, [{type: "heatmap", z: z, x: B.map(lab), y: A.map(lab), text: text, hoverinfo: "text",
      zmin: 0, zmax: 1, colorscale: [[0, "#b2182b"], [0.5, "#fddbc7"], [1, "#f7f7f7"]],
      texttemplate: "%{z:.2f}", colorbar: {title: {text: "cosine"}, thickness: 10}}],
      {title: {text: "Latent arithmetic: is an attribute's direction the same in every group?"},
       margin: {l: 90, r: 10, t: 40, b: 80},
       xaxis: {title: {text: "groups of"}}, yaxis: {title: {text: "direction of"}, autorange: "reversed"}}, LA.config);
  });

  LA.register("entanglement_slider", function (id, fig, D) {
    var S = T(D).sliders[fig.index], names = Object.keys(S.readouts), n = S.steps.length;
    var hasImg = S.images.length === n && S.images.every(function (k) { return thumb(D, k); });
    var lim = 0.5;
    names.forEach(function (nm) { S.readouts[nm].forEach(function (v) { if (v !== null && Math.abs(v) > lim) lim = Math.abs(v); }); });
    function bars(k) { return names.map(function (nm) { return S.readouts[nm][k]; }); }
    function colours() { return names.map(function (nm) { return nm === S.attribute ? PALETTE[0] : "#fc8452"; }); }
    function image(k) {
      return hasImg ? [{source: thumb(D, S.images[k]), xref: "paper", yref: "paper", x: 0, y: 1,
        sizex: 0.3, sizey: 0.8, xanchor: "left", yanchor: "top", sizing: "contain", layer: "above"}] : [];
    }
    function caption(k) {
      var what = hasImg && S.image_source === "decoded" ? "decoded image; nearest real sample " :
                 "nearest real sample ";
      return [{xref: "paper", yref: "paper", x: 0.15, y: hasImg ? 0.12 : 0.6, yanchor: "top",
        showarrow: false, xanchor: "center", align: "center", font: {size: 10},
        text: what + esc(short(S.nearest_ids[k], 30)) + ":<br>" + esc(short(S.nearest[k], 60))}];
    }
    // open at the far end of the walk (the middle step is the base point itself, where
    // every read-out change is 0 and the chart would look empty until dragged)
    var mid = n - 1;
    var steps = S.steps.map(function (t, k) {
      return {label: (t > 0 ? "+" : "") + t.toFixed(1), method: "update",
              args: [{y: [bars(k)]}, {images: image(k), annotations: caption(k)}]};
    });
    Plotly.newPlot(id, [{type: "bar", x: names.map(lab), y: bars(mid), marker: {color: colours()},
      hovertemplate: "%{x}: %{y:.2f} SD<extra></extra>", xaxis: "x", yaxis: "y"}],
      {title: {text: "Slider along " + lab(S.attribute) + " (standard deviations)"},
       height: 380, margin: {l: 40, r: 10, t: 40, b: 40},
       xaxis: {domain: [0.38, 1], tickangle: -30},
       yaxis: {range: [-lim * 1.1, lim * 1.1], title: {text: "read-out change (" + (S.readouts_source === "re-encoded" ? "re-encoded" : "latent") + ", SD)"}},
       images: image(mid), annotations: caption(mid),
       sliders: [{active: mid, steps: steps, currentvalue: {prefix: esc(short(S.attribute, 20)) + " ", suffix: " SD"}, pad: {t: 50}}]}, LA.config);
  });

  LA.register("entanglement_grid", function (id, fig, D) {
    var G = T(D).grids, rows = G.length, cols = rows ? G[0].nearest_ids.length : 0;
    var images = [], hx = [], hy = [], ht = [];
    G.forEach(function (g, r) {
      g.nearest_ids.forEach(function (nid, k) {
        var src = thumb(D, g.images[k]);
        if (src) images.push({source: src, xref: "x", yref: "y", x: k, y: r, sizex: 0.95, sizey: 0.95,
                              xanchor: "center", yanchor: "middle", sizing: "contain", layer: "below"});
        hx.push(k); hy.push(r);
        ht.push((g.image_source === "decoded" ? "decoded; " : "") + "nearest real sample: " + esc(short(nid, 40)) +
                "<br>" + esc(short(g.nearest[k], 90)));
      });
    });
    var ylabels = G.map(function (g) { return esc(short(g.from_id, 18)) + " → " + esc(short(g.to_id, 18)); });
    Plotly.newPlot(id, [{type: "scatter", mode: images.length ? "markers" : "text", x: hx, y: hy,
      text: images.length ? ht : hy.map(function (r, i) { return esc(short(G[r].nearest_ids[hx[i]], 14)); }),
      hovertext: ht, hoverinfo: "text", marker: {size: 30, opacity: 0}, showlegend: false}],
      {title: {text: "Interpolation between pairs of data points (" + (G.length && G[0].image_source === "decoded" ? "decoded" : "nearest real samples") + ")"},
       height: Math.max(240, 90 + 110 * rows), margin: {l: 200, r: 10, t: 40, b: 40}, images: images,
       xaxis: {range: [-0.5, cols - 0.5], tickvals: hx.slice(0, cols), ticktext: hx.slice(0, cols).map(function (k) { return (k / Math.max(cols - 1, 1)).toFixed(2); }), title: {text: "interpolation weight"}, showgrid: false, zeroline: false},
       yaxis: {range: [rows - 0.5, -0.5], tickvals: G.map(function (_, r) { return r; }), ticktext: ylabels, showgrid: false, zeroline: false, scaleanchor: "x"}}, LA.config);
  });
})(window.LatentAudit);
