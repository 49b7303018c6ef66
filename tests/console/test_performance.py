"""Numbers behind the evaluation pages, against hand computations."""

from __future__ import annotations

import json

import pytest

from openaml.console import performance


def test_class_metrics_match_hand_computation() -> None:
    matrix = [[5, 1, 0], [2, 3, 1], [0, 0, 0]]
    rows = performance.class_metrics(["a", "b", "c"], matrix)
    a, b, c = rows
    assert a["precision"] == pytest.approx(5 / 7) and a["recall"] == pytest.approx(5 / 6)
    assert a["f1"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))
    assert b["precision"] == pytest.approx(3 / 4) and b["recall"] == pytest.approx(3 / 6) and b["support"] == 6
    assert c == {"label": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1}


def test_top_confusions_are_largest_off_diagonal_cells() -> None:
    found = performance.top_confusions(["a", "b"], [[1, 4], [2, 9]], limit=5)
    assert [(c["actual"], c["predicted"], c["count"]) for c in found] == [("a", "b", 4), ("b", "a", 2)]
    assert found[0]["share"] == pytest.approx(0.8)


def test_threshold_counts_from_histograms() -> None:
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    positive, negative = [0, 1, 3, 6], [5, 3, 1, 1]
    c = performance.threshold_counts(edges, positive, negative, 0.5)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (9, 2, 1, 8)
    assert c["accuracy"] == pytest.approx(17 / 20)
    assert c["precision"] == pytest.approx(9 / 11) and c["recall"] == pytest.approx(0.9)
    assert c["fpr"] == pytest.approx(0.2)
    everything = performance.threshold_counts(edges, positive, negative, 0.0)
    assert everything["recall"] == 1 and everything["fpr"] == 1


def test_curves_start_at_origin_and_end_at_one() -> None:
    curves = performance.curves_from_histograms([0, 0.5, 1], [1, 3], [3, 1])
    assert curves["fpr"] == [0.0, 0.25, 1.0] and curves["tpr"] == [0.0, 0.75, 1.0]
    assert curves["precision"][0] == pytest.approx(0.75)


def test_threshold_counts_from_roc_points_match_brute_force() -> None:
    scores = [0.1, 0.2, 0.2, 0.4, 0.6, 0.7, 0.9, 0.95]
    labels = [0, 0, 1, 0, 1, 0, 1, 1]
    pos, neg = sum(labels), len(labels) - sum(labels)
    points = [[0.0, 0.0, 1.0]]
    for s in sorted(set(scores), reverse=True):
        tp = sum(1 for x, y in zip(scores, labels) if x >= s and y)
        fp = sum(1 for x, y in zip(scores, labels) if x >= s and not y)
        points.append([fp / neg, tp / pos, s])
    for t in (0.0, 0.15, 0.2, 0.5, 0.65, 0.96):
        c = performance.threshold_counts_roc(points, pos, neg, t)
        tp = sum(1 for x, y in zip(scores, labels) if x >= t and y)
        fp = sum(1 for x, y in zip(scores, labels) if x >= t and not y)
        assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (tp, fp, pos - tp, neg - fp)


def test_rates_of_nothing_are_not_available_not_zero() -> None:
    """At a threshold above every score no record is predicted 1: its precision is 0 / 0,
    which the page shows as "not available" (it once showed 0); as with an empty class."""
    points = [[0.0, 0.0, 1.0], [0.5, 1.0, 0.9], [1.0, 1.0, 0.1]]
    above = performance.threshold_counts_roc(points, 2, 2, 0.95)
    assert above["tp"] == above["fp"] == 0 and above["precision"] is None and above["recall"] == 0
    binned = performance.threshold_counts([0.0, 0.5, 1.0], [1, 3], [3, 1], 1.0)
    assert binned["precision"] is None and binned["fpr"] == 0
    no_negatives = performance.threshold_counts([0.0, 0.5, 1.0], [1, 3], [0, 0], 0.5)
    assert no_negatives["fpr"] is None and no_negatives["precision"] == 1


def test_the_precision_recall_curve_is_the_exact_one_from_the_roc_points() -> None:
    """One point per ROC point that predicts something, by recall: the whole curve, where the
    20-bin histogram gave a few points and a recall axis starting at 0.69."""
    scores = [0.05 * k for k in range(20)]
    labels = [k % 3 == 0 or k > 14 for k in range(20)]
    pos, neg = sum(labels), len(labels) - sum(labels)
    points = [[0.0, 0.0, 1.0]]
    for s in sorted(set(scores), reverse=True):
        tp = sum(1 for x, y in zip(scores, labels) if x >= s and y)
        points.append([sum(1 for x, y in zip(scores, labels) if x >= s and not y) / neg, tp / pos, s])
    recall, precision = performance.precision_recall(points, pos, neg)
    assert len(recall) == 20 and recall == sorted(recall) and recall[0] == pytest.approx(1 / pos)
    assert precision[0] == 1.0 and precision[-1] == pytest.approx(pos / 20)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.63, 0.0, 1.0])
def test_an_evaluation_page_counts_exactly_at_its_threshold_and_the_sliders_steps(threshold: float) -> None:
    """600 distinct scores (the report keeps 201 ROC points): the page counted from those
    points (TP 227 where the report's confusion and a batch prediction said 229), and
    compared scores as doubles (0.3 - 1e-9 is 0.3 as a 32-bit float: labelled 1). It now
    shows the report's exact counts at the evaluated threshold and at each slider step."""
    import numpy as np

    from openaml.console.pages import _binary
    from openaml.ml.metrics.accumulators import BinaryAccumulator
    from openaml.ml.model import positive

    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.random(600), np.full(20, 0.3 - 1e-9)])
    labels = (rng.random(620) < scores).astype(np.int8)
    accumulator = BinaryAccumulator()
    accumulator.add(scores, labels)
    details = accumulator.report(0.5)[1]
    shown = _binary(details, threshold)["initial"]
    predicted = positive(scores, threshold)
    truly = int((predicted & (labels == 1)).sum()), int((predicted & (labels == 0)).sum())
    assert (shown["tp"], shown["fp"]) == truly
    assert shown["tn"] + shown["fp"] == int((labels == 0).sum())


def test_reports_keep_their_stepped_counts_and_older_ones_read_without() -> None:
    import numpy as np

    from openaml.ml.metrics.accumulators import BinaryAccumulator
    from openaml.ml.metrics.report import EvaluationReport
    from openaml.ml.model_type import ModelType

    accumulator = BinaryAccumulator()
    accumulator.add(np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1], np.int8))
    baseline, details = accumulator.report(0.45)
    report = EvaluationReport(ModelType.BINARY, 0.75, baseline, 4, 4, [], details)
    again = EvaluationReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again.details == details and details.counted_at(0.45) == (1, 1) == details.counted_at(0.5)
    assert details.counted_at(0.8) == (1, 0) and details.counted_at(0.805) is None
    older = {k: v for k, v in report.to_json().items() if k != "stepped"}
    assert EvaluationReport.from_json(older).details.counted_at(0.5) is None
