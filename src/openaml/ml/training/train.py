"""train_model: recipe + training records -> Model (models.md §2)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.data.statistics_document import CountedValues, DatasetStatistics, NumericValues
from openaml.ml.errors import InputError
from openaml.ml.execution import ONE_THREAD, Execution, one_native_thread, two_at_a_time
from openaml.ml.features import fit_pipeline
from openaml.ml.features.fit import known_from
from openaml.ml.features.pipeline import FeaturePipeline
from openaml.ml.features.values import Columns
from openaml.ml.model import Model
from openaml.ml.model_type import ModelType
from openaml.ml.moments import Moments, standardize
from openaml.ml.recipes import parse_recipe
from openaml.ml.recipes.nodes import attributes_of
from openaml.ml.recipes.recipe import Recipe
from openaml.ml.schema import AttributeType, Schema
from openaml.ml.training.blocks import Block
from openaml.ml.training.params import SGDParams, check_target, class_weight_of
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.saga import fit_saga
from openaml.ml.training.sgd import MEMORY_BYTES, LinearState, fit_linear
from openaml.ml.training.size import feature_costs, model_size, trim_features
from openaml.ml.training.stop import ShouldStop, check
from openaml.ml.training.targets import (
    kept_rows,
    row_weights,
    target_flags,
    target_labels,
    target_numbers,
    target_valid,
)
from openaml.ml.training.trees import fit_trees
from openaml.ml.tree_columns import TreeColumns

MAX_CLASSES = 100
# Records and feature blocks made ahead of the one training takes, on two threads: SGD's
# compiled steps release the GIL, so while they run both threads make the next blocks (with 2,
# one of them waited for every buffer). Tabular benchmark, 1.4 M training records: pass 1
# 2.3-2.8 -> 2.1-2.2 s, fitting 0.82-0.95 -> 0.67-0.72 s.
AHEAD = 3
Batches = Callable[[], Iterator[pa.RecordBatch]]


class TrainingError(InputError):
    """Training cannot produce a model; the message becomes the model's Message."""


def usable_rows(batch: pa.RecordBatch, schema: Schema) -> pa.RecordBatch:
    """The batch's records that are not rejected and have a valid target."""
    keep = kept_rows(batch) & target_valid(Columns(batch, schema))
    return batch if keep.all() else batch.filter(pa.array(keep))  # a filter copies every column


