"""ASCII text is split by one compiled scan (data/token_counts.py, dictionary-encoded tokens)
into exactly the tokens and rows that Arrow's utf8_split_whitespace, less its empty tokens,
gives; other text is left to Arrow."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from openaml.ml.features import tokens as tk

# every ASCII white space byte and its neighbours, letters, punctuation
ascii_text = st.text(alphabet=st.sampled_from([chr(c) for c in (*range(0, 40), 65, 97, 46, 127)]), max_size=12)


def python_tokens(column: pa.Array) -> tuple[list[str], list[int]]:
    """str.split() on ASCII splits at exactly Arrow's white space bytes (9-13, 28-32). The
    reference of the generated cases: Arrow itself once kept a 0x1C that ended the last value
    of a column (a read past its data buffer, not reproducible), so it is not one."""
    kept = [(token, row) for row, value in enumerate(column.to_pylist()) if value is not None
            for token in value.split()]
    return [v for v, _ in kept], [r for _, r in kept]


def arrow_tokens(column: pa.Array) -> tuple[list[str], list[int]]:
    lists = pc.utf8_split_whitespace(column)
    values, rows = pc.list_flatten(lists).to_pylist(), pc.list_parent_indices(lists).to_pylist()
    kept = [(v, r) for v, r in zip(values, rows, strict=True) if v]
    return [v for v, _ in kept], [r for _, r in kept]


@settings(max_examples=400, deadline=None)
@given(values=st.lists(st.one_of(st.none(), ascii_text), max_size=8), start=st.integers(0, 3))
def test_ascii_values_split_as_arrow_splits_them(values, start):
    column = pa.array(values, pa.string()).slice(min(start, len(values)))  # a slice: offsets from its start
    made = tk.tokenize(column)
    assert pa.types.is_dictionary(made.values.type)  # the compiled scan's
    assert (made.values.to_pylist(), made.rows.tolist(), made.n_rows) == (*python_tokens(column), len(column))
    lowered, cleaned = tk.lowercase(made), tk.no_punct(made)
    assert lowered.values.to_pylist() == [token.lower() for token in python_tokens(column)[0]]
    plain = tk.no_punct(tk.TokenList(tk.plain(made.values), made.rows, made.n_rows))
    assert (cleaned.values.to_pylist(), cleaned.rows.tolist()) == (plain.values.to_pylist(), plain.rows.tolist())


def test_every_ascii_white_space_byte_splits_as_in_arrow():
    column = pa.array([f"a{chr(c)}b{chr(c)}" for c in range(128)] + [None, ""])
    assert python_tokens(column) == arrow_tokens(column)
    made = tk.tokenize(column)
    assert pa.types.is_dictionary(made.values.type)
    assert (made.values.to_pylist(), made.rows.tolist()) == arrow_tokens(column)


def test_other_text_is_left_to_arrow():
    column = pa.array(["a\u00a0b c", "d\u3000e", None])
    made = tk.tokenize(column)
    assert made.values.type == pa.string()  # Arrow's split
    assert (made.values.to_pylist(), made.rows.tolist()) == (["a", "b", "c", "d", "e"], [0, 0, 0, 1, 1])


def test_large_strings_empty_columns_and_all_missing_values():
    assert tk.tokenize(pa.array(["x  y"], pa.large_string())).values.to_pylist() == ["x", "y"]
    for column in (pa.array([], pa.string()), pa.array([None, None], pa.string()), pa.array(["", " \t"])):
        made = tk.tokenize(column)
        assert len(made.values) == 0 and made.rows.dtype == np.int64 and len(made.rows) == 0


def test_large_strings_go_through_every_text_function():
    """Text or categories held as large_string (not ASCII: Arrow's split) join with the
    functions' separators as strings do."""
    column = pa.array(["café au lait", None, "thé vert"], pa.large_string())
    made = tk.tokenize(column)
    assert tk.ngrams(made, 2).values.to_pylist() == ["café", "au", "lait", "thé", "vert", "café au", "au lait",
                                                     "thé vert"]
    assert tk.osb(made, 2).values.to_pylist() == ["café_au", "au_lait", "thé_vert"]
    crossed = tk.cartesian(made, tk.from_values(pa.array(["x", "y", None], pa.large_string())))
    assert crossed.values.to_pylist() == ["café_x", "au_x", "lait_x"]
