"""Evaluation metrics as accumulators fed batch by batch (evaluation-and-prediction.md §1.3)."""

from __future__ import annotations

import math

import numpy as np

from openaml.ml.data.statistics import histogram
from openaml.ml.metrics.report import (
    PAIRS,
    ROC_POINTS,
    THRESHOLD_STEPS,
    BinaryDetails,
    MulticlassDetails,
    RegressionDetails,
)
from openaml.ml.model import answered

HISTOGRAM_BINS = 20
SAFE_SQUARES = (1e-140, 1e140)  # magnitudes whose squares, and any sum of them, are normal doubles


def auc_score(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney U / (n+ n-), ties counting 1/2; 0.5 when one class is absent."""
    return auc_of(*score_groups(scores, labels))


def score_groups(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct scores, ascending, with the positives (labels > 0) and negatives of each:
    everything the AUC and ROC points need, by one sort (no stable argsort, no ranks: the
    600k scores of the tabular benchmark's evaluation took 0.17 s for those)."""
    order = np.argsort(scores)
    ordered = scores[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1]))) if len(ordered) else \
        np.zeros(0, np.int64)
    positives = np.add.reduceat((labels[order] > 0).astype(np.int64), starts) if len(starts) else \
        np.zeros(0, np.int64)
    counts = np.diff(np.append(starts, len(ordered)))
    return ordered[starts], positives, counts - positives