def train_model(model_type: ModelType | str, schema: Schema, recipe_text: str, params: SGDParams,
                statistics: DatasetStatistics | None, batches: Batches,
                progress: Callable[[TrainingProgress], None] | None = None,
                memory_bytes: int = MEMORY_BYTES, should_stop: ShouldStop | None = None,
                execution: Execution = ONE_THREAD, log: Callable[[str], None] | None = None) -> Model:
    """Fit the recipe's pipeline and a linear model by SGD (or boosted trees: SGDParams.trees,
    whose rounds are told to `log` every tenth of them); `batches()` re-reads the data.
    memory_bytes bounds the records and features kept in memory (a quarter of it for records
    read once for fitting and the first pass, the rest for SGD buffers and cache).
    should_stop is asked before each batch of records (also those kept in memory) and every
    few SGD steps; once it answers True, training raises Cancelled.

    statistics: the training datasource's. What they hold spares a fitting pass over the
    records (fit.known_from): the class counts (a REGRESSION target's moments), the complete
    value lists of CATEGORICAL attributes and token lists of TEXT ones, and, when every
    record has a valid target, NUMERIC moments and value sketches (quantile bins). A
    value seen only in records without a valid target becomes a feature that no step
    touches, whose zero weight trimming removes, so a linear model is the same."""
    setup = _Setup.checked(model_type, schema, recipe_text, params)

    def usable() -> Iterator[Columns]:
        # attributes are coerced and tokenized on two threads, once for fitting and pass 1
        return two_at_a_time(setup.records, batches(), execution, ahead=AHEAD)

    training = _Replay(usable, memory_bytes // 4, should_stop)
    fitted = setup.fit(statistics, training, execution)

    def blocks() -> Iterator[Block]:
        return two_at_a_time(fitted.block, training(last=True), execution, ahead=AHEAD)

    if params.trees is not None:
        columns = TreeColumns.of(fitted.pipeline)
        return fitted.tree_model(fit_trees(fitted.model_type, blocks(), columns, fitted.outputs, params.trees,
                                           params.seed, memory_bytes * 3 // 4, should_stop, execution, log),
                                 columns)
    if params.optimizer == "saga":
        return fitted.model(fit_saga(fitted.model_type, blocks, fitted.pipeline.n_features, fitted.outputs,
                                     params, memory_bytes * 3 // 4, progress, should_stop))
    with one_native_thread():
        state = fit_linear(fitted.model_type, blocks, fitted.pipeline.n_features, fitted.outputs, params,
                           fitted.rows, progress, memory_bytes * 3 // 4, should_stop, execution)
    return fitted.model(state)


def prepare_training(model_type: ModelType | str, schema: Schema, recipe_text: str, params: SGDParams,
                     statistics: DatasetStatistics | None, batches: Batches,
                     should_stop: ShouldStop | None = None,
                     execution: Execution = ONE_THREAD) -> TrainingSetup:
    """The fitted pipeline and target of a training whose passes run elsewhere (parallel.py),
    from one read of `batches()` at most (none when the statistics suffice), as train_model
    fits them."""
    setup = _Setup.checked(model_type, schema, recipe_text, params)

    def training() -> Iterator[Columns]:
        for columns in two_at_a_time(setup.records, batches(), execution):
            check(should_stop)
            yield columns

    return setup.fit(statistics, training, execution)


@dataclass(frozen=True)
class _Setup:
    """What a training reads: the model type, schema, recipe and the attributes it uses."""

    model_type: ModelType
    schema: Schema
    recipe_text: str
    params: SGDParams
    recipe: Recipe
    names: list[str]

    @classmethod
    def checked(cls, model_type: ModelType | str, schema: Schema, recipe_text: str,
                params: SGDParams) -> _Setup:
        try:
            check_target(model_type, schema)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        recipe = parse_recipe(recipe_text, schema)
        names = sorted(set().union(*(attributes_of(source) for source in recipe.outputs))
                       | ({schema.row_weight} if schema.row_weight else set()))
        return cls(ModelType(model_type), schema, recipe_text, params, recipe, names)

    def records(self, batch: pa.RecordBatch) -> Columns:
        return _read_records(batch, self.schema, self.names)

    def fit(self, statistics: DatasetStatistics | None, training: Callable[[], Iterator[Columns]],
            execution: Execution) -> TrainingSetup:
        """The pipeline and target fitted on the records of `training()` (see train_model)."""
        known = _TargetSummary.from_statistics(self.model_type, self.schema, statistics)
        # classes known from the statistics: weights checked (and made) before any read
        early = class_weight_of(self.params.class_weights, known.counts, known.classes()) if known else None
        target = known or _TargetSummary(self.model_type, self.schema)
        pipeline = fit_pipeline(self.recipe.outputs, self.schema, training, None if known else target.observe,
                                known_from(statistics, self.schema), execution)
        if target.records == 0:
            raise TrainingError("The training datasource has no usable record (valid target)")
        classes, summary = target.classes(), target.summary()
        class_weight = early if known else class_weight_of(self.params.class_weights, target.counts, classes)
        if class_weight is not None:
            summary["class_weights"] = dict(zip(classes, class_weight.tolist()))
        return TrainingSetup(self.model_type, self.schema, self.recipe_text, self.params, self.names,
                             pipeline, classes, target.scale(), summary, target.records, class_weight)


@dataclass(frozen=True)
class TrainingSetup:
    """A training's fitted pipeline and target (classes, or the regression target's scale):
    what turns records into SGD blocks and final weights into a Model. Pickles, to be sent."""

    model_type: ModelType
    schema: Schema
    recipe_text: str
    params: SGDParams
    names: list[str]
    pipeline: FeaturePipeline
    classes: list[str]
    scale: tuple[float, float]
    summary: dict[str, Any]
    rows: int  # usable records
    class_weight: np.ndarray | None = None  # by class index (openaml.classWeights), times row weights

    @property
    def outputs(self) -> int:
        return len(self.classes) if self.model_type == ModelType.MULTICLASS else 1

    def records(self, batch: pa.RecordBatch) -> Columns:
        return _read_records(batch, self.schema, self.names)

    def block(self, columns: Columns) -> Block:
        """The SGD block of records read by `records`."""
        if self.model_type == ModelType.REGRESSION:
            y = standardize(target_numbers(columns), *self.scale)
        elif self.model_type == ModelType.BINARY:  # classes "0" and "1": their codes are the flags
            y = target_flags(columns)
        else:
            labels = target_labels(columns, self.model_type)
            y = pc.index_in(labels, value_set=pa.array(self.classes, pa.string())).to_numpy(
                zero_copy_only=False).astype(np.float64)
        weights = row_weights(columns)
        if self.class_weight is not None:
            if np.isnan(y).any():  # usable rows hold the fitted classes alone
                raise TrainingError("A training record's class is not among the classes the training found")
            weights = weights * self.class_weight[y.astype(np.intp)]
        return Block.from_rows(self.pipeline.rows(columns.batch, columns), y, weights)

    def tree_model(self, trees: str, columns: TreeColumns) -> Model:
        """The model of boosted trees (LightGBM's text) on the whole pipeline, which the trees'
        `columns` were made from: its size is the pipeline's and the trees' text, within the
        size cap."""
        size = (model_size(feature_costs(self.pipeline.name_sizes(), 0), self.pipeline.n_statistics())
                + len(trees.encode("utf-8")))
        if size > self.params.max_size:
            raise TrainingError(f"The model of {size} bytes cannot fit sgd.maxMLModelSizeInBytes="
                                f"{self.params.max_size}: fewer gbdt.rounds or gbdt.leaves make it smaller")
        model = Model(
            model_type=self.model_type, schema=self.schema, recipe=self.recipe_text, classes=self.classes,
            pipeline=self.pipeline, weights=np.zeros((0, self.outputs)), bias=np.zeros(self.outputs),
            target_scale=self.scale, summary=self.summary, size_in_bytes=size, trees=trees,
        )
        model._columns = columns
        return model

    def model(self, state: LinearState) -> Model:
        """The model of the fitted weights, its features trimmed to the size cap."""
        costs = feature_costs(self.pipeline.name_sizes(), self.outputs)
        kept = trim_features(state.weights, costs, self.pipeline.n_statistics(), self.params.max_size,
                             self.pipeline.feature_names)
        if kept is None:
            raise TrainingError(f"The model cannot fit sgd.maxMLModelSizeInBytes={self.params.max_size}")
        pipeline = self.pipeline.select(kept)
        return Model(
            model_type=self.model_type, schema=self.schema, recipe=self.recipe_text, classes=self.classes,
            pipeline=pipeline, weights=state.weights[kept], bias=state.bias,
            target_scale=self.scale, summary=self.summary,
            size_in_bytes=model_size(costs[kept], pipeline.n_statistics()),
        )


def _read_records(batch: pa.RecordBatch, schema: Schema, names: list[str]) -> Columns:
    """The batch's usable records, attributes `names` read (the target kept raw)."""
    assert schema.target is not None  # check_target
    return Columns(usable_rows(batch, schema), schema).read(names, [schema.target])


class _Replay:
    """A re-readable source of batches of records whose first complete read is kept in memory
    when it fits `limit` bytes: fitting the features and the first SGD pass then read the data
    once. A read left before its end keeps nothing and leaves the next one to try. should_stop
    is asked before every batch, read or kept."""

    def __init__(self, source: Callable[[], Iterator[Columns]], limit: int,
                 should_stop: ShouldStop | None = None) -> None:
        self.source, self.limit, self.should_stop = source, limit, should_stop
        self.kept: list[Columns] | None = None
        self.tried = False

    def __call__(self, last: bool = False) -> Iterator[Columns]:
        """The batches; `last`: kept ones are let go as they are handed out (training's first
        pass: the features' plans replace them, and the memory they held is the next blocks'),
        so a later read reads the source again."""
        for columns in self._batches(last):
            check(self.should_stop)
            yield columns

    def _batches(self, last: bool) -> Iterator[Columns]:
        if self.kept is not None:
            if not last:
                yield from self.kept
                return
            handed, self.kept = self.kept[::-1], None
            while handed:
                yield handed.pop()
            return
        kept: list[Columns] | None = None if self.tried or last else []
        size = 0
        for columns in self.source():
            if kept is not None:
                size += columns.nbytes
                kept = kept if size <= self.limit else None
                if kept is not None:
                    kept.append(columns)
                else:
                    self.tried = True  # too large: no later read keeps them either
            yield columns
        self.tried, self.kept = True, kept


class _TargetSummary:
    """Class counts or target moments of the training records: from the datasource statistics,
    or else gathered in the fitting pass."""

    def __init__(self, model_type: str, schema: Schema) -> None:
        self.model_type, self.schema = model_type, schema
        self.records = 0
        self.counts: dict[str, int] = {}
        self.moments = Moments()  # a REGRESSION target's

    @classmethod
    def from_statistics(cls, model_type: ModelType, schema: Schema,
                        statistics: DatasetStatistics | None) -> _TargetSummary | None:
        """The class counts or target moments of the datasource statistics, when they are
        those of the records training uses: a CATEGORICAL target for MULTICLASS, a BINARY
        one for BINARY, a NUMERIC one for REGRESSION (records not rejected, with a valid
        target); None otherwise."""
        wanted = {ModelType.MULTICLASS: AttributeType.CATEGORICAL, ModelType.BINARY: AttributeType.BINARY,
                  ModelType.REGRESSION: AttributeType.NUMERIC}[model_type]
        target = statistics.target if statistics is not None else None
        if target is None or target.name != schema.target or target.attribute_type is not wanted:
            return None
        attribute = statistics.attributes.get(target.name) if statistics is not None else None
        summary = cls(model_type, schema)
        summary.records = target.valid_count
        if attribute is not None and isinstance(attribute.values, NumericValues):
            values = attribute.values
            m2 = None if values.variance is None else values.variance * target.valid_count
            if values.mean is None or m2 is None or not math.isfinite(m2) or not target.valid_count:
                return None  # (numbers near the double's range: the records give scaled moments)
            summary.moments = Moments(target.valid_count, values.mean, m2)
            return summary
        if (target.class_counts is None or attribute is None
                or (isinstance(attribute.values, CountedValues) and attribute.values.truncated)):
            return None
        summary.counts = {k: v for k, v in target.class_counts.items() if v > 0}
        return summary

    def observe(self, columns: Columns) -> None:
        self.records += columns.n_rows
        if self.model_type == ModelType.REGRESSION:
            with np.errstate(over="ignore", invalid="ignore"):  # too large: scale() says so
                self.moments.merge(Moments.of(target_numbers(columns)))
            return
        counts = pc.value_counts(target_labels(columns, self.model_type))
        for item in counts.to_pylist():
            self.counts[item["values"]] = self.counts.get(item["values"], 0) + item["counts"]

    def classes(self) -> list[str]:
        if self.model_type == ModelType.REGRESSION:
            return []
        if self.model_type == ModelType.BINARY:
            found = ["0", "1"]
            if len(self.counts) < 2:
                raise TrainingError("The training data contain only one class of the target")
            return found
        if len(self.counts) > MAX_CLASSES:
            raise TrainingError(f"Number of classes {len(self.counts)} exceeds the limit of {MAX_CLASSES}")
        if len(self.counts) < 2:
            raise TrainingError("The training data contain fewer than 2 classes of the target")
        return sorted(self.counts)

    def scale(self) -> tuple[float, float]:
        if self.model_type != ModelType.REGRESSION:
            return 0.0, 1.0
        return self.moments.mean, self.moments.std or 1.0

    def summary(self) -> dict[str, Any]:
        if self.model_type == ModelType.REGRESSION:
            # the spread itself (0 for a constant target), where the scale takes 1 instead
            return {"records": self.records, "target_mean": self.scale()[0], "target_std": self.moments.std}
        return {"records": self.records, "class_counts": dict(sorted(self.counts.items()))}
