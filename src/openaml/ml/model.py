"""The trained model and its artifact format.

Artifact (format "openaml-model", version 1): a ZIP archive holding
  model.json   header: format, version, model_type, recipe (text as supplied), schema (the
               training schema's compact JSON), classes, target_scale (REGRESSION mean and std
               of the target), summary (training target counts or moments, for baselines),
               size_in_bytes (models.md §4) and the feature pipeline state (recipe.md §8:
               sources, fitted statistics, vocabularies in feature order);
  weights.npy  float64 (n_features, outputs), outputs = number of classes for MULTICLASS, else 1;
  bias.npy     float64 (outputs,).
Version 2, a model of gradient-boosted trees (openaml.algorithm=gbdt): the same, with
"algorithm": "gbdt" in the header, empty weights and zero bias, and
  trees.txt    LightGBM's model text, whose trees split on the columns that ml.tree_columns
               makes of the pipeline's features (a column per category source).
(Version 1 readers refuse version 2 artifacts instead of scoring them as linear models.)
The score threshold is not part of the artifact: it is the service's model attribute.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pyarrow as pa

from openaml.ml.features.pipeline import FeaturePipeline
from openaml.ml.linear import linear_scores
from openaml.ml.model_type import ModelType
from openaml.ml.moments import unstandardize
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.tree_columns import TreeColumns
from openaml.ml.trees import booster as load_booster
from openaml.ml.trees import importance, tree_contributions, tree_scores

FORMAT = "openaml-model"
VERSION, TREES_VERSION = 1, 2


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores (rows, classes): the MULTICLASS link. A row whose greatest
    score is infinite (standardized inputs are bounded: weights past a double's range) shares
    its probability among the classes of that score; a row with a NaN score stays NaN."""
    top = z.max(axis=1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z - top)
    probabilities: np.ndarray = e / e.sum(axis=1, keepdims=True)
    infinite = np.isinf(top[:, 0])
    if infinite.any():
        at_top = z[infinite] == top[infinite]
        probabilities[infinite] = at_top / at_top.sum(axis=1, keepdims=True)
    return probabilities


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The BINARY link 1 / (1 + e^-z), overflow-free."""
    probability: np.ndarray = np.exp(-np.logaddexp(0.0, -z))
    return probability


def answered(scores: np.ndarray) -> np.ndarray:
    """Scores as Predict answers them: rounded to 32-bit floats (which keeps their order)."""
    rounded: np.ndarray = np.asarray(scores, np.float64).astype(np.float32).astype(np.float64)
    return rounded


def positive(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each BINARY score gives the label 1: it is at or above the threshold (models.md
    §5) as the 32-bit float Predict answers, so a label never contradicts its score (a score
    just below a threshold set to the score Predict gave was 0). Predict, batch predictions and
    evaluations label alike."""
    labels: np.ndarray = answered(scores) >= threshold
    return labels


