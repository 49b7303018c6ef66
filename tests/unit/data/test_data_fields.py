"""The compiled field splitter (fields.split_fields) against the vectorised one it replaced
(vectorised_fields.py): the same reason for every line and the same values, on any bytes."""

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from vectorised_fields import reference_fields

from openaml.ml.data.fields import split_fields
from openaml.ml.data.lines import iter_line_blocks

# every byte the rules treat specially, and a few ordinary ones
ALPHABET = [b"a", b"x", b",", b'"', b" ", b"\t", b"\x0b", b"\x0c", b"\r", "é".encode(), b"1"]
lines = st.lists(st.lists(st.sampled_from(ALPHABET), max_size=14).map(b"".join), min_size=1,
                 max_size=12)


def _compare(content: bytes, n_fields: int, block_bytes: int = 1 << 20) -> None:
    for block in iter_line_blocks(io.BytesIO(content), False, block_bytes):
        got = split_fields(block, n_fields)
        reason, starts, ends, quoted = reference_fields(block, n_fields)
        assert np.array_equal(got.reason, reason)
        missing = ends <= starts
        assert np.array_equal(got.ends <= got.starts, missing)
        assert np.array_equal(got.quoted, quoted)
        assert np.array_equal(np.where(missing, 0, got.starts), np.where(missing, 0, starts))
        assert np.array_equal(np.where(missing, 0, got.ends), np.where(missing, 0, ends))


@settings(max_examples=500, deadline=None)
@given(lines=lines, n_fields=st.integers(1, 4))
def test_compiled_splitter_matches_the_vectorised_one(lines, n_fields):
    _compare(b"\n".join(lines) + b"\n", n_fields)


def test_over_long_lines_and_blocks():
    """Lines over MAX_RECORD_BYTES (reason 1) and several blocks of one file."""
    long = b"a," + b"x" * 200_000
    content = b'1, "2"\n' + long + b'\n"a,b" , c\n' * 3 + b'"odd,1\n1,2,3\n'
    _compare(content, 2, block_bytes=64)
    _compare(content, 2)


def test_lines_with_another_field_count_take_no_value_spans(monkeypatch):
    """Spans are allocated for the well-formed lines only: a wrong schema (one field a line
    against 100 attributes) once allocated 100 spans a line, 800 MB for 1 MB of input."""
    import openaml.ml.data.fields as fields

    content = b"1,2\n" + b"a\n" * 5000
    block = next(iter_line_blocks(io.BytesIO(content), False))
    split_fields(block, 2)  # compiled before np is watched

    class Watched:
        shapes: list = []

        def __getattr__(self, name):
            return getattr(np, name)

        def empty(self, shape, dtype=float):
            self.shapes.append(shape)
            return np.empty(shape, dtype)

    watched = Watched()
    monkeypatch.setattr(fields, "np", watched)
    found = split_fields(block, 100)
    assert found.starts.shape == (0, 100) and (found.reason == 3).all()
    assert all(shape[0] == 0 for shape in watched.shapes if isinstance(shape, tuple))


def _reference_spans(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines' starts and ends as the NumPy version of lines._line_spans found them."""
    ends = np.flatnonzero(array == 10).astype(np.int64)
    if len(array) and (len(ends) == 0 or ends[-1] != len(array) - 1):
        ends = np.append(ends, len(array))
    starts = np.concatenate(([0], ends[:-1] + 1))[:len(ends)].astype(np.int64)
    has_cr = np.zeros(len(ends), dtype=np.bool_)
    nonempty = ends > starts
    has_cr[nonempty] = array[ends[nonempty] - 1] == 13
    has_cr &= ends < len(array)  # a CR ends a line only when an LF follows it
    return starts, ends - has_cr


@settings(max_examples=300, deadline=None)
@given(content=st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b",", b"\n\n"]), max_size=40).map(b"".join))
def test_line_spans_are_the_vectorised_ones(content):
    """The compiled line spans: LF and CR LF ends, empty lines, a last line without an LF
    (its CR kept), no bytes at all."""
    from openaml.ml.data.lines import _line_spans

    array = np.frombuffer(content, np.uint8)
    starts, ends = _line_spans(array)
    expected = _reference_spans(array)
    assert np.array_equal(starts, expected[0]) and np.array_equal(ends, expected[1])
