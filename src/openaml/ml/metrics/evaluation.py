"""evaluate_model: score an evaluation datasource and compute the metric and console report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from openaml.ml.errors import InputError
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.features.values import Columns
from openaml.ml.metrics.accumulators import BinaryAccumulator, MulticlassAccumulator, RegressionAccumulator
from openaml.ml.metrics.formatting import format_metric
from openaml.ml.metrics.report import BinaryDetails, EvaluationReport, MulticlassDetails, RegressionDetails
from openaml.ml.model import Model
from openaml.ml.model_type import ModelType
from openaml.ml.moments import Moments
from openaml.ml.prediction.scoring import ScoredSlice, score_alone
from openaml.ml.schema import Schema
from openaml.ml.training.stop import ShouldStop
from openaml.ml.training.targets import target_codes, target_flags, target_numbers, target_valid

METRIC_KEYS = {ModelType.BINARY: "BinaryAUC", ModelType.MULTICLASS: "MulticlassAvgFScore",
               ModelType.REGRESSION: "RegressionRMSE"}


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, str]  # PerformanceMetrics.Properties
    report: EvaluationReport  # baseline, charts and alerts for the console
    records: int


class EvaluationError(InputError):
    """The evaluation cannot complete (no usable record)."""


def evaluate_model(model: Model, batches: Iterable[pa.RecordBatch], dataset_schema: Schema,
                   should_stop: ShouldStop | None = None, execution: Execution = ONE_THREAD) -> Evaluation:
    """Score every usable record (not rejected, valid target) and accumulate the metric.
    should_stop is asked before each slice of records scored (Slices); once it answers True,
    evaluating raises Cancelled."""
    return finish_evaluation(model, dataset_schema, [score_records(model, batches, should_stop, execution)])


@dataclass
class ScoredRecords:
    """The accumulated scores of some records (a partition's): what finish_evaluation merges."""

    accumulator: BinaryAccumulator | MulticlassAccumulator | RegressionAccumulator
    seen: int
    used: int


def score_records(model: Model, batches: Iterable[pa.RecordBatch], should_stop: ShouldStop | None = None,
                  execution: Execution = ONE_THREAD) -> ScoredRecords:
    """Score the usable records of `batches` into the model type's accumulator: slices of
    them two at a time when `execution` has two threads (their features and scores), the
    accumulator taking each in order."""
    scores = EvaluationScores(model)
    score_alone(model, batches, scores, should_stop, execution)
    return scores.scored()


class EvaluationScores:
    """What an evaluation takes from a scoring pass (prediction/scoring.py): the scores of the
    usable records (not rejected, valid target) in the model type's accumulator."""

    def __init__(self, model: Model) -> None:
        self.model = model
        accumulator: Any = {ModelType.BINARY: BinaryAccumulator, ModelType.MULTICLASS: MulticlassAccumulator,
                            ModelType.REGRESSION: RegressionAccumulator}[model.model_type]()
        self.accumulator = accumulator
        # what prepare() makes the arguments of
        self._add: Callable[..., None] = (accumulator.add_coded if model.model_type == ModelType.MULTICLASS
                                          else accumulator.add)
        self.seen = self.used = 0

    def prepare(self, scored: ScoredSlice) -> tuple[int, int, tuple[Any, ...]]:
        """(records seen, records usable, the accumulator's arguments for the usable ones)."""
        columns = Columns(scored.rows, self.model.schema)
        kind = self.model.model_type
        if kind == ModelType.REGRESSION:
            truth = target_numbers(columns)
            valid = ~np.isnan(truth)
            return scored.part.num_rows, int(valid.sum()), (truth[valid], scored.scores[valid])
        if kind == ModelType.BINARY:
            flags = target_flags(columns)
            valid = ~np.isnan(flags)
            return (scored.part.num_rows, int(valid.sum()),
                    (scored.scores[valid], (flags[valid] == 1.0).astype(np.int8)))
        valid = target_valid(columns)
        labels, codes = target_codes(columns, kind, valid)
        return scored.part.num_rows, int(valid.sum()), (
            labels, codes, self.model.classes, scored.scores[valid].argmax(axis=1))

    def take(self, prepared: tuple[int, int, tuple[Any, ...]]) -> None:
        seen, used, arguments = prepared
        self.seen += seen
        self.used += used
        if used:
            self._add(*arguments)

    def scored(self) -> ScoredRecords:
        return ScoredRecords(self.accumulator, self.seen, self.used)


def finish_evaluation(model: Model, dataset_schema: Schema, parts: Sequence[ScoredRecords],
                      training_data: bool = False, score_threshold: float = 0.5) -> Evaluation:
    """The metric and report of the records of `parts`, in order (partitions of the data);
    `training_data`: the evaluation datasource holds the model's training records;
    `score_threshold`: the model's (ScoreThreshold), at which a BINARY report counts the
    confusion matrix, as batch predictions label."""
    acc = parts[0].accumulator
    for part in parts[1:]:
        acc.merge(part.accumulator)  # type: ignore[arg-type]  # one model type: one accumulator type
    seen, used = sum(p.seen for p in parts), sum(p.used for p in parts)
    kind = model.model_type
    if used == 0:
        raise EvaluationError("The evaluation datasource has no record with a valid target")
    value = acc.metric()
    baseline: float
    details: BinaryDetails | MulticlassDetails | RegressionDetails
    if isinstance(acc, BinaryAccumulator):
        baseline, details = acc.report(score_threshold)
    elif isinstance(acc, MulticlassAccumulator):
        counts = model.summary.get("class_counts") or {}
        baseline, details = acc.report(max(counts, key=lambda c: (counts[c], c)) if counts else None)
    else:
        baseline, details = acc.report(float(model.summary.get("target_mean", 0.0)))
    alerts = _alerts(model, dataset_schema, seen, used)
    if training_data:
        alerts.insert(0, "The evaluation datasource holds the model's training records: the metric says how well "
                         "the model fits them, not how it scores records it has not seen")
    shift = target_shift(model, acc)
    if shift is not None:
        alerts.append(shift)
    report = EvaluationReport(kind, value, baseline, seen, used, alerts, details)
    return Evaluation({METRIC_KEYS[kind]: format_metric(value)}, report, used)


SHARE_SHIFT = 0.1  # a class distribution this far (total variation) from the training one
MEAN_SHIFT, SPREAD_RATIO = 0.5, 2.0  # a REGRESSION target's mean this many training spreads away, or spread
FLAT_SPREAD = 1e-9  # of the mean's size (at least 1): a spread under it is a constant target's


def target_shift(model: Model, acc: BinaryAccumulator | MulticlassAccumulator | RegressionAccumulator) -> str | None:
    """The alert that the evaluation records' target is distributed otherwise than the
    training records' (evaluation-and-prediction.md §1.4), or None: class shares SHARE_SHIFT
    or more apart (total variation distance), a REGRESSION mean MEAN_SHIFT training spreads
    away or a spread SPREAD_RATIO times larger or smaller."""
    counts = {str(k): float(v) for k, v in (model.summary.get("class_counts") or {}).items()}
    if isinstance(acc, RegressionAccumulator):
        actual = np.concatenate(acc.actual or [np.zeros(0)])
        actual = actual[np.isfinite(actual)]
        mean = float(model.summary.get("target_mean", 0.0))
        # the training spread (models before it was kept: the scale, 1 for a constant target)
        spread = float(model.summary.get("target_std", model.target_scale[1]))
        if not len(actual) or not spread >= 0:
            return None
        here = Moments.of(actual)
        least = FLAT_SPREAD * max(1.0, abs(mean))  # spreads under it are rounding: a constant target
        ratio = max(here.std, least) / max(spread, least)
        if (abs(here.mean - mean) <= MEAN_SHIFT * max(spread, least)
                and 1 / SPREAD_RATIO <= ratio <= SPREAD_RATIO):
            return None
        return (f"The target is distributed otherwise than in training: mean {here.mean:.4g} and standard "
                f"deviation {here.std:.4g}, against {mean:.4g} and {spread:.4g}")
    total = sum(counts.values())
    if not total:
        return None
    if isinstance(acc, BinaryAccumulator):
        labels = np.concatenate(acc.labels or [np.zeros(0, np.int8)])
        found = {"1": float(labels.sum()), "0": float(len(labels) - labels.sum())}
    else:
        found = {label: float(n) for label, n in zip(acc.classes(), acc.matrix().sum(axis=1), strict=True)}
    used = sum(found.values())
    if not used:
        return None
    shares = {c: (found.get(c, 0.0) / used, counts.get(c, 0.0) / total) for c in set(found) | set(counts)}
    distance = sum(abs(a - b) for a, b in shares.values()) / 2
    if distance < SHARE_SHIFT:
        return None
    label, (here_share, there_share) = max(shares.items(), key=lambda item: (abs(item[1][0] - item[1][1]), item[0]))
    return (f"The target is distributed otherwise than in training: class {label} is {here_share:.1%} of the "
            f"evaluation records against {there_share:.1%} of the training records (the class shares are "
            f"{distance:.1%} apart)")


def _alerts(model: Model, schema: Schema, seen: int, used: int) -> list[str]:
    alerts = []
    if used < seen:
        alerts.append(f"{seen - used} records could not be used (rejected, or missing or invalid target)")
    if used < 100:
        alerts.append(f"Only {used} evaluation records were used")
    if schema.to_json() != model.schema.to_json():
        alerts.append("The evaluation datasource's schema differs from the training schema")
    return alerts