@dataclass
class Model:
    model_type: ModelType
    schema: Schema  # the training schema; its types override other datasources' (data.md §3.6)
    recipe: str
    classes: list[str]  # sorted by code point; ["0", "1"] for BINARY; [] for REGRESSION
    pipeline: FeaturePipeline
    weights: np.ndarray
    bias: np.ndarray
    target_scale: tuple[float, float] = (0.0, 1.0)
    summary: dict[str, Any] = field(default_factory=dict)
    size_in_bytes: int = 0
    trees: str | None = None  # LightGBM's model text (openaml.algorithm=gbdt), instead of weights
    _booster: Any = field(default=None, init=False, repr=False, compare=False)
    _columns: TreeColumns | None = field(default=None, init=False, repr=False, compare=False)
    _names: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def algorithm(self) -> str:
        return "sgd" if self.trees is None else "gbdt"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_booster": None, "_columns": None, "_names": None}  # made again where used

    def raw_scores(self, rows: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> np.ndarray:
        """The scores z (rows, outputs) of FeaturePipeline.rows() output, before the link."""
        if self.trees is None:
            return linear_scores(rows, self.weights, self.bias)
        return tree_scores(rows, self.booster(), self.tree_columns(), len(self.bias))

    def feature_names(self) -> list[str]:
        """The names of what the model weighs: the pipeline's features, or the trees' columns
        (made once: an explained Predict names a few of a model's many)."""
        if self._names is None:
            self._names = self.pipeline.feature_names() if self.trees is None else list(self.tree_columns().names)
        return self._names

    def contributions(self, ids: np.ndarray, values: np.ndarray, output: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The parts of one record's score `output` (pipeline features `ids`, ascending, with
        `values`): the features (positions in feature_names()) that have one, their parts
        (value times weight, or the trees' SHAP values), and the baseline they add to (the
        bias, or the trees' expected score). BINARY and MULTICLASS scores are before the link;
        a REGRESSION one is the predicted value itself, its parts in the target's units (its
        link, z * std + mean, is affine: parts times std, the baseline linked). Only the
        record's own features are made: a linear MNIST model has 200,000."""
        if self.trees is None:
            features, parts = np.asarray(ids), values * self.weights[ids, output]
            baseline = float(np.ravel(self.bias)[output])
        else:
            rows = (np.array([0, len(ids)]), np.asarray(ids, np.int32), np.asarray(values, np.float64))
            found = tree_contributions(rows, self.booster(), self.tree_columns(), len(self.bias))[0, output]
            features = np.flatnonzero(found[:-1])
            parts, baseline = found[features], float(found[-1])
        if self.model_type == ModelType.REGRESSION:
            mean, std = self.target_scale
            with np.errstate(over="ignore"):
                parts = parts * std
            baseline = float(unstandardize(np.array([baseline]), mean, std)[0])
        return features, parts, baseline

    def importance(self) -> np.ndarray:
        """The trees' total split gain per column (feature_names()); a linear model has none."""
        if self.trees is None:
            raise ValueError("A linear model's importance is its weights")
        return importance(self.booster(), self.tree_columns().n_columns)

    def tree_columns(self) -> TreeColumns:
        """The columns the trees split on (made from the pipeline once, then kept)."""
        if self._columns is None:
            self._columns = TreeColumns.of(self.pipeline)
        return self._columns

    def booster(self) -> Any:
        """The LightGBM booster of the trees (loaded from their text once, then kept)."""
        if self._booster is None:
            assert self.trees is not None
            self._booster = load_booster(self.trees)
        return self._booster

    def link(self, z: np.ndarray) -> np.ndarray:
        """Scores from linear scores z (rows, outputs). MULTICLASS: probabilities (rows,
        classes); BINARY: P(1) (rows,); REGRESSION: values."""
        if self.model_type == ModelType.MULTICLASS:
            return softmax(z)
        if self.model_type == ModelType.BINARY:
            return sigmoid(z[:, 0])
        return unstandardize(z[:, 0], *self.target_scale)

    def score_batch(self, batch: pa.RecordBatch) -> np.ndarray:
        """Scores of every row of a raw-string batch (no rejected-row filtering); a linear
        model's straight from the looked-up features (FeaturePipeline.scores), the same as
        raw_scores' of their rows."""
        parts = (self.pipeline.score_chunks(batch, self.weights, self.bias) if self.trees is None
                 else (self.raw_scores(rows) for rows in self.pipeline.row_chunks(batch)))
        return self.link(np.concatenate(list(parts) or [np.zeros((0, len(self.bias)))]))

    def score_table(self, table: pa.Table) -> np.ndarray:
        """Offline scoring of a pyarrow table of raw strings named like the schema attributes."""
        table = table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))
        parts = [self.score_batch(b) for b in table.to_batches()]
        return np.concatenate(parts) if parts else np.zeros(0)

    def save(self, stream: IO[bytes]) -> None:
        header = {
            "format": FORMAT, "version": VERSION if self.trees is None else TREES_VERSION,
            "algorithm": self.algorithm, "model_type": self.model_type,
            "recipe": self.recipe, "schema": self.schema.to_json(), "classes": self.classes,
            "target_scale": list(self.target_scale), "summary": self.summary,
            "size_in_bytes": self.size_in_bytes, "pipeline": self.pipeline.to_json(),
        }
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("model.json", json.dumps(header, ensure_ascii=False))
            # float weights hardly compress: stored as they are, they write and load 5x faster
            archive.writestr("weights.npy", _npy(self.weights), compress_type=zipfile.ZIP_STORED)
            archive.writestr("bias.npy", _npy(self.bias), compress_type=zipfile.ZIP_STORED)
            if self.trees is not None:
                archive.writestr("trees.txt", self.trees)


def load_model(stream: IO[bytes]) -> Model:
    """Read an artifact written by Model.save."""
    with zipfile.ZipFile(stream) as archive:
        header = json.loads(archive.read("model.json"))
        if header.get("format") != FORMAT or header.get("version") not in (VERSION, TREES_VERSION):
            raise ValueError("Not an openaml model artifact of a supported version")
        weights = np.load(io.BytesIO(archive.read("weights.npy")))
        bias = np.load(io.BytesIO(archive.read("bias.npy")))
        trees = archive.read("trees.txt").decode("utf-8") if header["version"] == TREES_VERSION else None
    schema = parse_schema(header["schema"], stored=True)
    return Model(
        model_type=ModelType(header["model_type"]), schema=schema, recipe=header["recipe"],
        classes=header["classes"], pipeline=FeaturePipeline.from_json(header["pipeline"], schema),
        weights=weights, bias=bias, target_scale=tuple(header["target_scale"]),
        summary=header["summary"], size_in_bytes=header["size_in_bytes"], trees=trees,
    )


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()
