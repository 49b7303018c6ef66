"""The datasource statistics' sketch of a NUMERIC attribute, which depends on its values alone.

Up to EXACT_DISTINCT distinct values it holds each of them with its count. Beyond, each value
is cut to the most mantissa bits (toward zero) that leave at most SKETCH_POINTS distinct ones,
with the counts of those cut values: a value then stands for the numbers that lie from it
away from zero by less than a relative 2^-bits (normal numbers). Those bits are a function
of the whole multiset of values, so the sketch is the same however the values are batched or
merged: cutting more bits off never makes more distinct values, so the bits a part of the
values needs are at least those of the whole, and a merge cuts both parts to the smaller
bits and then cuts further while too many are left. Training takes its quantile bins from
this sketch, whether from the statistics or from the records (`counted`, `settled`), so a
model does not depend on which it read, when the sketch is fine enough for the bins
(`fine_for`): cut values spaced evenly in magnitude can crowd most records into a few of them
(times of one week among others of thirty years), and then the bins come from the exact values.
"""

from __future__ import annotations

import numpy as np

EXACT_DISTINCT = 100_000  # distinct values a sketch keeps exactly
SKETCH_POINTS = 10_000  # distinct values a sketch keeps past EXACT_DISTINCT, once cut
MANTISSA_BITS = 52  # of a double: a sketch whose values are not cut


def cut(values: np.ndarray, bits: int) -> np.ndarray:
    """Doubles with their mantissas cut to `bits` bits, toward zero (which keeps their order);
    a negative number cut to zero is 0.0, as every zero of a sketch is."""
    if bits >= MANTISSA_BITS:
        return values
    mask = np.uint64((1 << 64) - (1 << (MANTISSA_BITS - bits)))
    cut_values: np.ndarray = (np.ascontiguousarray(values, np.float64).view(np.uint64) & mask).view(np.float64)
    return cut_values + 0.0  # -0.0 + 0.0 is 0.0


def merged_equal(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending values (repeats allowed) as distinct values with their counts summed."""
    if len(values) == 0:
        return values, counts
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return values[starts], np.add.reduceat(counts, starts)


def settled(values: np.ndarray, counts: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The sketch of ascending distinct `values` (already cut to `bits`) with their counts:
    as they are when within the limit of their kind (EXACT_DISTINCT uncut, SKETCH_POINTS cut),
    else cut to the largest bits below that leave at most SKETCH_POINTS values, or to none (a
    value per binade and sign: at most 4,093, fewer than SKETCH_POINTS)."""
    limit = EXACT_DISTINCT if bits >= MANTISSA_BITS else SKETCH_POINTS
    if len(values) <= limit:
        return values, counts, bits
    low, high = 0, min(bits, MANTISSA_BITS) - 1
    while low < high:  # the largest bits in [low, high] within SKETCH_POINTS
        middle = (low + high + 1) // 2
        if _distinct(cut(values, middle)) <= SKETCH_POINTS:
            low = middle
        else:
            high = middle - 1
    return (*merged_equal(cut(values, low), counts), low)


def counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (NaN ignored, zeros 0.0), ascending, with their counts."""
    ordered = np.sort(values[~np.isnan(values)]) + 0.0  # -0.0 + 0.0 is 0.0
    if len(ordered) == 0:
        return ordered, np.zeros(0)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.diff(np.append(starts, len(ordered))).astype(np.float64)


def fine_for(counts: np.ndarray, bits: int, bins: int) -> bool:
    """Whether `bins` quantile bins fitted on a sketch (its counts, its bits) are within a
    bin's share of the records of the exact ones: it is exact, or no cut value stands for
    more than that share (each boundary then lies in a cut value no heavier than a bin). A
    cut value that is one frequent value alone (zeros of amounts: 0.3 % of the records fail
    500 bins) fails too, and the bins then come from the records, as they did before sketches
    were cut: telling it from a crowd of values would take the extremes of each cut value."""
    return bits >= MANTISSA_BITS or float(np.max(counts, initial=0.0)) * bins <= float(np.sum(counts))


def _distinct(ascending: np.ndarray) -> int:
    return int(np.count_nonzero(ascending[1:] != ascending[:-1])) + (len(ascending) > 0)
