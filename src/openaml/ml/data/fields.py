"""Splitting lines into fields and columns with NumPy (data.md §1, §8), no per-row Python.

Quoting rule (RFC 4180 without line breaks in values): a double quote toggles the quoted
state, so a comma is a separator when the number of quotes before it on its line is even
(a doubled quote "" toggles twice and is neutral). A line with an odd number of quotes has an
unterminated quoted value and is rejected. A field is then its bytes between separators with
surrounding white space stripped; if it starts and ends with a quote these are removed, inner
"" becomes " and white space is stripped again. An empty result is a missing value (null).

Columns are built straight from the byte buffer: field start/end positions form an (L, C)
matrix for the L well-formed lines with C fields. A column whose fields are all at most 8
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

from openaml.ml.data.lines import LineBlock

QUOTE, COMMA, SPACE, TAB = 34, 44, 32, 9
REASONS = ("too_large", "unterminated_quote", "wrong_field_count")
_WHITE = np.zeros(256, dtype=np.bool_)
_WHITE[[SPACE, TAB, 11, 12, 13]] = True


@dataclass(frozen=True)
class Fields:
    """Field spans of a block: `reason` per line (0 = well formed, else 1 + REASONS index)
    and, for the well-formed lines in order, `starts`/`ends` of shape (L, C)."""

    reason: npt.NDArray[np.int8]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]


def split_fields(block: LineBlock, n_fields: int) -> Fields:
    """Classify every line of the block and locate the fields of the well-formed ones."""
    data = block.data
    n = len(block)
    line_start, line_end = block.starts, block.ends
    commas = np.flatnonzero(data == COMMA)
    first, last = np.searchsorted(commas, line_start), np.searchsorted(commas, line_end)
    per_line = last - first
    # Commas outside every kept span (a dropped header, the unkept bytes of an over-long line)
    # are discarded; the rest are in line order, per_line of them for each line.
    if per_line.sum() != len(commas):
        commas = commas[_in_ranges(len(commas), first, last)]
    reason = np.zeros(n, dtype=np.int8)
    line_of: npt.NDArray[np.int64] | None = None
    if data.size and bool((data == QUOTE).any()):
        quotes = np.flatnonzero(data == QUOTE)
        quotes_at_start = np.searchsorted(quotes, line_start)
        reason[(np.searchsorted(quotes, line_end) - quotes_at_start) % 2 == 1] = 2
        line_of = np.repeat(np.arange(n), per_line)
        separator = (np.searchsorted(quotes, commas) - quotes_at_start[line_of]) % 2 == 0
        commas, line_of = commas[separator], line_of[separator]
        per_line = np.bincount(line_of, minlength=n)
    reason[(reason == 0) & (per_line + 1 != n_fields)] = 3
    reason[block.too_large] = 1
    good = reason == 0
    if not good.all():
        if line_of is None:
            line_of = np.repeat(np.arange(n), per_line)
        commas = commas[good[line_of]]
    seps = commas.reshape(int(good.sum()), n_fields - 1)
    starts = np.empty((len(seps), n_fields), dtype=np.int64)
    ends = np.empty((len(seps), n_fields), dtype=np.int64)
    starts[:, 0], starts[:, 1:] = line_start[good], seps + 1
    ends[:, -1], ends[:, :-1] = line_end[good], seps
    return Fields(reason, starts, ends)


def _in_ranges(size: int, begin: npt.NDArray[np.int64],
               end: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Mask of 0..size-1 covered by the disjoint ranges [begin, end)."""
    marks = np.zeros(size + 1, dtype=np.int64)
    np.add.at(marks, begin, 1)
    np.add.at(marks, end, -1)
    return np.cumsum(marks[:-1]) > 0


def build_columns(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
                  ends: npt.NDArray[np.int64], encode: Sequence[bool]) -> list[pa.Array]:
    """Columns of raw values (stripped, unquoted, empty = null) for (L, C) field spans.

    encode[j]: dictionary-encode column j. Columns whose fields are all at most 8 bytes (and
    a block without NUL bytes) are encoded by packing each field zero-padded into a uint64,
    done for the whole matrix in memory order, then hashing integers per column.
    """
    shape = starts.shape
    starts, ends, quoted = _trim(data, starts.ravel().copy(), ends.ravel().copy())
    missing = ends <= starts
    lengths = np.where(missing, 0, ends - starts)
    starts, lengths = starts.reshape(shape), lengths.reshape(shape)
    missing, quoted = missing.reshape(shape), quoted.reshape(shape)
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


def _trim(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
          ends: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                                npt.NDArray[np.bool_]]:
    _strip(data, starts, ends)
    quoted = (ends - starts >= 2) & (data[np.minimum(starts, len(data) - 1)] == QUOTE)
    quoted[quoted] &= data[ends[quoted] - 1] == QUOTE
    if quoted.any():
        starts[quoted] += 1
        ends[quoted] -= 1
        _strip(data, starts, ends)
    return starts, ends, quoted


def _strip(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
           ends: npt.NDArray[np.int64]) -> None:
    """Move starts/ends past white space in place; loops once per white-space byte, not per row."""
    if not len(data) or not len(starts) or not _WHITE[data].any():
        return
    last = len(data) - 1
    move = (starts < ends) & _WHITE[data[np.minimum(starts, last)]]
    while move.any():
        index = np.flatnonzero(move)
        starts[index] += 1
        move = np.zeros_like(move)
        move[index] = (starts[index] < ends[index]) & _WHITE[data[np.minimum(starts[index], last)]]
    move = (starts < ends) & _WHITE[data[np.maximum(ends - 1, 0)]]
    while move.any():
        index = np.flatnonzero(move)
        ends[index] -= 1
        move = np.zeros_like(move)
        move[index] = (starts[index] < ends[index]) & _WHITE[data[np.maximum(ends[index] - 1, 0)]]


def _validity(missing: npt.NDArray[np.bool_]) -> pa.Buffer | None:
    if not missing.any():
        return None
    return pa.py_buffer(np.packbits(~missing, bitorder="little"))


def _gather(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
            lengths: npt.NDArray[np.int64], missing: npt.NDArray[np.bool_]) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    index = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
    values = data[index]
    return pa.Array.from_buffers(pa.large_string(), len(lengths),
                                 [_validity(missing), pa.py_buffer(offsets), pa.py_buffer(values)]
                                 ).cast(pa.string())


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
    return (low | high) & _LENGTH_MASK[lengths]


def _key_dictionary(keys: npt.NDArray[np.uint64], missing: npt.NDArray[np.bool_]) -> pa.Array:
    """Dictionary-encode packed keys and turn the distinct keys back into strings."""
    encoded = pc.dictionary_encode(pa.array(keys, mask=missing if missing.any() else None))
    distinct = encoded.dictionary.to_numpy().astype("<u8")
    raw = distinct.view(np.uint8).reshape(-1, 8)
    length = 8 - np.argmax(raw[:, ::-1] != 0, axis=1)
    length[distinct == 0] = 0
    offsets = np.zeros(len(distinct) + 1, dtype=np.int32)
    np.cumsum(length, out=offsets[1:])
    values = raw[np.arange(8)[None, :] < length[:, None]]
    dictionary = pa.Array.from_buffers(pa.string(), len(distinct),
                                       [None, pa.py_buffer(offsets), pa.py_buffer(values)])
    return pa.DictionaryArray.from_arrays(encoded.indices, dictionary)
