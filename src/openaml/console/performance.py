"""The numbers behind the evaluation pages, derived from the evaluation's report
(openaml.ml.metrics.report). Per-class precision/recall/F1 and the precision-recall curve are
recomputed here from the matrix and the histograms, so the pages stay consistent with what they
show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from openaml.ml.metrics.report import BinaryDetails, MulticlassDetails


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _rate(a: float, b: float) -> float | None:
    """a / b, or None (shown "not available") when b is 0: the precision of a threshold above
    every score is 0 / 0, not 0."""
    return a / b if b else None


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


def class_recalls(details: BinaryDetails | MulticlassDetails | Any) -> list[tuple[str, float | None]]:
    """(class, recall) of an evaluation's report details: of a MULTICLASS confusion matrix, or
    of a BINARY model's confusion counts at its threshold when evaluated (classes 1 and 0);
    None for a class without records."""
    if isinstance(details, MulticlassDetails):
        return [(c["label"], c["recall"] if c["support"] else None)
                for c in class_metrics(details.classes, details.matrix)]
    if isinstance(details, BinaryDetails):
        counts = details.confusion
        return [("1", _rate(counts.get("tp", 0), counts.get("tp", 0) + counts.get("fn", 0))),
                ("0", _rate(counts.get("tn", 0), counts.get("tn", 0) + counts.get("fp", 0)))]
    return []


def top_confusions(classes: Sequence[str], matrix: Sequence[Sequence[float]],
                   limit: int = 10) -> list[dict[str, Any]]:
    """The largest off-diagonal cells, with their share of the true class's records."""
    cells: list[dict[str, Any]] = []
    for i, row in enumerate(matrix):
        total = sum(float(v) for v in row)
        for j, value in enumerate(row):
            if i != j and float(value) > 0:
                cells.append({"actual": classes[i], "predicted": classes[j], "count": int(value),
                              "share": _ratio(float(value), total)})
    cells.sort(key=lambda c: (-c["count"], c["actual"], c["predicted"]))
    return cells[:limit]


def threshold_counts(edges: Sequence[float], positive: Sequence[float], negative: Sequence[float],
                     threshold: float) -> dict[str, float | None]:
    """Counts and rates (None where undefined) when scores >= threshold are predicted 1, from score histograms
    (bins [edges[i], edges[i+1])): a bin counts as predicted 1 when its lower edge >= threshold."""
    tp = sum(float(c) for lo, c in zip(edges, positive) if lo >= threshold - 1e-12)
    fp = sum(float(c) for lo, c in zip(edges, negative) if lo >= threshold - 1e-12)
    return counts(tp, fp, sum(map(float, positive)), sum(map(float, negative)))


def threshold_counts_roc(points: Sequence[Sequence[float]], positives: float, negatives: float,
                         threshold: float) -> dict[str, float | None]:
    """Like threshold_counts, from ROC points: records predicted 1 are those counted at the
    smallest point threshold that gives 1 as model.positive does, its 32-bit float at or above
    the threshold (exact while every distinct score has its point; static/threshold.js does
    the same)."""
    at = [p for p in points if float(np.float32(p[2])) >= threshold]
    fpr, tpr = (at[-1][0], at[-1][1]) if at else (0.0, 0.0)
    return counts(round(tpr * positives), round(fpr * negatives), positives, negatives)


def counts(tp: float, fp: float, positives: float, negatives: float) -> dict[str, float | None]:
    """The counts and rates (None where undefined) of tp and fp among these records."""
    fn, tn = positives - tp, negatives - fp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "accuracy": _rate(tp + tn, positives + negatives), "precision": _rate(tp, tp + fp),
            "recall": _rate(tp, positives), "fpr": _rate(fp, negatives)}


def curves_from_histograms(edges: Sequence[float], positive: Sequence[float],
                           negative: Sequence[float]) -> dict[str, list[float]]:
    """ROC (fpr, tpr) and precision-recall points at every bin edge, threshold descending."""
    fpr, tpr, precision, recall = [], [], [], []
    for t in reversed(list(edges[:-1])):
        c = threshold_counts(edges, positive, negative, t)
        fpr.append(c["fpr"] or 0.0)
        tpr.append(c["recall"] or 0.0)
        recall.append(c["recall"] or 0.0)
        precision.append(c["precision"] if c["precision"] is not None else 1.0)
    return {"fpr": [0.0, *fpr], "tpr": [0.0, *tpr], "recall": recall, "precision": precision}


def precision_recall(points: Sequence[Sequence[float]], positives: float,
                     negatives: float) -> tuple[list[float], list[float]]:
    """(recall, precision) at each ROC point (false positive rate, true positive rate,
    threshold) that predicts some record 1, by recall: the exact curve, where the score
    histogram's 20 bins gave a handful of points."""
    pairs = []
    for fpr, tpr, _ in points:
        tp, fp = tpr * positives, fpr * negatives
        if tp + fp > 0:
            pairs.append((tpr, tp / (tp + fp)))
    pairs.sort(key=lambda pair: pair[0])
    return [r for r, _ in pairs], [p for _, p in pairs]


def as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
