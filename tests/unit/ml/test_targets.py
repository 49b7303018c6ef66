"""Reading the target: the NumPy forms (valid records, BINARY flags, numbers) against the
labels every other reader takes (target_labels)."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openaml.ml.features.values import Columns
from openaml.ml.training.targets import target_codes, target_flags, target_labels, target_numbers, target_valid

from .conftest import make_schema

FIELDS = st.none() | st.sampled_from(["1", "0", "yes", "No", "TRUE", "f", "y", "maybe", "2.5", "-1e3", "x", "", " "])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(FIELDS, min_size=1, max_size=40), encoded=st.booleans(), start=st.integers(0, 2),
       attr_type=st.sampled_from(["BINARY", "NUMERIC", "CATEGORICAL"]))
def test_target_forms_agree_with_the_labels(values, encoded, start, attr_type):
    """Whatever the target's type and encoding (slices, missing fields, invalid values): the
    records with a target are those with a label, a BINARY target's flags are its labels
    "1" and "0", and a NUMERIC target's numbers are its labels' values."""
    schema = make_schema([("x", "NUMERIC"), ("y", attr_type)], targetAttributeName="y")
    column = pa.array(values, pa.string())
    column = (column.dictionary_encode() if encoded else column).slice(start)
    columns = Columns(pa.record_batch({"x": pa.nulls(len(column), pa.string()), "y": column}), schema)
    kind = {"BINARY": "BINARY", "NUMERIC": "REGRESSION", "CATEGORICAL": "MULTICLASS"}[attr_type]
    labels = target_labels(columns, kind)
    valid = target_valid(columns)
    assert valid.dtype == np.bool_ and valid.tolist() == pc.is_valid(labels).to_pylist()
    names, codes = target_codes(columns, kind, valid)  # an evaluation's form of them
    assert [names[c] for c in codes] == labels.filter(pa.array(valid)).to_pylist()
    if attr_type == "BINARY":
        flags = target_flags(columns)
        assert [None if np.isnan(f) else f for f in flags.tolist()] == [
            None if label is None else float(label == "1") for label in labels.to_pylist()]
    if attr_type == "NUMERIC":
        numbers = target_numbers(columns)
        assert [None if np.isnan(v) else v for v in numbers.tolist()] == [
            None if label is None else float(label) for label in labels.to_pylist()]


@pytest.mark.parametrize("encoded", [False, True])
def test_a_binary_target_reads_as_flags(encoded):
    schema = make_schema([("y", "BINARY")], targetAttributeName="y")
    column = pa.array(["yes", None, "0", "maybe", "TRUE"], pa.string())
    columns = Columns(pa.record_batch({"y": column.dictionary_encode() if encoded else column}), schema)
    assert np.array_equal(target_flags(columns), [1.0, np.nan, 0.0, np.nan, 1.0], equal_nan=True)
    assert target_valid(columns).tolist() == [True, False, True, False, True]
