"""The compiled NUMBER_PATTERN check (schema.values.number_mask) against the regular expression."""

import re

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from openaml.ml.schema.values import NUMBER_PATTERN, number_mask

PATTERN = re.compile(NUMBER_PATTERN)
texts = st.text(alphabet="0123456789+-.eE x\u0661", max_size=8) | st.sampled_from(
    ["1", "-2.5", "+.5", "5.", ".", "1e5", "1E+05", "1e", "e5", "--1", "1.2.3", " 1", "1e400"])


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.none() | texts, max_size=20), start=st.integers(0, 3),
       large=st.booleans())
def test_number_mask_matches_the_pattern(values, start, large):
    column = pa.array(values, pa.large_string() if large else pa.string()).slice(start)
    expected = [v is not None and PATTERN.fullmatch(v) is not None for v in values[start:]]
    assert number_mask(column).tolist() == expected


def test_an_array_without_characters():
    assert number_mask(pa.array([None, ""], pa.string())).tolist() == [False, False]
    assert number_mask(pa.array([], pa.string())).dtype == np.bool_
