"""Tokens of an ASCII TEXT column in one compiled pass: the statistics' token counts (TextStats'
fast path) and the features' token lists (features/tokens.py).

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


@dataclass(frozen=True)
class Tokenized:
    """An ASCII column's tokens: the distinct ones (in order of first occurrence), the token of
    each occurrence (record by record), and the number of tokens of each record (0 when its
    value is missing)."""

    tokens: pa.Array  # string, distinct
    ids: npt.NDArray[np.int32]
    words: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]

    def counts(self, rows: npt.NDArray[np.intp] | None = None) -> TokenCounts:
        """The TokenCounts of records `rows` (all of them when None): every datasource that an
        ingest writes from one block counts its own records from the block's one scan."""
        if rows is None:
            words, valid = self.words, self.valid
            counts = np.bincount(self.ids, minlength=len(self.tokens))
        else:
            words, valid = self.words[rows], self.valid[rows]
            counts = _counted(self.ids, self.words, np.asarray(rows, np.int64), len(self.tokens))
        kept = counts > 0
        tokens = self.tokens if kept.all() else self.tokens.filter(pa.array(kept))
        present = words[valid]
        return TokenCounts(tokens, counts[kept], len(present), int(present.min()) if len(present) else 0,
                           int(present.max(initial=0)))


def count_tokens(column: pa.Array) -> TokenCounts:
    """Count the white-space separated tokens of a string column's values."""
    found = tokenize(column)
    return found.counts() if found is not None else _count_with_arrow(column)


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


def tokenize(column: pa.Array) -> Tokenized | None:
    """The column's tokens in one compiled scan; None when it holds a byte over 0x7F."""
    if pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    if not pa.types.is_string(column.type):
        raise TypeError(f"a string column was expected, not {column.type}")
    valid = (np.ones(len(column), dtype=np.bool_) if column.null_count == 0
             else pc.is_valid(column).to_numpy(zero_copy_only=False))
    if not len(column):
        return Tokenized(pa.array([], pa.string()), np.zeros(0, np.int32), np.zeros(0, np.int64), valid)
    _, offset_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32, len(column) + 1, 4 * column.offset)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    found = _scan_all(offsets, data, valid)
    if found is None:
        return None
    starts, lengths, ids, words = found
    token_offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=token_offsets[1:])
    characters = _gather(data, starts, lengths, int(token_offsets[-1]))
    tokens = pa.Array.from_buffers(pa.string(), len(lengths),
                                   [None, pa.py_buffer(token_offsets), pa.py_buffer(characters)])
    return Tokenized(tokens, ids, words, valid)


def _scan_all(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32],
                         npt.NDArray[np.int64]] | None:
    """(first offset and length of each distinct token, the token of each occurrence, the
    tokens of each record), or None at a byte over 0x7F. The compiled scan stops at a record
    that might overfill the tables; they grow here and it resumes there."""
    starts: npt.NDArray[Any] = np.empty(256, dtype=np.int64)
    lengths: npt.NDArray[Any] = np.empty(256, dtype=np.int64)
    hashes: npt.NDArray[Any] = np.empty(256, dtype=np.uint64)
    # a record of n bytes holds at most (n + 1) / 2 tokens
    ids = np.empty((int(offsets[-1]) - int(offsets[0]) + len(offsets)) // 2 + 1, np.int32)
    words = np.zeros(len(offsets) - 1, np.int64)
    slots = _rehashed(hashes[:0], 1024)  # (compiled by the warm-up's small text too)
    row, distinct, occurrences = 0, 0, 0
    while True:
        row, distinct, occurrences = _scan(offsets, data, valid, ASCII_SPACE, row, slots, starts, lengths, hashes,
                                           distinct, ids, occurrences, words)
        if row < 0:
            return None
        if row == len(offsets) - 1:
            return starts[:distinct], lengths[:distinct], ids[:occurrences], words
        need = distinct + (int(offsets[row + 1]) - int(offsets[row])) // 2 + 1
        size = max(2 * len(starts), need)
        starts, lengths, hashes = (np.resize(a, size) for a in (starts, lengths, hashes))
        slots = _rehashed(hashes[:distinct], 1 << (2 * size).bit_length())


@njit(cache=True, nogil=True)
def _scan(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_],
          space: npt.NDArray[np.bool_], row: int, slots: npt.NDArray[np.int64],
          starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64],
          hashes: npt.NDArray[np.uint64], distinct: int, ids: npt.NDArray[np.int32], occurrences: int,
          words: npt.NDArray[np.int64]) -> tuple[int, int, int]:
    """Scan the tokens of records from `row` on into the tables (slots: a power of two at
    least twice the others' length), writing each occurrence's token into ids and each
    record's count into words; returns (the record to resume at: all of them when done, -1 at
    a byte over 0x7F; distinct tokens; occurrences)."""
    mask = np.uint64(len(slots) - 1)
    while row < len(offsets) - 1:
        i, end = offsets[row], offsets[row + 1]
        if distinct + (end - i) // 2 + 1 > len(starts):
            break  # a record of n bytes holds at most (n + 1) / 2 tokens
        row += 1
        if not valid[row - 1]:
            continue
        count = 0
        while i < end:
            byte = data[i]
            if byte > 127:
                return -1, distinct, occurrences
            if space[byte]:
                i += 1
                continue
            start, h = i, _FNV_OFFSET
            while i < end:
                byte = data[i]
                if byte > 127:
                    return -1, distinct, occurrences
                if space[byte]:
                    break
                h = (h ^ np.uint64(byte)) * _FNV_PRIME
                i += 1
            count += 1
            length = i - start
            slot = h & mask
            while True:
                token = slots[slot]
                if token < 0:
                    starts[distinct], lengths[distinct], hashes[distinct] = start, length, h
                    slots[slot] = distinct
                    token = distinct
                    distinct += 1
                    break
                if hashes[token] == h and lengths[token] == length and \
                        _same(data, starts[token], start, length):
                    break
                slot = (slot + np.uint64(1)) & mask
            ids[occurrences] = token
            occurrences += 1
        words[row - 1] = count
    return row, distinct, occurrences


@njit(cache=True, nogil=True)
def _counted(ids: npt.NDArray[np.int32], words: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
             distinct: int) -> npt.NDArray[np.int64]:
    """How many times records `rows` hold each token: their ids counted in one pass, without a
    mask over every occurrence."""
    starts = np.empty(len(words) + 1, np.int64)
    starts[0] = 0
    for record in range(len(words)):
        starts[record + 1] = starts[record] + words[record]
    counts = np.zeros(distinct, np.int64)
    for row in rows:
        for k in range(starts[row], starts[row + 1]):
            counts[ids[k]] += 1
    return counts


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
