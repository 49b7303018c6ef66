"""What a linear model says about itself: its largest weights and one record's contributions.

A model scores z = x · W + b (W: n_features × outputs, see `openaml.ml.model`), so a feature's
contribution to output k for a record is x_f · W[f, k]; the contributions plus the bias sum to
z_k (before the link function; REGRESSION outputs are then scaled by the target's std).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from openaml.ml.model import Model


def output_names(model: Model) -> list[str]:
    """One name per weight column: the classes for MULTICLASS, else the single score."""
    if model.model_type == "MULTICLASS":
        return list(model.classes)
    return ["score (class 1)" if model.model_type == "BINARY" else "predicted value"]


def top_weights(model: Model, limit: int = 10) -> list[dict[str, Any]]:
    """Per output column, the `limit` features with the largest |weight|, largest first."""
    names = model.pipeline.feature_names()
    weights = np.asarray(model.weights, dtype=np.float64)
    out = []
    for k, output in enumerate(output_names(model)):
        column = weights[:, k] if weights.ndim == 2 else weights
        order = np.argsort(-np.abs(column), kind="stable")[:limit]
        out.append({"output": output, "bias": float(np.ravel(model.bias)[k]),
                    "features": [(names[i] if i < len(names) else f"#{i}", float(column[i])) for i in order]})
    return out


def record_batch(model: Model, record: dict[str, str]) -> pa.RecordBatch:
    """A one-row batch of raw strings named like the training schema (absent -> null)."""
    return pa.RecordBatch.from_pydict(
        {a.name: pa.array([record.get(a.name) or None], pa.string()) for a in model.schema.attributes})


def contributions(model: Model, record: dict[str, str], output: int, limit: int = 15) -> list[tuple[str, float]]:
    """The non-zero features of `record` times their weight for output column `output`,
    largest |contribution| first (in score units before the link function)."""
    x = model.pipeline.transform(record_batch(model, record)).tocsr()
    names = model.pipeline.feature_names()
    weights = np.asarray(model.weights, dtype=np.float64)
    column = weights[:, output] if weights.ndim == 2 else weights
    row = x.getrow(0)
    values = row.data * column[row.indices]
    order = np.argsort(-np.abs(values), kind="stable")[:limit]
    return [(names[row.indices[i]] if row.indices[i] < len(names) else f"#{row.indices[i]}",
             float(values[i])) for i in order if values[i] != 0]


def output_index(model: Model, prediction: dict[str, Any]) -> int:
    """The weight column that explains a prediction: the predicted class for MULTICLASS."""
    if model.model_type != "MULTICLASS":
        return 0
    label = str(prediction.get("predictedLabel", ""))
    return model.classes.index(label) if label in model.classes else 0


def predict(model: Model, record: dict[str, str], threshold: float) -> dict[str, Any]:
    """Predict's "Prediction" for one record, through the engine's `predict_record`."""
    from openaml.ml.prediction import predict_record  # the engine's module, loaded on use

    return dict(predict_record(model, record, threshold))
