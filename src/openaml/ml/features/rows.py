"""Rows of features from the looked-up sources of a batch: as CSR arrays, or straight as a
linear model's scores.

FeaturePipeline looks up each source of a batch: an id per row (-1: none), an id per
dictionary entry with each row's entry, a NUMERIC or BINARY `Scalar` (one feature, a value per
row), or a token source's (row, id) pairs. `csr_rows` lays them out as CSR rows, ids
ascending (sources own ascending ranges), for training and for trees. `source_scores` adds a
linear model's weights source by source instead, with no CSR arrays: each row's weights are
added in the order of its features, so its scores are linear.linear_scores' over csr_rows
bit for bit, and a source's weights stay in cache while its rows are swept (the tabular
benchmark's 65,536-record batches: 10-12 ms against 19-35 ms; MNIST's 4,012-record chunks,
10 outputs: 19-21 ms against 47-55 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from openaml.ml.moments import SAFE_MAGNITUDE

# A standardized NUMERIC value is kept within this many standard deviations: a training's never
# comes near (sqrt(records) at most), and an input far beyond (1e308 where the values spread by
# 0.06) then scores as a large finite number, never inf, or NaN where its weight is 0.
STANDARDIZED_LIMIT = 1e200


def standardized(value: float, mean: float, std: float) -> float:
    """A NUMERIC value (not missing) as csr_rows writes it: moments.standardize within
    STANDARDIZED_LIMIT, 0 where std is 0 (the compiled parts' _scalar_value)."""
    return float(_scalar_value(float(value), True, float(mean), float(std))[1])


@dataclass(frozen=True, eq=False)
class Scalar:
    """A NUMERIC or BINARY source's values (NaN: missing) with its one feature, as csr_rows
    writes it: a NUMERIC value standardized by (mean, std) (`standardized`), absent where
    missing; a BINARY value 1 where true, absent where false or missing."""

    values: np.ndarray
    feature: int
    numeric: bool
    mean: float = 0.0
    std: float = 1.0


# A looked-up source: ids (-1: none), (id per dictionary entry, entry per row), or a Scalar
SourceIds = np.ndarray | tuple[np.ndarray, np.ndarray] | Scalar


class IdMatrix(NamedTuple):
    """The looked-up sources as the compiled parts read them."""

    ids: np.ndarray        # (sources, rows) int32: a source's ids contiguous; a Scalar's feature
    full: bool             # every source in every row
    values: np.ndarray     # (Scalars, rows): the Scalars' values
    column_of: np.ndarray  # per source: its row of `values`, -1 when not a Scalar
    numeric: np.ndarray    # per Scalar: NUMERIC (else BINARY)
    scales: np.ndarray     # per Scalar: (mean, std)


def id_matrix(ids: Sequence[SourceIds], n: int) -> IdMatrix:
    """The sources `ids` of n rows laid out for the compiled parts."""
    matrix = np.empty((len(ids), n), np.int32)
    full = True
    for j, column in enumerate(ids):
        if isinstance(column, tuple):
            full &= _gather_column(matrix[j], column[0], column[1]) >= 0
        elif isinstance(column, Scalar):
            matrix[j] = column.feature  # where present: the compiled part reads its value
        else:
            matrix[j] = column
            full &= len(column) == 0 or column.min() >= 0
    scalars = [j for j, column in enumerate(ids) if isinstance(column, Scalar)]
    given = [column for column in ids if isinstance(column, Scalar)]  # in the order of `scalars`
    column_of = np.full(len(ids), -1, np.int32)
    column_of[scalars] = np.arange(len(scalars), dtype=np.int32)
    values = np.empty((len(given), n))
    for c, scalar in enumerate(given):
        values[c] = scalar.values
    numeric = np.array([scalar.numeric for scalar in given], np.bool_)
    scales = np.array([(scalar.mean, scalar.std) for scalar in given], np.float64).reshape(-1, 2)
    return IdMatrix(matrix, bool(full), values, column_of, numeric, scales)


def csr_rows(ids: Sequence[SourceIds], n: int, token_rows: list[np.ndarray], token_ids: list[np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """CSR arrays (indptr, indices, values) of n rows from one feature id per (row, source)
    (-1 = none), given per source as ids, as (id per dictionary entry, entry per row) or as a
    Scalar (its feature where present, with its value), plus an indicator per distinct (row,
    token id) of the token sources (rows, ids per source). Each row's ids ascend (sources
    own ascending ranges); values are None when no source is a Scalar (indicators only).
    Where there are Scalars and token sources, entries of value 0 are dropped (the sparse sum
    this once was dropped them: models stay the same)."""
    m = id_matrix(ids, n)
    scalars = len(m.numeric) > 0
    if not scalars and not token_rows:  # indicators only (pixels)
        if m.full:  # in every row: as they are
            return np.arange(n + 1, dtype=np.int64) * len(ids), m.ids.T.ravel(), None
        return (*_indicator_rows(m.ids), None)
    rows = np.concatenate(token_rows).astype(np.int64, copy=False) if token_rows else np.zeros(0, np.int64)
    # a new array (concatenate copies): the kernel sorts each row's tokens in it
    tokens = np.concatenate(token_ids).astype(np.int32, copy=False) if token_ids else np.zeros(0, np.int32)
    indptr, indices, data = _csr_rows(m.ids, m.values, m.column_of, m.numeric, m.scales, rows, tokens,
                                      scalars and bool(token_rows))
    if 2 * len(indices) < len(ids) * n + len(tokens):  # mostly absent: let the kernel's room go
        indices, data = indices.copy(), data.copy()
    return indptr, indices, data if scalars else None


def source_scores(ids: Sequence[SourceIds], n: int, token_rows: list[np.ndarray], token_ids: list[np.ndarray],
                  token_at: Sequence[int], weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """bias + the features csr_rows makes of the same arguments times `weights` (features,
    outputs): the scores (n, outputs), each row's sum in csr_rows' order; token source k comes
    before source token_at[k] (len(ids): after them all), as its features do."""
    if list(token_at) != sorted(token_at) or any(not 0 <= at <= len(ids) for at in token_at):
        raise ValueError(f"token sources out of order among {len(ids)} sources: {list(token_at)}")
    m = id_matrix(ids, n)
    rows, tokens, starts = [], [], [0]
    for in_rows, found in zip(token_rows, token_ids, strict=True):
        in_rows = in_rows.astype(np.int64, copy=False)
        if len(in_rows) > 1 and bool((in_rows[1:] < in_rows[:-1]).any()):  # the kernel takes runs of rows
            order = np.argsort(in_rows, kind="stable")
            in_rows, found = in_rows[order], found[order]
        rows.append(in_rows)
        tokens.append(found.astype(np.int32, copy=False))
        starts.append(starts[-1] + len(in_rows))
    out = np.empty((n, weights.shape[1]))
    _source_scores(m.ids, m.values, m.column_of, m.numeric, m.scales,
                   np.concatenate(rows) if rows else np.zeros(0, np.int64),
                   np.concatenate(tokens) if tokens else np.zeros(0, np.int32),
                   np.array(starts, np.int64), np.array(token_at, np.int64).reshape(-1),
                   len(m.numeric) > 0 and bool(token_rows), np.ascontiguousarray(weights, np.float64),
                   np.ascontiguousarray(bias, np.float64), out)
    return out


def stacked_rows(first: tuple[np.ndarray, np.ndarray, np.ndarray | None],
                 second: tuple[np.ndarray, np.ndarray, np.ndarray | None]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The CSR arrays of two runs of rows (csr_rows of each), one after the other."""
    (indptr, indices, values), (more_indptr, more_indices, more_values) = first, second
    return (np.concatenate((indptr, more_indptr[1:] + indptr[-1])), np.concatenate((indices, more_indices)),
            None if values is None or more_values is None else np.concatenate((values, more_values)))


@njit(cache=True, nogil=True)
def _gather_column(out: np.ndarray, per_entry: np.ndarray, entries: np.ndarray) -> int:
    """out = per_entry[entries]; returns the least value written (0 when none)."""
    least = 0
    for i in range(len(entries)):
        value = per_entry[entries[i]]
        out[i] = value
        least = min(least, value)
    return least


@njit(cache=True, nogil=True)
def _indicator_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """indptr and indices of the present ids ids[:, r] of each row r (a simpler loop than
    _csr_rows': 784 pixel sources and no tokens or values)."""
    width, n = ids.shape
    out_ptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        count = 0
        for j in range(width):
            count += ids[j, r] >= 0
        out_ptr[r + 1] = out_ptr[r] + count
    out_ids = np.empty(out_ptr[n], np.int32)
    size = 0
    for r in range(n):
        for j in range(width):
            if ids[j, r] >= 0:
                out_ids[size] = ids[j, r]
                size += 1
    return out_ptr, out_ids


@njit(cache=True, nogil=True, inline="always")
def _scalar_value(given: float, numeric: bool, mean: float, std: float) -> tuple[bool, float]:
    """(present, value) of a Scalar's entry in a row whose value is `given`: a NUMERIC value
    standardized as `standardized` does, absent where missing; a BINARY one 1 where true."""
    if not numeric:
        return given > 0, 1.0
    if np.isnan(given):
        return False, 0.0
    if not std > 0:
        return True, 0.0
    value = given / std - mean / std if abs(mean) > SAFE_MAGNITUDE else (given - mean) / std
    return True, min(max(value, -STANDARDIZED_LIMIT), STANDARDIZED_LIMIT)


@njit(cache=True, nogil=True)
def _csr_rows(ids: np.ndarray, values: np.ndarray, column_of: np.ndarray, numeric: np.ndarray,
              scales: np.ndarray, rows: np.ndarray, tokens: np.ndarray,
              drop_zeros: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """csr_rows' compiled part: per row r, the present ids ids[:, r] (a Scalar's where its value
    values[column_of[j], r] is present; others of value 1) merged with the row's distinct token
    ids, in one pass. The output is made at its largest size (every id present, every token
    distinct) and its filled part returned as views: pages never written are never given
    memory, so this costs neither a counting pass nor a trimmed copy (fresh memory costs a
    page fault per 4 KiB). Tokens in row order (one token source, as tokenize makes them) are
    not bucketed."""
    width, n = ids.shape
    starts = np.zeros(n + 1, np.int64)
    for r in rows:
        starts[r + 1] += 1
    starts = np.cumsum(starts)
    ordered = True
    for k in range(1, len(rows)):
        if rows[k] < rows[k - 1]:
            ordered = False
            break
    if ordered:
        bucket = tokens
    else:  # a counting sort by row
        fill = starts[:-1].copy()
        bucket = np.empty(len(tokens), np.int32)
        for k in range(len(tokens)):
            bucket[fill[rows[k]]] = tokens[k]
            fill[rows[k]] += 1
    out_ptr = np.empty(n + 1, np.int64)
    out_ptr[0] = 0
    out_ids = np.empty(width * n + len(tokens), np.int32)
    out_values = np.empty(width * n + len(tokens))
    size = 0
    for r in range(n):
        found = bucket[starts[r]:starts[r + 1]]
        _sort_small(found)
        t, t_end = 0, len(found)
        for j in range(width):
            feature = ids[j, r]
            if feature < 0:
                continue
            c = column_of[j]
            value = 1.0
            if c >= 0:  # a Scalar
                present, value = _scalar_value(values[c, r], numeric[c], scales[c, 0], scales[c, 1])
                if not present:
                    continue
            while t < t_end and found[t] < feature:  # the row's tokens before this feature
                out_ids[size], out_values[size] = found[t], 1.0
                size += 1
                t += 1
                while t < t_end and found[t] == found[t - 1]:
                    t += 1
            if not (drop_zeros and value == 0.0):
                out_ids[size], out_values[size] = feature, value
                size += 1
        while t < t_end:  # the tokens after every source
            out_ids[size], out_values[size] = found[t], 1.0
            size += 1
            t += 1
            while t < t_end and found[t] == found[t - 1]:
                t += 1
        out_ptr[r + 1] = size
    return out_ptr, out_ids[:size], out_values[:size]


@njit(cache=True, nogil=True, inline="always")
def _sort_small(found: np.ndarray) -> None:
    """Sort a row's token ids in place: insertion sort (most records hold a few tokens), after
    a sort for a long text."""
    if len(found) > 32:
        found[:] = np.sort(found)
    for i in range(1, len(found)):
        token, k = found[i], i - 1
        while k >= 0 and found[k] > token:
            found[k + 1] = found[k]
            k -= 1
        found[k + 1] = token


@njit(cache=True, nogil=True)
def _source_scores(ids: np.ndarray, values: np.ndarray, column_of: np.ndarray, numeric: np.ndarray,
                   scales: np.ndarray, rows: np.ndarray, tokens: np.ndarray, token_starts: np.ndarray,
                   token_at: np.ndarray, drop_zeros: bool, weights: np.ndarray, bias: np.ndarray,
                   out: np.ndarray) -> None:
    """source_scores' compiled part: out = bias, then each source's weights added to its rows,
    sources in order (token source s, rows[token_starts[s]:token_starts[s + 1]] ascending with
    their tokens, before source token_at[s]); entries as _csr_rows makes them."""
    width, n = ids.shape
    outputs = weights.shape[1]
    for r in range(n):
        for k in range(outputs):
            out[r, k] = bias[k]
    scratch = np.empty(64, np.int32)
    s = 0
    for j in range(width + 1):
        while s < len(token_at) and token_at[s] == j:
            start, end = token_starts[s], token_starts[s + 1]
            scratch = _token_scores(rows[start:end], tokens[start:end], weights, out, scratch)
            s += 1
        if j == width:
            break
        c = column_of[j]
        if c < 0:  # indicators
            for r in range(n):
                feature = ids[j, r]
                if feature >= 0:
                    for k in range(outputs):
                        out[r, k] += weights[feature, k]
            continue
        feature = ids[j, 0] if n else 0  # a Scalar's one feature
        is_numeric, mean, std = numeric[c], scales[c, 0], scales[c, 1]
        for r in range(n):
            present, value = _scalar_value(values[c, r], is_numeric, mean, std)
            if present and not (drop_zeros and value == 0.0):
                for k in range(outputs):
                    out[r, k] += value * weights[feature, k]


@njit(cache=True, nogil=True)
def _token_scores(rows: np.ndarray, tokens: np.ndarray, weights: np.ndarray, out: np.ndarray,
                  scratch: np.ndarray) -> np.ndarray:
    """Add one token source's weights to its rows: each row's distinct tokens, ascending
    (`rows` ascending, a run per row). Returns the scratch (grown for a long text)."""
    outputs = weights.shape[1]
    p = 0
    while p < len(rows):
        r, q = rows[p], p
        while q < len(rows) and rows[q] == r:
            q += 1
        if q - p > len(scratch):
            scratch = np.empty(2 * (q - p), np.int32)
        found = scratch[:q - p]
        found[:] = tokens[p:q]
        _sort_small(found)
        for i in range(len(found)):
            if i == 0 or found[i] != found[i - 1]:
                for k in range(outputs):
                    out[r, k] += weights[found[i], k]
        p = q
    return scratch
