"""Helpers: schemas and materialized-layout record batches built in memory."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from openaml.ml.metrics.accumulators import MulticlassAccumulator
from openaml.ml.schema import Schema, parse_schema


def make_schema(attrs: list[tuple[str, str]], **roles: object) -> Schema:
    doc = {"attributes": [{"attributeName": n, "attributeType": t} for n, t in attrs], **roles}
    return parse_schema(json.dumps(doc))


def make_batch(columns: dict[str, list[str | None]], rejected: list[bool] | None = None,
               files: list[int] | None = None) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))
    data = {"__file": pa.array(files or [0] * n, pa.int32()),
            "__rejected": pa.array(rejected or [False] * n)}
    data.update({k: pa.array(v, pa.string()) for k, v in columns.items()})
    return pa.record_batch(data)


@pytest.fixture
def text_schema() -> Schema:
    return make_schema([("age", "NUMERIC"), ("job", "CATEGORICAL"), ("title", "TEXT"),
                        ("b", "BINARY"), ("y", "BINARY")], targetAttributeName="y")


def add_labels(accumulator: MulticlassAccumulator, true: np.ndarray, predicted: np.ndarray) -> None:
    """Add records given as label arrays to a MULTICLASS accumulator (which takes codes)."""
    true_labels, true_codes = np.unique(true.astype(str), return_inverse=True)
    predicted_labels, predicted_codes = np.unique(predicted.astype(str), return_inverse=True)
    accumulator.add_coded(true_labels.tolist(), true_codes, predicted_labels.tolist(), predicted_codes)


def converged_at(improvements: list[float]) -> int | None:
    """The first pass (index into improvements) to converge by sgd.LossTrend's rule: it improves
    the loss by under TOLERANCE right after one that improved it by under AVERAGE_BELOW tolerances."""
    from openaml.ml.training.sgd import AVERAGE_BELOW, TOLERANCE

    return next((k for k in range(1, len(improvements)) if 0 <= improvements[k] < TOLERANCE
                 and 0 <= improvements[k - 1] < AVERAGE_BELOW * TOLERANCE), None)

