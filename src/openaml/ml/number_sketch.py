"""The datasource statistics' sketch of a NUMERIC attribute, which depends on its values alone.

Up to EXACT_DISTINCT distinct values it holds each of them with its count. Beyond, each value
is cut to the most mantissa bits (toward zero) that leave at most SKETCH_POINTS distinct ones,
with the counts of those cut values: a value then stands for the numbers that lie from it
away from zero by less than a relative 2^-bits (normal numbers), unless all its records hold
one value alone (`single`: a frequent zero or round amount), which it then is. Those bits are a function
of the whole multiset of values, so the sketch is the same however the values are batched or
merged: cutting more bits off never makes more distinct values, so the bits a part of the
values needs are at least those of the whole, and a merge cuts both parts to the smaller
bits and then cuts further while too many are left. Training takes its quantile bins from
this sketch, whether from the statistics or from the records (`counted`, `settled`), so a
model does not depend on which it read, when the sketch is fine enough for the bins
(`fine_for`): cut values spaced evenly in magnitude can crowd most records into a few of them
(times of one week among others of thirty years), and then the bins come from the exact values.
Whether an entry is single merges as the rest does (all single, of one value), so it depends
on the values alone too.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

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


class Sketched(NamedTuple):
    """A sketch: its entries ascending, each the records of one cut value (one value while
    exact) with their count, and `single` where those records hold one value alone, which
    `values` then gives itself rather than cut (a frequent zero, a round amount); `bits` the
    mantissa bits of the cut (MANTISSA_BITS: exact)."""

    values: np.ndarray
    counts: np.ndarray
    single: np.ndarray
    bits: int = MANTISSA_BITS

    @classmethod
    def exact(cls, values: np.ndarray, counts: np.ndarray) -> Sketched:
        """Ascending distinct values with their counts."""
        return cls(values, counts, np.ones(len(values), np.bool_))


def merged_equal(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending values (repeats allowed) as distinct values with their counts summed."""
    if len(values) == 0:
        return values, counts
    starts = _run_starts(values)
    return values[starts], np.add.reduceat(counts, starts)


def grouped(sketch: Sketched, bits: int) -> Sketched:
    """The entries, ascending by their values cut to `bits` (at most the sketch's), merged
    where those are equal: a merged entry is single when all its entries are, of one value."""
    keys = cut(sketch.values, bits)
    if len(keys) == 0:
        return sketch._replace(bits=bits)
    starts = _run_starts(keys)
    single = (np.logical_and.reduceat(sketch.single, starts)
              & (np.minimum.reduceat(sketch.values, starts) == np.maximum.reduceat(sketch.values, starts)))
    return Sketched(np.where(single, sketch.values[starts], keys[starts]), np.add.reduceat(sketch.counts, starts),
                    single, bits)


def merged(first: Sketched, then: Sketched) -> Sketched:
    """The sketch of the values of two sketches (settled)."""
    bits = min(first.bits, then.bits)
    if bits >= MANTISSA_BITS:  # both exact: a linear merge of their values
        values, counts = _merge_sorted(first.values, first.counts, then.values, then.counts)
        return settled(Sketched.exact(values, counts))
    first, then = (s if s.bits == bits else grouped(s, bits) for s in (first, then))
    keys = np.concatenate([cut(first.values, bits), cut(then.values, bits)])
    order = np.argsort(keys, kind="stable")  # two ascending runs: merged in linear time
    both = Sketched(np.concatenate([first.values, then.values])[order],
                    np.concatenate([first.counts, then.counts])[order],
                    np.concatenate([first.single, then.single])[order], bits)
    return settled(grouped(both, bits))


def settled(sketch: Sketched) -> Sketched:
    """The sketch as it is when within the limit of its kind (EXACT_DISTINCT exact,
    SKETCH_POINTS cut), else cut to the largest bits below that leave at most SKETCH_POINTS
    values, or to none (a value per binade and sign: at most 4,093, fewer than SKETCH_POINTS)."""
    limit = EXACT_DISTINCT if sketch.bits >= MANTISSA_BITS else SKETCH_POINTS
    if len(sketch.values) <= limit:
        return sketch
    low, high = 0, min(sketch.bits, MANTISSA_BITS) - 1
    while low < high:  # the largest bits in [low, high] within SKETCH_POINTS
        middle = (low + high + 1) // 2
        if _distinct(cut(sketch.values, middle)) <= SKETCH_POINTS:
            low = middle
        else:
            high = middle - 1
    return grouped(sketch, low)


def counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (NaN ignored, zeros 0.0), ascending, with their counts."""
    ordered = np.sort(values[~np.isnan(values)]) + 0.0  # -0.0 + 0.0 is 0.0
    return merged_equal(ordered, np.ones(len(ordered)))


def fine_for(sketch: Sketched, bins: int) -> bool:
    """Whether `bins` quantile bins fitted on a sketch are within a bin's share of the records
    of the exact ones: no entry that stands for several values holds more than that share
    (each boundary then lies in an entry no heavier than a bin, or in one of a single value)."""
    crowds = sketch.counts[~sketch.single]
    return float(np.max(crowds, initial=0.0)) * bins <= float(np.sum(sketch.counts))


def _run_starts(ascending: np.ndarray) -> np.ndarray:
    """Where each run of equal values of a non-empty ascending array starts."""
    return np.flatnonzero(np.concatenate(([True], ascending[1:] != ascending[:-1])))


def _distinct(ascending: np.ndarray) -> int:
    return int(np.count_nonzero(ascending[1:] != ascending[:-1])) + (len(ascending) > 0)


@njit(cache=True, nogil=True)
def _merge_sorted(values: npt.NDArray[np.float64], counts: npt.NDArray[np.float64],
                  more: npt.NDArray[np.float64], more_counts: npt.NDArray[np.float64]
                  ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The distinct values of two ascending arrays of distinct values with their counts
    summed, in one linear pass."""
    out = np.empty(len(values) + len(more))
    out_counts = np.empty(len(values) + len(more))
    i = j = size = 0
    while i < len(values) or j < len(more):
        if j == len(more) or (i < len(values) and values[i] <= more[j]):
            value, count = values[i], counts[i]
            i += 1
        else:
            value, count = more[j], more_counts[j]
            j += 1
        if size and out[size - 1] == value:
            out_counts[size - 1] += count
        else:
            out[size], out_counts[size] = value, count
            size += 1
    return out[:size].copy(), out_counts[:size].copy()
