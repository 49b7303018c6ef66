"""The evaluation report (report.json): what an evaluation found besides its metric, typed.

The evaluation writes it and the console reads it with the same classes, so neither guesses
the other's keys. The JSON layout is the one reports have had since the first release (flat,
snake_case), plus `model_type`; a report without it is read by the details it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openaml.ml.model_type import ModelType

ROC_POINTS = 201  # at most, with (0, 0): the console's curves
THRESHOLD_STEPS = 100  # the exact counts at thresholds 0, 0.01, ..., 1: the console slider's steps


@dataclass(frozen=True)
class BinaryDetails:
    """Score histograms of the records whose true label is 1 and 0 (bins [edges[i],
    edges[i+1]) over [0, 1]), ROC points (fpr, tpr, threshold; threshold descending; at most
    ROC_POINTS of them), the confusion counts at the model's threshold when it was evaluated,
    and the exact (tp, fp) at each threshold k / THRESHOLD_STEPS, those of the console's slider
    (empty in reports written before them)."""

    edges: list[float]
    positive: list[int]
    negative: list[int]
    roc: list[tuple[float, float, float]]
    threshold: float
    confusion: dict[str, int]  # tp, fp, tn, fn
    stepped: list[tuple[int, int]] = field(default_factory=list)

    def counted_at(self, threshold: float) -> tuple[int, int] | None:
        """The exact (tp, fp) at this threshold, where the report has them."""
        if self.confusion and threshold == self.threshold:
            return self.confusion["tp"], self.confusion["fp"]
        step = round(threshold * THRESHOLD_STEPS)
        if self.stepped and 0 <= step <= THRESHOLD_STEPS and step / THRESHOLD_STEPS == threshold:
            return self.stepped[step]
        return None


@dataclass(frozen=True)
class MulticlassDetails:
    """The confusion matrix (rows: true class, columns: predicted class, classes sorted) and
    per-class precision, recall, F1 and support."""

    classes: list[str]
    matrix: list[list[int]]
    per_class: dict[str, dict[str, float]]


@dataclass(frozen=True)
class RegressionDetails:
    """A histogram of the residuals (actual minus predicted) and up to PAIRS (actual,
    predicted) pairs, evenly spread over the records in order."""

    edges: list[float]
    counts: list[int]
    pairs: list[tuple[float, float]]


Details = BinaryDetails | MulticlassDetails | RegressionDetails
PAIRS = 500


@dataclass(frozen=True)
class EvaluationReport:
    model_type: ModelType
    metric: float
    baseline: float
    records_read: int
    records_used: int
    alerts: list[str]
    details: Details

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_type": self.model_type.value, "metric": self.metric,
                               "baseline": self.baseline, "records_read": self.records_read,
                               "records_used": self.records_used, "alerts": list(self.alerts)}
        d = self.details
        if isinstance(d, BinaryDetails):
            out.update(histogram_edges=d.edges, histogram_positive=d.positive,
                       histogram_negative=d.negative, roc=[list(p) for p in d.roc],
                       threshold=d.threshold, confusion=d.confusion, stepped=[list(p) for p in d.stepped])
        elif isinstance(d, MulticlassDetails):
            out.update(classes=d.classes, confusion_matrix=d.matrix, per_class=d.per_class)
        else:
            out.update(residual_histogram={"edges": d.edges, "counts": d.counts},
                       predicted_vs_actual=[list(p) for p in d.pairs])
        return out

    @classmethod
    def from_json(cls, doc: Any) -> EvaluationReport:
        """The report of a stored document; ValueError when it is not one."""
        try:
            return cls._read(doc)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"not an evaluation report: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _read(cls, doc: dict[str, Any]) -> EvaluationReport:
        kind = ModelType(doc["model_type"]) if "model_type" in doc else (
            ModelType.BINARY if "histogram_edges" in doc else
            ModelType.MULTICLASS if "confusion_matrix" in doc else ModelType.REGRESSION)
        details: Details
        if kind is ModelType.BINARY:
            edges, positive, negative = (_numbers(doc[k], float) for k in (
                "histogram_edges", "histogram_positive", "histogram_negative"))
            if not len(edges) - 1 == len(positive) == len(negative):
                raise ValueError("histograms and edges of different lengths")
            roc = [(float(a), float(b), float(c)) for a, b, c in doc.get("roc") or []]
            details = BinaryDetails(edges, [round(v) for v in positive], [round(v) for v in negative],
                                    roc, float(doc.get("threshold", 0.5)),
                                    {k: int(v) for k, v in (doc.get("confusion") or {}).items()},
                                    [(int(tp), int(fp)) for tp, fp in doc.get("stepped") or []])
            if details.stepped and len(details.stepped) != THRESHOLD_STEPS + 1:
                raise ValueError("counts at thresholds of another number of steps")
        elif kind is ModelType.MULTICLASS:
            classes = [str(c) for c in doc["classes"]]
            matrix = [[int(v) for v in row] for row in doc["confusion_matrix"]]
            if len(matrix) != len(classes) or any(len(row) != len(classes) for row in matrix):
                raise ValueError("the confusion matrix does not match the classes")
            per_class = {str(c): {k: float(v) for k, v in values.items()}
                         for c, values in (doc.get("per_class") or {}).items()}
            details = MulticlassDetails(classes, matrix, per_class)
        else:
            histogram = doc.get("residual_histogram") or {"edges": [], "counts": []}
            edges, counts = _numbers(histogram["edges"], float), _numbers(histogram["counts"], float)
            if counts and len(edges) != len(counts) + 1:
                raise ValueError("residual counts and edges of different lengths")
            pairs = [(float(a), float(p)) for a, p in doc.get("predicted_vs_actual") or []]
            details = RegressionDetails(edges, [round(v) for v in counts], pairs)
        used = int(doc.get("records_used", doc.get("records", 0)))
        return cls(kind, float(doc.get("metric", "nan")), float(doc["baseline"]),
                   int(doc.get("records_read", used)), used,
                   [str(a) for a in doc.get("alerts") or []], details)


def _numbers(values: Any, kind: type) -> list[Any]:
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                           for v in values):
        raise ValueError("a list of numbers was expected")
    return [kind(v) for v in values]
