// Threshold slider of a BINARY evaluation: the report's exact counts at its steps (and at the
// evaluated threshold); elsewhere, as performance.py does, from the ROC points with thresholds
// when the report has them, else from the score histograms.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("threshold-data").textContent);
  var slider = document.getElementById("threshold");
  var field = document.getElementById("threshold-field");
  var shown = document.getElementById("threshold-value");
  function fmt(x) {
    if (!isFinite(x)) { return "not available"; }
    return Number.isInteger(x) ? x.toLocaleString("en-US") : x.toPrecision(4).replace(/\.?0+$/, "");
  }
  function counts(t) {
    var tp = 0, fp = 0, p = 0, n = 0, i;
    for (i = 0; i < data.positive.length; i++) {
      p += data.positive[i]; n += data.negative[i];
      if (!data.roc && data.edges[i] >= t - 1e-12) { tp += data.positive[i]; fp += data.negative[i]; }
    }
    var step = Math.round(t * data.steps);
    if (data.exact && data.exact.threshold === t) {  // the report's own counts (BinaryDetails.counted_at)
      tp = data.exact.tp; fp = data.exact.fp;
    } else if (data.stepped.length && step >= 0 && step <= data.steps && step / data.steps === t) {
      tp = data.stepped[step][0]; fp = data.stepped[step][1];
    } else if (data.roc) {  // points [fpr, tpr, threshold], threshold descending (performance.py)
      var at = null;
      // a point's score as the 32-bit float that labels it (model.positive)
      for (i = 0; i < data.roc.length; i++) { if (Math.fround(data.roc[i][2]) >= t) { at = data.roc[i]; } }
      tp = at ? Math.round(at[1] * p) : 0; fp = at ? Math.round(at[0] * n) : 0;
    }
    var ratio = function (a, b) { return b ? a / b : NaN; };  // 0 / 0: not available
    return {tp: tp, fp: fp, fn: p - tp, tn: n - fp, accuracy: ratio(tp + n - fp, p + n),
            precision: ratio(tp, tp + fp), recall: ratio(tp, p), fpr: ratio(fp, n)};
  }
  function update() {
    var t = parseFloat(slider.value);
    var c = counts(t);
    shown.textContent = t.toFixed(2);
    field.value = String(t);
    ["accuracy", "precision", "recall", "fpr", "tp", "fp", "tn", "fn"].forEach(function (k) {
      document.getElementById("t-" + k).textContent = fmt(c[k]);
    });
  }
  // the page opens at the model's own threshold, as the server wrote it: a slider of 0.01 steps
  // would snap 0.305 to 0.31, show 0.31's counts and arm Save with 0.31 (an outside test)
  slider.addEventListener("input", update);
})();
