// Draws the console's line charts with uPlot (vendor/uplot, MIT): the values under the pointer
// in the legend, drag to zoom, double-click to zoom out. Each chart's data come as JSON after
// its server-drawn SVG, which stays for pages without scripts and is hidden once drawn here.
(function () {
  "use strict";
  if (typeof uPlot === "undefined") { return; }
  var COLOURS = ["#1f5fa8", "#c2410c", "#15803d", "#7c3aed"];
  var MARKER = "#b42318";

  function markerHook(marker) {
    return function (u) {
      if (!marker) { return; }
      var ctx = u.ctx, x = u.valToPos(marker[0], "x", true), y = u.valToPos(marker[1], "y", true);
      ctx.save();
      ctx.strokeStyle = MARKER; ctx.fillStyle = MARKER; ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath(); ctx.arc(x, y, 6 * devicePixelRatio, 0, 2 * Math.PI); ctx.stroke();
      ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
      ctx.fillText(marker[2], x + 9 * devicePixelRatio, y - 9 * devicePixelRatio);
      ctx.restore();
    };
  }

  document.querySelectorAll("script.chart-data").forEach(function (block) {
    var svg = block.previousElementSibling;
    if (!svg || svg.tagName.toLowerCase() !== "svg") { return; }
    var data = JSON.parse(block.textContent);
    var holder = document.createElement("div");
    holder.className = "uplot-holder";
    holder.setAttribute("role", "img");
    holder.setAttribute("aria-label", data.label + " (values under the pointer; drag to zoom, double-click to zoom out)");
    svg.parentNode.insertBefore(holder, svg);
    var width = Math.max(holder.clientWidth || svg.getBoundingClientRect().width || 0, 560);
    var series = [{label: data.x_label || "x"}].concat(data.series.map(function (values, i) {
      return {label: data.names[i] || data.y_label || "value", stroke: COLOURS[i % COLOURS.length], width: 2,
              points: {show: data.x.length <= 60}};
    }));
    var range = data.unit ? [0, 1] : null;
    var integers = data.x.every(function (x) { return x === null || Math.round(x) === x; });  // passes
    var opts = {
      title: data.label, width: width, height: 260, series: series,
      scales: {x: {time: false, range: range || undefined}, y: data.log ? {distr: 3, log: 10} : {range: range || undefined}},
      axes: [integers ? {label: data.x_label, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]}
                      : {label: data.x_label}, {label: data.y_label}],
      hooks: {draw: [markerHook(data.marker)]}
    };
    new uPlot(opts, [data.x].concat(data.series), holder);
    svg.classList.add("replaced");
  });
})();
