// The service page's charts: requests per minute, latency and error rates per version, drawn with
// uPlot (vendored: static/vendor/uplot) from GET .../metrics?range=hour|day|week.
"use strict";
(function () {
  var COLORS = ["#2563eb", "#16a34a", "#db2777", "#ea580c", "#7c3aed", "#0891b2", "#65a30d", "#b45309"];
  var section = document.getElementById("metrics");
  if (!section) return;
  var labels = JSON.parse(section.dataset.labels || "{}");
  var state = { range: "hour", data: null, charts: [] };

  function fill(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }

  function width(el) {
    return Math.max(260, Math.floor(el.getBoundingClientRect().width || 320));
  }

  function versionColor(i) { return COLORS[i % COLORS.length]; }

  function scaled(values, factor) {
    return values.map(function (v) { return v === null || v === undefined ? null : v * factor; });
  }

  function draw() {
    var data = state.data;
    state.charts.forEach(function (c) { c.destroy(); });
    state.charts = [];
    var summary = document.getElementById("metrics-summary");
    summary.textContent = data.all.requests
      ? fill(labels.metrics_summary, data.all)
      : labels.metrics_none;
    if (typeof window.uPlot !== "function") {
      document.getElementById("charts-missing").hidden = false;
      return;
    }
    var q = document.getElementById("metrics-quantile").value;
    var versions = data.versions;
    var xs = data.times;
    function chart(id, series, values, unit) {
      var el = document.getElementById(id);
      el.textContent = "";
      // Points as well as lines: a minute alone between empty ones is a point, not nothing.
      series.forEach(function (one) { one.points = { show: true, size: 5 }; });
      var opts = {
        width: width(el),
        height: 200,
        series: [{}].concat(series),
        scales: { x: { time: true } },
        axes: [{}, { size: 55, values: function (u, ticks) {
          return ticks.map(function (t) { return +t.toFixed(3) + unit; });
        } }],
        legend: { live: true },
      };
      state.charts.push(new window.uPlot(opts, [xs].concat(values), el));
    }
    // "#3 (v2)": the version's number, and its API version when it has one.
    function name(v) { return v.label + (v.api_version ? " (" + v.api_version + ")" : ""); }
    var requestSeries = versions.map(function (v, i) {
      return { label: name(v), stroke: versionColor(i), width: 2 };
    });
    chart("chart-requests",
      requestSeries.concat([{ label: labels.series_all, stroke: "#9ca3af", width: 1, dash: [4, 4] }]),
      versions.map(function (v) { return v.requests_per_minute; }).concat([data.all.requests_per_minute]),
      "");
    chart("chart-latency",
      versions.map(function (v, i) { return { label: name(v) + " " + q, stroke: versionColor(i), width: 2 }; }),
      versions.map(function (v) { return scaled(v[q], 1000); }),
      "");
    chart("chart-errors",
      versions.map(function (v, i) { return { label: name(v) + " 5xx", stroke: versionColor(i), width: 2 }; })
        .concat([{ label: labels.series_4xx, stroke: "#d97706", width: 1, dash: [4, 4] }]),
      versions.map(function (v) { return scaled(v.error_rate, 100); })
        .concat([scaled(data.all.client_error_rate, 100)]),
      "%");
    section.dataset.rendered = state.range;
    section.dataset.requests = String(data.all.requests);
  }

  function load() {
    section.dataset.rendered = "";
    fetch(section.dataset.url + "?range=" + encodeURIComponent(state.range), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.error) { document.getElementById("metrics-summary").textContent = data.error; return; }
        state.data = data;
        draw();
      });
  }

  section.querySelectorAll("button.range").forEach(function (button) {
    button.addEventListener("click", function () {
      state.range = button.dataset.range;
      section.querySelectorAll("button.range").forEach(function (b) {
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
      load();
    });
  });
  document.getElementById("metrics-quantile").addEventListener("change", function () {
    if (state.data) draw();
  });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { if (state.data) draw(); }, 200);
  });
  load();
  setInterval(function () { if (!document.hidden) load(); }, 60000);
})();