def auc_of(values: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> float:
    """auc_score from score_groups: each positive beats the negatives of lower scores and ties
    half of those of its own."""
    n_pos, n_neg = int(positives.sum()), int(negatives.sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    below = np.cumsum(negatives) - negatives
    u = float(np.dot(positives, below)) + 0.5 * float(np.dot(positives, negatives))
    return u / (n_pos * n_neg)


class BinaryAccumulator:
    """Keeps scores and labels (8 + 1 bytes per record) for the exact AUC and ROC."""

    def __init__(self) -> None:
        self.scores: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        self.scores.append(np.asarray(scores, np.float64))
        self.labels.append(np.asarray(labels, np.int8))
        self._sorted = None

    def merge(self, later: BinaryAccumulator) -> None:
        """Add the records another accumulator saw (those after these)."""
        self.scores += later.scores
        self.labels += later.labels
        self._sorted = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.scores or [np.zeros(0)]), np.concatenate(self.labels or [np.zeros(0, np.int8)])

    def metric(self) -> float:
        return auc_of(*self._groups())

    def _groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """score_groups of the records so far, kept until more are added (the metric and the
        report share one sort)."""
        if self._sorted is None:
            self._sorted = score_groups(*self.arrays())
        return self._sorted

    def report(self, threshold: float = 0.5) -> tuple[float, BinaryDetails]:
        """(baseline AUC, details), all from the one sort of score_groups."""
        values, positives, negatives = self._groups()
        edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
        tp, fp = (int(_at_or_above(values, group, np.array([threshold]))[0]) for group in (positives, negatives))
        fn, tn = int(positives.sum()) - tp, int(negatives.sum()) - fp
        return 0.5, BinaryDetails(
            edges.tolist(), binned(values, positives, edges), binned(values, negatives, edges),
            [(a, b, c) for a, b, c in roc_curve(values, positives, negatives)], threshold,
            {"tp": tp, "fp": fp, "tn": tn, "fn": fn}, stepped_counts(values, positives, negatives))


def binned(values: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> list[int]:
    """np.histogram of distinct ascending values, each `counts` times: bins [edges[i],
    edges[i + 1]), the last one closed, values outside the edges left out."""
    total = np.concatenate(([0], np.cumsum(counts)))
    lows = np.searchsorted(values, edges[:-1], side="left")
    highs = np.append(lows[1:], np.searchsorted(values, edges[-1], side="right"))
    found: list[int] = (total[highs] - total[lows]).tolist()
    return found


def stepped_counts(values: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> list[tuple[int, int]]:
    """(tp, fp) at each threshold k / THRESHOLD_STEPS from score_groups."""
    thresholds = np.arange(THRESHOLD_STEPS + 1) / THRESHOLD_STEPS
    return list(zip(_at_or_above(values, positives, thresholds).tolist(),
                    _at_or_above(values, negatives, thresholds).tolist(), strict=True))


def _at_or_above(values: np.ndarray, counts: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of the records (`counts` per distinct ascending value) model.positive labels 1
    at each threshold: their answered scores at or above it."""
    tail = np.concatenate(([0], np.cumsum(counts[::-1])))[::-1]
    found: np.ndarray = tail[np.searchsorted(answered(values), thresholds, side="left")]
    return found


def roc_points(scores: np.ndarray, labels: np.ndarray, limit: int = ROC_POINTS) -> list[list[float]]:
    """(false positive rate, true positive rate, threshold) at up to `limit` distinct
    thresholds: the answered scores (roc_curve)."""
    return roc_curve(*score_groups(scores, labels), limit=limit)


def roc_curve(values: np.ndarray, positives: np.ndarray, negatives: np.ndarray,
              limit: int = ROC_POINTS) -> list[list[float]]:
    """roc_points from score_groups: the counts at or above each distinct answered score (the
    32-bit float that model.positive labels by), from the highest, so that a point's counts
    are the labels its threshold gives (scores apart by less than a float's rounding were
    two points, the lower one's counts those of both labels)."""
    if len(values) == 0:
        return []
    rounded = answered(values)
    starts = np.flatnonzero(np.concatenate(([True], rounded[1:] != rounded[:-1])))
    values, positives, negatives = (rounded[starts], np.add.reduceat(positives, starts),
                                    np.add.reduceat(negatives, starts))
    tps, fps = np.cumsum(positives[::-1]), np.cumsum(negatives[::-1])
    pos, neg = max(int(tps[-1]), 1), max(int(fps[-1]), 1)
    thresholds = values[::-1]
    pick = np.unique(np.linspace(0, len(values) - 1, min(limit, len(values))).astype(int))
    points = [[0.0, 0.0, 1.0]]
    points += [[fps[i] / neg, tps[i] / pos, float(thresholds[i])] for i in pick]
    return points


def class_scores(m: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class of a confusion matrix (rows true,
    columns predicted)."""
    tp = np.diag(m).astype(float)
    predicted, actual = m.sum(axis=0), m.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def macro_f1(true: np.ndarray, predicted: np.ndarray) -> float:
    """Macro F1 over true-or-predicted classes of class numbers (MulticlassAccumulator's
    metric, without label strings)."""
    classes, codes = np.unique(np.concatenate([true, predicted]).astype(np.int64), return_inverse=True)
    n = len(classes)
    if n == 0:
        return 0.0
    m = np.bincount(codes[:len(true)] * n + codes[len(true):], minlength=n * n).reshape(n, n)
    return float(class_scores(m)["f1"].mean())


class MulticlassAccumulator:
    """A confusion matrix over label strings: rows true, columns predicted."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def add_coded(self, true_labels: list[str], true_codes: np.ndarray, predicted_labels: list[str],
                  predicted_codes: np.ndarray) -> None:
        """Add records given as codes into lists of labels (true_labels[true_codes[i]] is
        record i's)."""
        width = len(predicted_labels)
        pairs, counts = np.unique(true_codes.astype(np.int64) * width + predicted_codes, return_counts=True)
        for pair, count in zip(pairs.tolist(), counts.tolist()):
            key = (true_labels[pair // width], predicted_labels[pair % width])
            self.counts[key] = self.counts.get(key, 0) + count

    def merge(self, later: MulticlassAccumulator) -> None:
        """Add the records another accumulator saw."""
        for pair, count in later.counts.items():
            self.counts[pair] = self.counts.get(pair, 0) + count

    def classes(self) -> list[str]:
        return sorted({c for pair in self.counts for c in pair})

    def matrix(self) -> np.ndarray:
        classes = self.classes()
        index = {c: i for i, c in enumerate(classes)}
        out = np.zeros((len(classes), len(classes)), np.int64)
        for (t, p), c in self.counts.items():
            out[index[t], index[p]] += c
        return out

    def per_class(self) -> dict[str, np.ndarray]:
        return class_scores(self.matrix())

    def metric(self) -> float:
        """Macro F1 over true-or-predicted classes."""
        f1 = self.per_class()["f1"]
        return float(f1.mean()) if len(f1) else 0.0

    def report(self, majority: str | None) -> tuple[float, MulticlassDetails]:
        """(baseline macro F1 of always predicting `majority`, details)."""
        classes = self.classes()
        stats = self.per_class()
        baseline = _majority_f1(self.matrix().sum(axis=1), classes, majority)
        return baseline, MulticlassDetails(
            classes, self.matrix().tolist(),
            {c: {k: float(v[i]) for k, v in stats.items()} for i, c in enumerate(classes)})


def _majority_f1(actual: np.ndarray, classes: list[str], majority: str | None) -> float:
    """Macro F1 of always predicting the training data's most frequent class, over the classes
    of that model's evaluation: the records' classes and `majority` (not the classes only the
    real model predicted, which lowered the baseline)."""
    if majority is None or not classes:
        return 0.0
    all_classes = {c for c, n in zip(classes, actual.tolist(), strict=True) if n} | {majority}
    total = int(actual.sum())
    support = dict(zip(classes, actual.tolist()))
    tp = support.get(majority, 0)
    precision = tp / total if total else 0.0
    recall = 1.0 if tp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1 / len(all_classes)


def root_mean_square(values: np.ndarray) -> float:
    """sqrt(mean(values^2)) (0 for none), also where squares would pass a double's range: the
    values are then divided by the largest magnitude first; inf or NaN where a value is."""
    if not len(values):
        return 0.0
    largest = float(np.max(np.abs(values)))
    with np.errstate(over="ignore", invalid="ignore"):
        if not math.isfinite(largest) or largest == 0 or SAFE_SQUARES[0] <= largest <= SAFE_SQUARES[1]:
            return float(np.sqrt(np.mean(values * values)))
        scaled = values / largest
        return largest * float(np.sqrt(np.mean(scaled * scaled)))


class RegressionAccumulator:
    """Actual values and residuals (actual - predicted): RMSE, baseline and histogram."""

    def __init__(self) -> None:
        self.residuals: list[np.ndarray] = []
        self.actual: list[np.ndarray] = []

    def add(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        self.actual.append(np.asarray(actual, np.float64))
        with np.errstate(over="ignore", invalid="ignore"):  # beyond a double's range: inf
            self.residuals.append(self.actual[-1] - np.asarray(predicted, np.float64))

    def merge(self, later: RegressionAccumulator) -> None:
        """Add the records another accumulator saw (those after these)."""
        self.residuals += later.residuals
        self.actual += later.actual

    def _all(self) -> np.ndarray:
        return np.concatenate(self.residuals or [np.zeros(0)])

    def metric(self) -> float:
        return root_mean_square(self._all())

    def report(self, training_mean: float) -> tuple[float, RegressionDetails]:
        """(baseline: the RMSE of always predicting the training target's mean, details)."""
        r = self._all()
        actual = np.concatenate(self.actual or [np.zeros(0)])
        with np.errstate(over="ignore", invalid="ignore"):
            baseline = root_mean_square(actual - training_mean)
        finite = r[np.isfinite(r)]  # residuals beyond a double's range have no bin
        counts, edges = (histogram(finite, None, float(finite.min()), float(finite.max())) if len(finite)
                         else (np.zeros(0), np.zeros(0)))
        sample = np.unique(np.linspace(0, len(r) - 1, min(PAIRS, len(r))).astype(np.int64))
        pairs = [(a, a - e) for a, e in zip(actual[sample].tolist(), r[sample].tolist(), strict=True)
                 if math.isfinite(a - e)]
        return baseline, RegressionDetails(edges.tolist(), counts.astype(np.int64).tolist(), pairs)
