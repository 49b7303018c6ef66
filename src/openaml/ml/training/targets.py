"""Reading the target and row weights of a batch with the training schema's types."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.features.tokens import plain
from openaml.ml.features.values import Columns
from openaml.ml.schema import AttributeType, coerce_column, coerce_floats


def kept_rows(batch: pa.RecordBatch) -> np.ndarray:
    """Mask of the records that are not rejected (data.md §8)."""
    index = batch.schema.get_field_index("__rejected")
    if index < 0:
        return np.ones(batch.num_rows, dtype=bool)
    rejected = pc.fill_null(batch.column(index), False)
    return ~np.asarray(rejected.to_numpy(zero_copy_only=False), dtype=bool)


def target_labels(columns: Columns, model_type: str) -> pa.Array:
    """The target as class label strings (BINARY -> "0"/"1"); null where missing or invalid."""
    schema = columns.schema
    assert schema.target is not None
    attr_type = schema.type_of(schema.target) or AttributeType.CATEGORICAL
    raw = plain(columns.raw(schema.target))
    if attr_type is AttributeType.BINARY:
        values = coerce_column(raw, attr_type).values
        return pc.if_else(values, "1", "0")
    if attr_type is AttributeType.NUMERIC:
        valid = pc.is_valid(coerce_column(raw, attr_type).values)
        return pc.if_else(valid, raw, pa.scalar(None, pa.string()))
    return raw.cast(pa.string())


def target_codes(columns: Columns, model_type: str, valid: np.ndarray) -> tuple[list[str], np.ndarray]:
    """target_labels of the records `valid` (target_valid's) as codes into a list of labels:
    a stored category's dictionary and indices as they are, other labels encoded (no Python
    string per record)."""
    schema = columns.schema
    assert schema.target is not None
    raw = columns.raw(schema.target)
    if pa.types.is_dictionary(raw.type) and (schema.type_of(schema.target) or AttributeType.CATEGORICAL) \
            is AttributeType.CATEGORICAL:
        kept = raw.filter(pa.array(valid))
        return kept.dictionary.cast(pa.string()).to_pylist(), np.asarray(kept.indices)
    encoded = pc.dictionary_encode(target_labels(columns, model_type).filter(pa.array(valid)))
    return encoded.dictionary.to_pylist(), np.asarray(encoded.indices)


def target_valid(columns: Columns) -> np.ndarray:
    """Which records have a target (is_valid of target_labels): a BINARY or NUMERIC one that
    reads as its type, a category that is not missing."""
    schema = columns.schema
    assert schema.target is not None
    attr_type = schema.type_of(schema.target) or AttributeType.CATEGORICAL
    raw = columns.raw(schema.target)
    if attr_type in (AttributeType.BINARY, AttributeType.NUMERIC):
        return ~np.isnan(coerce_floats(raw, attr_type))
    return np.asarray(pc.is_valid(raw).to_numpy(zero_copy_only=False), bool)


def target_flags(columns: Columns) -> np.ndarray:
    """A BINARY target as 1.0 (class "1") or 0.0 (class "0"), NaN where missing or invalid:
    target_labels of a BINARY model without its strings."""
    schema = columns.schema
    assert schema.target is not None
    return coerce_floats(columns.raw(schema.target), AttributeType.BINARY)


def target_numbers(columns: Columns) -> np.ndarray:
    """A NUMERIC target as float64, NaN where missing or invalid."""
    schema = columns.schema
    assert schema.target is not None
    return coerce_floats(columns.raw(schema.target), AttributeType.NUMERIC)


def row_weights(columns: Columns) -> np.ndarray:
    """rowWeight values; missing, invalid or non-positive weights count as 1 (data.md §8)."""
    name = columns.schema.row_weight
    if name is None:
        return np.ones(columns.n_rows)
    values = columns.get(name)
    return np.where(np.isnan(values) | (values <= 0), 1.0, values)
