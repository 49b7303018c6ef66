"""Cutting a stream into line blocks (lines.iter_line_blocks) against a plain reference: every
kept line with its offset, file line number, bytes and over-long flag, whatever the block size."""

import io
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openaml.ml.data import lines
from openaml.ml.data.lines import LineStart, iter_line_blocks


def _reference(content: bytes, longest: int) -> list[tuple[int, int, bytes, bool]]:
    """(offset, line number, bytes without end of line, over-long) of each non-empty line."""
    found, offset = [], 0
    pieces = content.split(b"\n")
    ended = [True] * (len(pieces) - 1) + [False]
    for number, (piece, has_lf) in enumerate(zip(pieces, ended, strict=True), start=1):
        text = piece[:-1] if has_lf and piece.endswith(b"\r") else piece
        if text:
            too_long = len(text) > longest
            found.append((offset, number, b"" if too_long else text, too_long))
        offset += len(piece) + 1
    return found


def _cut(content: bytes, block_bytes: int) -> list[tuple[int, int, bytes, bool]]:
    found = []
    for block in iter_line_blocks(io.BytesIO(content), False, block_bytes):
        for k in range(len(block)):
            found.append((int(block.offsets[k]), block.line_number(k), block.text(k), bool(block.too_large[k])))
    return found


@settings(max_examples=400, deadline=None)
@given(content=st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b",", b"\n\n"]),
                        max_size=60).map(b"".join),
       block_bytes=st.integers(1, 24), longest=st.sampled_from([3, 8, 1000]))
def test_blocks_hold_the_lines_of_a_plain_split(content, block_bytes, longest):
    """Lines cut across reads of any size (an incomplete line carried into the next read,
    an over-long one skipped to its end) are those of splitting the whole content at LF."""
    with mock.patch.object(lines, "MAX_RECORD_BYTES", longest):
        if b"\n" not in content and content.count(b"\r") >= 2:  # lines ended by CR alone
            with pytest.raises(lines.LoneReturnLineEnds):
                _cut(content, block_bytes)
        else:
            assert _cut(content, block_bytes) == _reference(content, longest)


def test_invalid_utf8_is_replaced_and_ascii_kept_as_read():
    """A block with bytes that are not UTF-8 has them replaced by U+FFFD (its lines keep their
    offsets); an ASCII block is the bytes read, not a copy."""
    content = b"ok,1\nbad\xff,2\nok,3\n"
    block, = iter_line_blocks(io.BytesIO(content), False)
    assert [block.text(k) for k in range(3)] == [b"ok,1", "bad\ufffd,2".encode(), b"ok,3"]
    assert block.offsets.tolist() == [0, 5, 12]
    ascii_block, = iter_line_blocks(io.BytesIO(b"a,1\nb,2\n"), False)
    assert isinstance(ascii_block.data.base, bytes)
    assert np.array_equal(ascii_block.data, np.frombuffer(b"a,1\nb,2\n", np.uint8))


def test_gzip_bytes_at_a_file_start_are_refused_by_every_reader():
    """Gzip data read as text (a name without .gz) would be garbage records: the line cutter
    and both line counters (a split's record count, a Dask partition's plan) refuse it at the
    start of a file; a range inside a file is read as it is."""
    import gzip

    from openaml.ml.data.lines import CompressedInput, count_line_ends, count_lines

    packed = gzip.compress(b"a,b\n1,2\n")
    for read in (lambda s: list(iter_line_blocks(s, True)), lambda s: list(count_lines(s, True)),
                 lambda s: list(count_line_ends(s, True))):
        with pytest.raises(CompressedInput, match="rename it to end in .gz"):
            read(io.BytesIO(packed))
    inside = LineStart(offset=100, line=5)
    block, = iter_line_blocks(io.BytesIO(b"\x1f\x8bx,1\n"), False, start=inside)
    assert block.text(0) == "\x1f\ufffdx,1".encode()
    assert list(count_line_ends(io.BytesIO(b"\x1f\x8bx,1\n"), False, start=inside)) == [(1, 1)]


@pytest.mark.parametrize("size", [50, 5000])
def test_lines_ended_by_lone_returns_are_refused_by_every_reader(size):
    """A file whose lines end with CR alone (classic Mac OS) is one line by the rules: it
    failed as "no records" (its one line the header) or with a wrong field count, without a
    word on why. Every reader of a file's start now says so, for a small file and for one
    whose single line is over-long; one CR inside a value of a file without LF is kept."""
    from openaml.ml.data.lines import LoneReturnLineEnds, count_line_ends, count_lines

    content = b"a,b\r" + b"".join(f"{i},{i % 7}\r".encode() for i in range(size))
    with mock.patch.object(lines, "MAX_RECORD_BYTES", 1000):
        for read in (lambda s: list(iter_line_blocks(s, True, 4096)), lambda s: list(count_lines(s, True, 4096)),
                     lambda s: list(count_line_ends(s, True, 4096))):
            with pytest.raises(LoneReturnLineEnds, match="save it with LF or CR LF line ends"):
                read(io.BytesIO(content))
    block, = iter_line_blocks(io.BytesIO(b"a,b\rc"), False)
    assert block.text(0) == b"a,b\rc"
    assert list(count_line_ends(io.BytesIO(b"1,2\r3,4\r"), False, start=LineStart(10, 3))) == [(1, 1)]
