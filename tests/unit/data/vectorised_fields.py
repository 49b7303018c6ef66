"""The vectorised NumPy field splitter the compiled one (openaml.ml.data.fields) replaced,
kept as the oracle of test_data_fields.py: `reference_fields` gives, per line, its reason and
the spans of its stripped and unquoted values, as the old split_fields + _trim did."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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


def reference_fields(block: LineBlock, n_fields: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(reason, starts, ends, quoted) as the vectorised code computed them."""
    fields = split_fields(block, n_fields)
    shape = fields.starts.shape
    starts, ends, quoted = _trim(block.data, fields.starts.ravel().copy(), fields.ends.ravel().copy())
    return fields.reason, starts.reshape(shape), ends.reshape(shape), quoted.reshape(shape)

