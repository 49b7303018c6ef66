"""Token counts of an ASCII TEXT column in one compiled pass (TextStats' fast path).

Splitting on white space with Arrow (`utf8_split_whitespace`), flattening and `value_counts`
build a list array of every token and hash each one again: most of a tabular ingest's
statistics time when one short text column is present. Here the bytes are read once: each
token is hashed as it is scanned and counted in an open-addressing table that points back at
its first occurrence. The ASCII white space is the same set as Arrow's and Python's (tab, line
feed, vertical tab, form feed, carriage return, 0x1C-0x1F and space); a byte over 0x7F (other
Unicode white space may follow) sends the column to Arrow's kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

ASCII_SPACE = np.zeros(256, dtype=np.bool_)  # the white space bytes of Arrow's (and Python's) splitting
ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class TokenCounts:
    """The distinct tokens of a column's non-missing values with their counts, and the range
    of tokens per value (both 0 when no value was given)."""

    tokens: pa.Array  # string, distinct
    counts: npt.NDArray[np.int64]
    values: int  # non-missing values
    fewest: int
    most: int


def count_tokens(column: pa.Array) -> TokenCounts:
    """Count the white-space separated tokens of a string column's values."""
    return _count_ascii(column) or _count_with_arrow(column)


def _count_with_arrow(column: pa.Array) -> TokenCounts:
    """Arrow splits at each white space character but the first of a run, so a value's
    leading or trailing space gives an empty token: those are dropped."""
    column = column.drop_null()
    split = pc.utf8_split_whitespace(column)
    flat = pc.list_flatten(split)
    kept = pc.greater(pc.binary_length(flat), 0)
    words = np.bincount(pc.list_parent_indices(split).filter(kept).to_numpy(), minlength=len(column))
    counted = pc.value_counts(flat.filter(kept))
    return TokenCounts(counted.field("values"), counted.field("counts").to_numpy(), len(column),
                       int(words.min()) if len(column) else 0, int(words.max(initial=0)))


def _count_ascii(column: pa.Array) -> TokenCounts | None:
    """None when the column holds a byte over 0x7F."""
    if pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    if not pa.types.is_string(column.type):
        raise TypeError(f"a string column was expected, not {column.type}")
    if not len(column):
        return TokenCounts(pa.array([], pa.string()), np.zeros(0, np.int64), 0, 0, 0)
    _, offset_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32, len(column) + 1, 4 * column.offset)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    valid = (np.ones(len(column), dtype=np.bool_) if column.null_count == 0
             else pc.is_valid(column).to_numpy(zero_copy_only=False))
    ok, starts, lengths, counts, fewest, most = _count(offsets, data, valid)
    if not ok:
        return None
    token_offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=token_offsets[1:])
    characters = _gather(data, starts, lengths, int(token_offsets[-1]))
    tokens = pa.Array.from_buffers(pa.string(), len(lengths),
                                   [None, pa.py_buffer(token_offsets), pa.py_buffer(characters)])
    values = int(valid.sum())
    return TokenCounts(tokens, counts, values, int(fewest) if values else 0, int(most))


def _count(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]
           ) -> tuple[bool, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], int, int]:
    """(ASCII?, first offset, length and count of each distinct token, fewest and most tokens
    in a valid value). The compiled scan stops at a record that might overfill the tables;
    they grow here and it resumes there."""
    starts: npt.NDArray[Any] = np.empty(256, dtype=np.int64)
    lengths: npt.NDArray[Any] = np.empty(256, dtype=np.int64)
    counts: npt.NDArray[Any] = np.empty(256, dtype=np.int64)
    hashes: npt.NDArray[Any] = np.empty(256, dtype=np.uint64)
    slots = _rehashed(hashes[:0], 1024)  # (compiled by the warm-up's small text too)
    row, distinct, fewest, most = 0, 0, 1 << 62, 0
    while True:
        row, distinct, fewest, most = _scan(offsets, data, valid, ASCII_SPACE, row, slots, starts,
                                            lengths, hashes, counts, distinct, fewest, most)
        if row < 0:
            return False, starts[:0], lengths[:0], counts[:0], 0, 0
        if row == len(offsets) - 1:
            return True, starts[:distinct], lengths[:distinct], counts[:distinct], fewest, most
        need = distinct + (int(offsets[row + 1]) - int(offsets[row])) // 2 + 1
        size = max(2 * len(starts), need)
        starts, lengths, counts, hashes = (np.resize(a, size) for a in (starts, lengths, counts, hashes))
        slots = _rehashed(hashes[:distinct], 1 << (2 * size).bit_length())


@njit(cache=True, nogil=True)
def _scan(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_],
          space: npt.NDArray[np.bool_], row: int, slots: npt.NDArray[np.int64],
          starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64],
          hashes: npt.NDArray[np.uint64], counts: npt.NDArray[np.int64], distinct: int,
          fewest: int, most: int) -> tuple[int, int, int, int]:
    """Count the tokens of records from `row` on into the tables (slots: a power of two at
    least twice the others' length); returns (the record to resume at: all of them when
    done, -1 at a byte over 0x7F; distinct tokens; fewest and most tokens in a record)."""
    mask = np.uint64(len(slots) - 1)
    while row < len(offsets) - 1:
        i, end = offsets[row], offsets[row + 1]
        if distinct + (end - i) // 2 + 1 > len(starts):
            break  # a record of n bytes holds at most (n + 1) / 2 tokens
        row += 1
        if not valid[row - 1]:
            continue
        words = 0
        while i < end:
            byte = data[i]
            if byte > 127:
                return -1, distinct, fewest, most
            if space[byte]:
                i += 1
                continue
            start, h = i, _FNV_OFFSET
            while i < end:
                byte = data[i]
                if byte > 127:
                    return -1, distinct, fewest, most
                if space[byte]:
                    break
                h = (h ^ np.uint64(byte)) * _FNV_PRIME
                i += 1
            words += 1
            length = i - start
            slot = h & mask
            while True:
                token = slots[slot]
                if token < 0:
                    starts[distinct], lengths[distinct] = start, length
                    hashes[distinct], counts[distinct] = h, 1
                    slots[slot] = distinct
                    distinct += 1
                    break
                if hashes[token] == h and lengths[token] == length and \
                        _same(data, starts[token], start, length):
                    counts[token] += 1
                    break
                slot = (slot + np.uint64(1)) & mask
        fewest, most = min(fewest, words), max(most, words)
    return row, distinct, fewest, most


@njit(cache=True, nogil=True)
def _same(data: npt.NDArray[np.uint8], a: int, b: int, length: int) -> bool:
    for k in range(length):
        if data[a + k] != data[b + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _rehashed(hashes: npt.NDArray[np.uint64], capacity: int) -> npt.NDArray[np.int64]:
    slots = np.full(capacity, -1, dtype=np.int64)
    mask = np.uint64(capacity - 1)
    for token in range(len(hashes)):
        slot = hashes[token] & mask
        while slots[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        slots[slot] = token
    return slots


@njit(cache=True, nogil=True)
def _gather(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
            lengths: npt.NDArray[np.int64], total: int) -> npt.NDArray[np.uint8]:
    out = np.empty(total, dtype=np.uint8)
    at = 0
    for token in range(len(starts)):
        out[at:at + lengths[token]] = data[starts[token]:starts[token] + lengths[token]]
        at += lengths[token]
    return out
