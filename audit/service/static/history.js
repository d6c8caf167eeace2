/* latent-audit service: a project's history page. Draws the trend chart from the JSON in
   #trend-data (never from inline script: the page's CSP allows scripts from this origin
   only), submits the metric picker on change, and keeps the compare picker at two audits.
   User strings (versions) are HTML-escaped before plotly draws them, and nothing is keyed
   by user data in a plain object. */
(function () {
  "use strict";

  var COLOURS = new Map([["pass", "#2e7d32"], ["fail", "#c62828"], ["error", "#e08a00"],
                         ["warn", "#e08a00"]]);

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function short(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  function drawTrend() {
    var holder = document.getElementById("trend");
    var source = document.getElementById("trend-data");
    if (!holder || !source || typeof Plotly === "undefined") { return; }
    var d = JSON.parse(source.textContent);
    var ids = d.id || [], n = ids.length;
    if (!n) {
      holder.classList.add("empty");
      holder.textContent = "No audit of this project has " + d.metric + " yet.";
      return;
    }
    var text = [], colours = [];
    for (var i = 0; i < n; i++) {
      text.push("#" + ids[i] + " " + esc(short(d.version[i] || "", 60)) + "<br>" +
                esc(d.verdict[i] || ""));
      colours.push(COLOURS.get(d.verdict[i]) || "#6b7480");
    }
    var traces = [{
      type: "scatter", mode: "lines+markers", name: "audits",
      x: d.created, y: d.value, text: text, customdata: ids,
      hovertemplate: "%{text}<br>%{x}<br>" + esc(d.metric) + " = %{y}<extra></extra>",
      line: {color: "#5470c6", width: 1.5},
      marker: {color: colours, size: n > 300 ? 4 : 7}
    }];
    var shapes = [], annotations = [];
    var b = ids.indexOf(d.baseline_id);
    if (d.baseline_id !== null && b >= 0) {
      traces.push({
        type: "scatter", mode: "markers", name: "baseline", x: [d.created[b]], y: [d.value[b]],
        customdata: [ids[b]], text: [text[b]],
        hovertemplate: "baseline %{text}<br>" + esc(d.metric) + " = %{y}<extra></extra>",
        marker: {symbol: "star", size: 16, color: "#1d232b", line: {color: "#fff", width: 1}}
      });
      shapes.push({type: "line", xref: "x", yref: "paper", x0: d.created[b], x1: d.created[b],
                   y0: 0, y1: 1, line: {color: "#1d232b", width: 1, dash: "dot"}});
      annotations.push({xref: "x", yref: "paper", x: d.created[b], y: 1, yanchor: "bottom",
                        text: "baseline", showarrow: false, font: {size: 12}});
    }
    var layout = {
      margin: {l: 60, r: 20, t: 24, b: 48}, height: 320, showlegend: false,
      hovermode: "closest", shapes: shapes, annotations: annotations,
      xaxis: {type: "date", title: {text: "audit date"}},
      yaxis: {title: {text: esc(d.metric)}, zeroline: false},
      plot_bgcolor: "#fff", paper_bgcolor: "#fff"
    };
    Plotly.newPlot(holder, traces, layout, {displaylogo: false, responsive: true})
      .then(function () {
        holder.setAttribute("data-drawn", String(n));
        holder.on("plotly_click", function (ev) {
          var p = ev && ev.points && ev.points[0];
          if (p && typeof p.customdata === "number") { window.location.href = "/audits/" + p.customdata; }
        });
      });
  }

  function metricPicker() {
    var select = document.getElementById("metric");
    if (!select) { return; }
    var hidden = document.querySelectorAll(".js-hide");
    for (var i = 0; i < hidden.length; i++) { hidden[i].hidden = true; }
    select.addEventListener("change", function () { select.form.submit(); });
  }

  function comparePicker() {
    var form = document.getElementById("compare-form");
    if (!form) { return; }
    var button = document.getElementById("compare-button");
    var order = [];                       // ticked boxes, oldest tick first
    function update() {
      button.disabled = order.length !== 2;
    }
    form.addEventListener("change", function (ev) {
      var box = ev.target;
      if (!box || box.name !== "pick") { return; }
      var at = order.indexOf(box);
      if (box.checked && at < 0) { order.push(box); }
      if (!box.checked && at >= 0) { order.splice(at, 1); }
      while (order.length > 2) { order.shift().checked = false; }
      update();
    });
    var boxes = form.querySelectorAll("input[name=pick]");
    for (var i = 0; i < boxes.length; i++) { if (boxes[i].checked) { order.push(boxes[i]); } }
    while (order.length > 2) { order.shift().checked = false; }
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    metricPicker();
    comparePicker();
    drawTrend();
  });
}());
