"""The numbers behind the evaluation pages, derived from a stored evaluation report.

The report (written by the evaluation engine) is read through aliases, snake_case first:
`baseline`, `classes`, `confusion_matrix`, `score_histograms` {edges, positive, negative},
`roc` (points {threshold, fpr, tpr} or lists), `residual_histogram` {edges, counts},
`predicted_vs_actual`, `alerts`. Per-class precision/recall/F1 and the ROC and
precision-recall curves are recomputed here from the matrix and the histograms, so the pages
stay consistent with what they show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from openaml.console.reports import pick


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def class_metrics(classes: Sequence[str], matrix: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class of a confusion matrix
    (rows = true class, columns = predicted class); 0 where undefined (spec §1.3)."""
    out = []
    for i, label in enumerate(classes):
        tp = float(matrix[i][i])
        predicted = sum(float(row[i]) for row in matrix)
        support = sum(float(v) for v in matrix[i])
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall)
        out.append({"label": label, "precision": precision, "recall": recall, "f1": f1,
                    "support": int(support), "predicted": int(predicted)})
    return out


def top_confusions(classes: Sequence[str], matrix: Sequence[Sequence[float]],
                   limit: int = 10) -> list[dict[str, Any]]:
    """The largest off-diagonal cells, with their share of the true class's records."""
    cells = []
    for i, row in enumerate(matrix):
        total = sum(float(v) for v in row)
        for j, value in enumerate(row):
            if i != j and float(value) > 0:
                cells.append({"actual": classes[i], "predicted": classes[j], "count": int(value),
                              "share": _ratio(float(value), total)})
    cells.sort(key=lambda c: (-c["count"], c["actual"], c["predicted"]))
    return cells[:limit]


def threshold_counts(edges: Sequence[float], positive: Sequence[float], negative: Sequence[float],
                     threshold: float) -> dict[str, float]:
    """Counts and rates when scores >= threshold are predicted 1, from score histograms
    (bins [edges[i], edges[i+1])): a bin counts as predicted 1 when its lower edge >= threshold."""
    tp = sum(float(c) for lo, c in zip(edges, positive) if lo >= threshold - 1e-12)
    fp = sum(float(c) for lo, c in zip(edges, negative) if lo >= threshold - 1e-12)
    p, n = sum(map(float, positive)), sum(map(float, negative))
    fn, tn = p - tp, n - fp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "accuracy": _ratio(tp + tn, p + n), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, p), "fpr": _ratio(fp, n)}


def roc_thresholds(report: dict[str, Any]) -> list[list[float]] | None:
    """ROC points [fpr, tpr, threshold] (threshold descending) when the report has thresholds."""
    roc = pick(report, "roc", "roc_curve", "rocCurve", "roc_points")
    if not isinstance(roc, list) or not roc:
        return None
    try:
        points = [[float(p[0]), float(p[1]), float(p[2])] for p in roc]
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return sorted(points, key=lambda p: -p[2])


def threshold_counts_roc(points: Sequence[Sequence[float]], positives: float, negatives: float,
                         threshold: float) -> dict[str, float]:
    """Like threshold_counts, from ROC points: records scoring >= threshold are those counted
    at the smallest point threshold that is >= threshold (exact while every distinct score
    has its point)."""
    at = [p for p in points if p[2] >= threshold - 1e-12]
    fpr, tpr = (at[-1][0], at[-1][1]) if at else (0.0, 0.0)
    tp, fp = round(tpr * positives), round(fpr * negatives)
    fn, tn = positives - tp, negatives - fp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "accuracy": _ratio(tp + tn, positives + negatives), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, positives), "fpr": _ratio(fp, negatives)}


def curves_from_histograms(edges: Sequence[float], positive: Sequence[float],
                           negative: Sequence[float]) -> dict[str, list[float]]:
    """ROC (fpr, tpr) and precision-recall points at every bin edge, threshold descending."""
    fpr, tpr, precision, recall = [], [], [], []
    for t in reversed(list(edges[:-1])):
        c = threshold_counts(edges, positive, negative, t)
        fpr.append(c["fpr"])
        tpr.append(c["recall"])
        recall.append(c["recall"])
        precision.append(c["precision"] if c["tp"] + c["fp"] else 1.0)
    return {"fpr": [0.0, *fpr], "tpr": [0.0, *tpr], "recall": recall, "precision": precision}


def score_histograms(report: dict[str, Any]) -> tuple[list[float], list[float], list[float]] | None:
    """(edges, positive counts, negative counts) when the report holds usable histograms."""
    block = pick(report, "score_histograms", "scoreHistograms", "histograms")
    if block is None and "histogram_edges" in report:  # the engine's flat layout
        block = {"edges": report["histogram_edges"], "positive": report.get("histogram_positive"),
                 "negative": report.get("histogram_negative")}
    edges = pick(block, "edges", "bins")
    positive = pick(block, "positive", "pos", "1", "true")
    negative = pick(block, "negative", "neg", "0", "false")
    if not (_numbers(edges) and _numbers(positive) and _numbers(negative)):
        return None
    if not len(edges) - 1 == len(positive) == len(negative):
        return None
    return [float(v) for v in edges], [float(v) for v in positive], [float(v) for v in negative]


def roc_points(report: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """(fpr, tpr) from the report's ROC, as points or as parallel lists; None when absent."""
    roc = pick(report, "roc", "roc_curve", "rocCurve", "roc_points")
    if isinstance(roc, dict) and _numbers(roc.get("fpr")) and _numbers(roc.get("tpr")):
        if len(roc["fpr"]) == len(roc["tpr"]):
            return [float(v) for v in roc["fpr"]], [float(v) for v in roc["tpr"]]
    if isinstance(roc, list) and roc:
        try:
            if isinstance(roc[0], dict):
                pairs = [(float(p["fpr"]), float(p["tpr"])) for p in roc]
            else:
                pairs = [(float(p[0]), float(p[1])) for p in roc]
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        pairs.sort()
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return None


def matrix_of(report: dict[str, Any]) -> tuple[list[str], list[list[float]]] | None:
    classes = pick(report, "classes", "labels")
    matrix = pick(report, "confusion_matrix", "confusionMatrix")
    if not isinstance(classes, list) or not isinstance(matrix, list) or len(matrix) != len(classes):
        return None
    if not all(isinstance(r, list) and len(r) == len(classes) and _numbers(r) for r in matrix):
        return None
    return [str(c) for c in classes], [[float(v) for v in r] for r in matrix]


def residual_histogram(report: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    block = pick(report, "residual_histogram", "residualHistogram", "residuals")
    edges, counts = pick(block, "edges", "bins"), pick(block, "counts")
    if _numbers(edges) and _numbers(counts) and len(edges) == len(counts) + 1:
        return [float(v) for v in edges], [float(v) for v in counts]
    return None


def alerts_of(report: dict[str, Any]) -> list[str]:
    """Evaluation alerts as readable lines (strings, or dicts with a message)."""
    raw = pick(report, "alerts", "warnings")
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append(str(item.get("message") or item.get("text") or item.get("code") or item))
        else:
            out.append(str(item))
    return out


def as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
