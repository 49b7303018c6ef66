"""Splitting lines into fields and columns with NumPy (data.md §1, §8), no per-row Python.

Quoting rule (RFC 4180 without line breaks in values): a double quote toggles the quoted
state, so a comma is a separator when the number of quotes before it on its line is even
(a doubled quote "" toggles twice and is neutral). A line with an odd number of quotes has an
unterminated quoted value and is rejected. A field is then its bytes between separators with
surrounding white space stripped; if it starts and ends with a quote these are removed, inner
"" becomes " and white space is stripped again. An empty result is a missing value (null).

One compiled pass over each line finds its separators, strips and unquotes its fields and
classifies it; columns are then built straight from the byte buffer: value start/end
positions form an (L, C) matrix for the L well-formed lines with C fields. A column whose fields are all at most 8
plain bytes (numbers, codes, pixels...) is dictionary-encoded by packing each field into a
uint64 key and hashing those integers, which is several times faster than hashing strings;
other columns are gathered into a string array and dictionary-encoded by Arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from openaml.ml.data.lines import LineBlock
from openaml.ml.schema import WHITE_SPACE

QUOTE, COMMA = 34, 44
REASONS = ("too_large", "unterminated_quote", "wrong_field_count")
_WHITE = np.zeros(256, dtype=np.bool_)
_WHITE[[ord(c) for c in WHITE_SPACE]] = True


@dataclass(frozen=True)
class Fields:
    """Values of a block: `reason` per line (0 = well formed, else 1 + REASONS index) and, for
    the well-formed lines in order, the spans `starts`/`ends` of shape (L, C) of their values
    (stripped, without their quotes) and `quoted` (L, C): the value was quoted, so a doubled
    quote inside stands for one."""

    reason: npt.NDArray[np.int8]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    quoted: npt.NDArray[np.bool_]


def split_fields(block: LineBlock, n_fields: int) -> Fields:
    """Classify every line of the block and locate the values of the well-formed ones (the
    spans are made for those only: lines with other field counts cost no memory)."""
    reason = np.zeros(len(block), dtype=np.int8)
    _classify_lines(block.data, block.starts, block.ends, block.too_large, n_fields, reason)
    good = np.flatnonzero(reason == 0)
    starts = np.empty((len(good), n_fields), dtype=np.int64)
    ends = np.empty((len(good), n_fields), dtype=np.int64)
    quoted = np.zeros((len(good), n_fields), dtype=np.bool_)
    _locate_values(block.data, block.starts[good], block.ends[good], _WHITE, starts, ends, quoted)
    return Fields(reason, starts, ends, quoted)


@njit(cache=True, nogil=True)
def _classify_lines(data: npt.NDArray[np.uint8], line_starts: npt.NDArray[np.int64],
                    line_ends: npt.NDArray[np.int64], too_large: npt.NDArray[np.bool_],
                    n_fields: int, reason: npt.NDArray[np.int8]) -> None:
    """Per line: 1 too large, 2 an odd number of quotes, 3 another field count, else 0."""
    for k in range(len(line_starts)):
        if too_large[k]:
            reason[k] = 1
            continue
        separators, inside = 0, False
        for p in range(line_starts[k], line_ends[k]):
            if data[p] == QUOTE:
                inside = not inside
            elif data[p] == COMMA and not inside:
                separators += 1
        if inside:
            reason[k] = 2
        elif separators != n_fields - 1:
            reason[k] = 3


@njit(cache=True, nogil=True)
def _locate_values(data: npt.NDArray[np.uint8], line_starts: npt.NDArray[np.int64],
                   line_ends: npt.NDArray[np.int64], white: npt.NDArray[np.bool_],
                   starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64],
                   quoted: npt.NDArray[np.bool_]) -> None:
    """Row k of starts/ends/quoted: the values of well-formed line k, stripped and unquoted."""
    n_fields = starts.shape[1]
    for k in range(len(line_starts)):
        count, field, inside = 0, line_starts[k], False
        for p in range(line_starts[k], line_ends[k]):
            if data[p] == QUOTE:
                inside = not inside
            elif data[p] == COMMA and not inside:
                starts[k, count], ends[k, count] = field, p
                count += 1
                field = p + 1
        starts[k, count], ends[k, count] = field, line_ends[k]
        for j in range(n_fields):
            s, e = _stripped(data, white, starts[k, j], ends[k, j])
            if e - s >= 2 and data[s] == QUOTE and data[e - 1] == QUOTE:
                quoted[k, j] = True
                s, e = _stripped(data, white, s + 1, e - 1)
            starts[k, j], ends[k, j] = s, e


@njit(cache=True, nogil=True, inline="always")
def _stripped(data: npt.NDArray[np.uint8], white: npt.NDArray[np.bool_], s: int,
              e: int) -> tuple[int, int]:
    """The span [s, e) without the white space at its ends."""
    while s < e and white[data[s]]:
        s += 1
    while s < e and white[data[e - 1]]:
        e -= 1
    return s, e


def build_columns(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
                  ends: npt.NDArray[np.int64], quoted: npt.NDArray[np.bool_],
                  encode: Sequence[bool]) -> list[pa.Array]:
    """Columns of raw values (empty = null) for (L, C) value spans as split_fields gives them.

    encode[j]: dictionary-encode column j. Columns whose values are all at most 8 bytes (and
    a block without NUL bytes) are encoded by packing each value zero-padded into a uint64,
    done for the whole matrix in memory order, then hashing integers per column.
    """
    shape = starts.shape
    missing = ends <= starts
    lengths = np.where(missing, 0, ends - starts)
    packable = np.asarray(encode, dtype=np.bool_) & ~quoted.any(axis=0)
    if shape[0]:
        packable &= lengths.max(axis=0) <= 8
    if packable.any() and (data == 0).any():
        packable[:] = False
    keys = None
    if packable.any():   # pack in memory order, then make each column contiguous
        chosen = slice(None) if packable.all() else packable
        keys = np.ascontiguousarray(_pack(data, np.ascontiguousarray(starts[:, chosen]),
                                          np.ascontiguousarray(lengths[:, chosen])).T)
    missing_by_column = np.ascontiguousarray(missing.T)
    columns: list[pa.Array] = []
    for j in range(shape[1]):
        if packable[j]:
            key_index = int(packable[:j].sum())
            columns.append(_key_dictionary(keys[key_index], missing_by_column[j]))  # type: ignore[index]
            continue
        column = _gather(data, starts[:, j], lengths[:, j], missing[:, j])
        if quoted[:, j].any():
            column = pc.if_else(pa.array(quoted[:, j]), pc.replace_substring(column, '""', '"'),
                                column)
        columns.append(pc.dictionary_encode(column) if encode[j] else column)
    return columns


def _validity(missing: npt.NDArray[np.bool_]) -> pa.Buffer | None:
    if not missing.any():
        return None
    return pa.py_buffer(np.packbits(~missing, bitorder="little"))


def _gather(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
            lengths: npt.NDArray[np.int64], missing: npt.NDArray[np.bool_]) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    index = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
    values = np.zeros(len(index) + _PADDING, dtype=np.uint8)
    values[:len(index)] = data[index]
    return pa.Array.from_buffers(pa.large_string(), len(lengths),
                                 [_validity(missing), pa.py_buffer(offsets), pa.py_buffer(values)]
                                 ).cast(pa.string())


# Zero bytes after the characters of the string arrays made here: some Arrow kernels read a
# few bytes past the last string (utf8_split_whitespace did on a trailing multi-byte space),
# which must not be whatever the heap held there.
_PADDING = 64
_LENGTH_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _pack(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
          lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Each field's bytes (at most 8) zero-padded into a little-endian uint64, same shape."""
    padded = np.zeros((len(data) + 23) // 8 * 8, dtype=np.uint8)
    padded[:len(data)] = data
    words = padded.view("<u8")
    word, shift = starts >> 3, ((starts & 7) << 3).astype(np.uint64)
    low = words[word] >> shift
    high = np.where(shift > 0, words[word + 1] << ((np.uint64(64) - shift) & np.uint64(63)),
                    np.uint64(0))
    packed: npt.NDArray[np.uint64] = (low | high) & _LENGTH_MASK[lengths]
    return packed


def _key_dictionary(keys: npt.NDArray[np.uint64], missing: npt.NDArray[np.bool_]) -> pa.Array:
    """Dictionary-encode packed keys and turn the distinct keys back into strings."""
    encoded = pc.dictionary_encode(pa.array(keys, mask=missing if missing.any() else None))
    distinct = encoded.dictionary.to_numpy().astype("<u8")
    raw = distinct.view(np.uint8).reshape(-1, 8)
    length = 8 - np.argmax(raw[:, ::-1] != 0, axis=1)
    length[distinct == 0] = 0
    offsets = np.zeros(len(distinct) + 1, dtype=np.int32)
    np.cumsum(length, out=offsets[1:])
    values = np.concatenate((raw[np.arange(8)[None, :] < length[:, None]], np.zeros(_PADDING, np.uint8)))
    dictionary = pa.Array.from_buffers(pa.string(), len(distinct),
                                       [None, pa.py_buffer(offsets), pa.py_buffer(values)])
    return pa.DictionaryArray.from_arrays(encoded.indices, dictionary)
