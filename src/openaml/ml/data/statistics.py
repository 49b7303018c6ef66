"""Descriptive statistics of the selected valid records (data.md §6), merged batch by batch.

Every non-TEXT column arrives dictionary-encoded, so most statistics come from the per-batch
table "distinct raw value -> count" (a bincount of the dictionary indices), never row by row.

`finish()` returns a `DatasetStatistics` (statistics_document.py: the typed statistics and
their JSON layout, shared by every reader).
"""

from __future__ import annotations

import copy
import math
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from openaml.ml import number_sketch
from openaml.ml.data import distinct_sketch
from openaml.ml.data.block_values import BlockValues, sorted_order
from openaml.ml.data.statistics_document import (
    AttributeStatistics,
    CountedValues,
    DatasetStatistics,
    Histogram,
    NumericValues,
    Sketch,
    TargetStatistics,
    TextValues,
)
from openaml.ml.data.token_counts import TokenCounts, count_tokens
from openaml.ml.moments import Moments
from openaml.ml.number_sketch import MANTISSA_BITS, Sketched, merged_equal
from openaml.ml.schema import AttributeType, Coerced, Schema

HISTOGRAM_BINS = 20
MAX_VALUES = 100_000
MAX_TOKENS = 10_000


class NumericStats:
    """Moments, extremes and a mergeable quantile sketch (sorted values with counts, cut
    past EXACT_DISTINCT of them: number_sketch)."""

    def __init__(self) -> None:
        self.sketch = Sketched.exact(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64))
        self.low, self.high = math.inf, -math.inf  # the least and greatest values, not cut
        self.moments = Moments()
        self.xy = np.zeros(5)  # sums of x, y, x*x, y*y, x*y over pairs with a valid target
        self.pairs = 0

    @property
    def n(self) -> int:
        """The valid values counted."""
        return int(self.moments.count)

    def add_table(self, values: npt.NDArray[np.float64], counts: npt.NDArray[np.int64],
                  order: npt.NDArray[np.intp] | None = None) -> None:
        """Merge a batch given as values (distinct or not) with their counts; `order`: the
        sorted order of `values` (block_values.sorted_order), when known. Zero is kept as
        0.0: which of -0.0 and 0.0 a merge keeps would depend on the order of equal values."""
        values = values + 0.0  # -0.0 + 0.0 is 0.0
        keep = counts > 0
        order = sorted_order(values) if order is None else order
        order = order[keep[order]]
        kept, weights = values[order], counts[order].astype(np.float64)
        n = int(weights.sum())
        if n == 0:
            return
        # summed in value order: the same sums whatever order the batch's table came in
        self.moments.merge(Moments.of(kept, weights))
        self.low, self.high = min(self.low, float(kept[0])), max(self.high, float(kept[-1]))
        self.sketch = number_sketch.merged(self.sketch, Sketched.exact(*merged_equal(kept, weights)))

    def merge(self, other: NumericStats) -> None:
        """Add the statistics of other records (another partition's): moments by Chan's
        formula, the sketches merged (number_sketch)."""
        if other.n:
            self.moments.merge(other.moments)
            self.low, self.high = min(self.low, other.low), max(self.high, other.high)
            self.sketch = number_sketch.merged(self.sketch, other.sketch)
        self.xy += other.xy
        self.pairs += other.pairs

    @property
    def values(self) -> npt.NDArray[np.float64]:
        return self.sketch.values

    @property
    def counts(self) -> npt.NDArray[np.float64]:
        return self.sketch.counts

    @property
    def exact(self) -> bool:
        """Whether the sketch holds the values themselves, not cut ones."""
        return self.sketch.bits >= MANTISSA_BITS

    def add_pairs(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> None:
        """Accumulate co-moments with the target over rows where both are valid (not NaN)."""
        self.pairs += _add_co_moments(x, y, self.xy)

    def summary(self) -> NumericValues:
        if self.n == 0:
            return NumericValues(distinct=0)
        low, high = self.low, self.high
        # cut values lie toward zero from the values they stand for: the least may be below low
        counts, edges = histogram(np.clip(self.values, low, high), self.counts, low, high)
        variance = self.moments.variance
        return NumericValues(
            distinct=len(self.values) if self.exact else None,
            min=low, max=high, mean=self.moments.mean, variance=variance if math.isfinite(variance) else None,
            stddev=math.sqrt(variance) if math.isfinite(variance) else self.moments.std,
            median=self._median(),
            histogram=Histogram(edges.tolist(), np.round(counts).astype(int).tolist()),
            sketch=Sketch(self.values.tolist(), cast("list[float]", self.counts.astype(np.int64).tolist()),
                          self.exact, None if self.exact else self.sketch.bits,
                          None if self.exact else self.sketch.single.tolist()),
            correlation_to_target=self._correlation())

    def _median(self) -> float:
        """Exact middle (mean of the two middle values for even counts) from the sketch, also
        where its values are cut but the middle records' are single; else the cut value the
        (lower) middle record falls in."""
        cumulative = np.cumsum(self.counts)
        total = cumulative[-1]

        def at(rank: float) -> int:
            return min(int(np.searchsorted(cumulative, rank, side="right")), len(self.values) - 1)

        lower, upper = (at((total - 1) / 2),) * 2 if round(total) % 2 else (at(total / 2 - 1), at(total / 2))
        if not (self.sketch.single[lower] and self.sketch.single[upper]):
            # cut values lie toward zero: kept within the values' own extremes
            return min(max(float(self.values[lower]), self.low), self.high)
        low, high = float(self.values[lower]), float(self.values[upper])
        middle = (low + high) / 2
        return middle if math.isfinite(middle) else low / 2 + high / 2  # near the largest double

    def _correlation(self) -> float | None:
        if self.pairs < 2:
            return None
        sx, sy, sxx, syy, sxy = self.xy
        k = self.pairs
        with np.errstate(over="ignore", invalid="ignore"):  # numbers near the double's range
            cov, vx, vy = sxy - sx * sy / k, sxx - sx * sx / k, syy - sy * sy / k
            product = vx * vy
        if not (vx > 0 and vy > 0 and np.isfinite(cov) and np.isfinite(product)):
            return None
        return float(cov / math.sqrt(product))


@njit(cache=True, nogil=True)
def _add_co_moments(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                    sums: npt.NDArray[np.float64]) -> int:
    """Add the sums of x, y, x*x, y*y and x*y over rows where neither is NaN to `sums`, in
    one pass; returns the number of those rows."""
    pairs = 0
    sx = sy = sxx = syy = sxy = 0.0
    for i in range(len(x)):
        a, b = x[i], y[i]
        if not (np.isnan(a) or np.isnan(b)):
            pairs += 1
            sx += a
            sy += b
            sxx += a * a
            syy += b * b
            sxy += a * b
    sums += np.array([sx, sy, sxx, syy, sxy])
    return pairs


MAX_PENDING = 16  # batch tables a CountStats holds before merging them


class CountStats:
    """Value -> count for CATEGORICAL and BINARY attributes, and TEXT tokens (pruned to the
    most frequent).

    Batches' tables (Arrow strings with counts) are kept as arrays and merged when the entries
    held could exceed the pruning bound, so pruning happens exactly where merging every batch
    into one table would prune, at a fraction of the per-batch cost, or when MAX_PENDING
    tables are held (thousands of small arrays over hundreds of columns cost memory).

    Once pruned, the table no longer holds every value seen: from then on the smallest hashes
    of the values (distinct_sketch) count them, whatever the batching. (A value pruned while
    rare starts counting again if it comes back: its count then lacks those first records.)
    """

    def __init__(self) -> None:
        self.values: list[pa.Array] = []          # distinct values (after a merge), then batches
        self.weights: list[npt.NDArray[np.int64]] = []
        self.entries = 0                           # non-zero entries held: >= distinct values
        self.truncated = False
        self.n = 0
        self.true = self.false = 0
        self.hashes: npt.NDArray[np.uint64] | None = None  # once pruned: the distinct values' sketch
        self.seen = 0  # the distinct values, known when the table was cut without a sketch (final_counts)

    def add_table(self, values: pa.Array, counts: npt.NDArray[np.int64]) -> None:
        """Merge a batch given as distinct values (entries with count 0 are ignored)."""
        self.values.append(values)
        self.weights.append(counts)
        self.n += int(counts.sum())
        self.entries += int(np.count_nonzero(counts))
        if self.hashes is not None:
            self.hashes = distinct_sketch.smallest(self.hashes, _hashes_of([values], [counts]))
        if self.entries > 2 * MAX_VALUES or len(self.values) > MAX_PENDING:
            self._merge()
            if self.entries > 2 * MAX_VALUES:
                self._prune()

    def merge(self, other: CountStats) -> None:
        """Add the table of other records (another partition's)."""
        self.n += other.n
        self.true += other.true
        self.false += other.false
        self.truncated = self.truncated or other.truncated
        if self.hashes is not None or other.hashes is not None:
            self.hashes = distinct_sketch.smallest(self._sketch(), other._sketch())
        self.values += other.values
        self.weights += other.weights
        self.entries += other.entries
        if self.entries > 2 * MAX_VALUES or len(self.values) > MAX_PENDING:
            self._merge()
            if self.entries > 2 * MAX_VALUES:
                self._prune()

    def compact(self) -> None:
        """Hold one table in buffers of its own: a batch's values may be slices of its whole
        block, which a copy sent elsewhere (pickled) would carry along."""
        if self.values:
            self._merge(always=True)

    def _merge(self, always: bool = False) -> None:
        if len(self.values) == 1 and self.weights[0].all() and not always:
            return
        encoded = pc.dictionary_encode(pa.concat_arrays(self.values))
        totals = np.bincount(encoded.indices.to_numpy(), weights=np.concatenate(self.weights),
                             minlength=len(encoded.dictionary)).round().astype(np.int64)
        keep = totals > 0
        self.values = [encoded.dictionary.filter(pa.array(keep))]
        self.weights = [totals[keep]]
        self.entries = int(keep.sum())

    def _sketch(self) -> npt.NDArray[np.uint64]:
        """The smallest hashes of every value seen (the table's own until it was pruned)."""
        if self.hashes is not None:
            return self.hashes
        return distinct_sketch.smallest(np.zeros(0, np.uint64), _hashes_of(self.values, self.weights))

    @property
    def distinct(self) -> int:
        """The distinct values seen: counted, or estimated once pruned (final_counts first)."""
        return distinct_sketch.estimate(self.hashes) if self.hashes is not None else self.seen

    def _prune(self) -> None:
        """Keep the MAX_VALUES most frequent values (ties: smaller value first), in that order."""
        self.hashes = self._sketch()
        values, counts = self.values[0], self.weights[0]
        order = pc.sort_indices(pa.table({"c": counts, "v": values}),
                                sort_keys=[("c", "descending"), ("v", "ascending")])
        order = order.slice(0, MAX_VALUES)
        self.truncated = self.truncated or len(values) > MAX_VALUES
        self.values, self.weights = [values.take(order)], [counts[order.to_numpy()]]
        self.entries = len(order)

    def summary(self, counts: dict[str, int] | None = None, binary: bool = False) -> CountedValues:
        """counts: this table as `final_counts` gave it (computed here if not given); binary:
        with the true and false counts."""
        if counts is None:
            counts = final_counts([self])[0]
        return CountedValues(max(self.distinct, len(counts)), counts, self.truncated,
                             self.true if binary else None, self.false if binary else None)


def _hashes_of(values: list[pa.Array], weights: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.uint64]:
    """The hashes of the values of some tables that some record holds (count above 0)."""
    found = [distinct_sketch.string_hashes(v)[w > 0] for v, w in zip(values, weights, strict=True)]
    return np.concatenate(found) if found else np.zeros(0, np.uint64)


def histogram(values: npt.NDArray[np.float64], weights: npt.NDArray[Any] | None, low: float,
              high: float) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """Counts and edges of HISTOGRAM_BINS equal bins over [low, high], as np.histogram makes
    them (one value v: [v - 0.5, v + 0.5]). A range too narrow for distinct float64 edges (at
    1e17 the 0.5 vanishes in rounding) is widened about its middle, or from the largest
    float64 down (or the least up) where that would pass it; one too wide to subtract its ends
    gets edges mixed from them."""
    largest = max(abs(low), abs(high))
    need = 4 * HISTOGRAM_BINS * (largest - float(np.nextafter(largest, 0.0)))  # spacings there
    first, last = low, high
    if high - low < need:
        top = float(np.finfo(np.float64).max)
        with np.errstate(over="ignore"):  # past the least float64: -inf, which the max takes back
            first = min(max(low / 2 + high / 2 - need / 2, -top), top - need)
        last = first + need
    if low == high:
        first, last = min(first, low - 0.5), max(last, high + 0.5)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.histogram(values, bins=HISTOGRAM_BINS, range=(first, last), weights=weights)
    except ValueError:
        share = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
        edges = low * (1 - share) + high * share
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, HISTOGRAM_BINS - 1)
        return np.bincount(bins, weights=weights, minlength=HISTOGRAM_BINS), edges


def final_counts(tables: list[CountStats]) -> list[dict[str, int]]:
    """Every table merged, pruned to MAX_VALUES and ordered (most frequent first, ties by
    value), computed for all tables at once: a few array operations instead of a few per table."""
    parts = [(i, v, w) for i, t in enumerate(tables) for v, w in zip(t.values, t.weights, strict=True)]
    if not parts:
        return [{} for _ in tables]
    encoded = pc.dictionary_encode(pa.concat_arrays([v for _, v, _ in parts]))
    size = len(encoded.dictionary)
    owner = np.repeat(np.array([i for i, _, _ in parts], dtype=np.int64), [len(v) for _, v, _ in parts])
    key = owner * size + encoded.indices.to_numpy()
    weights = np.concatenate([w for _, _, w in parts]).astype(np.float64)
    if len(tables) * size <= 4 * len(key) + 1024:     # a dense grid of (table, value) is small
        totals = np.bincount(key, weights=weights, minlength=len(tables) * size)
        key = np.flatnonzero(totals > 0)
        totals = totals[key]
    else:
        key, inverse = np.unique(key, return_inverse=True)
        totals = np.bincount(inverse, weights=weights)
    totals = totals.round().astype(np.int64)
    key, totals = key[totals > 0], totals[totals > 0]
    owner, code = np.divmod(key, size)
    rank = np.empty(size, dtype=np.int64)
    rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(size)
    order = _table_order(owner, totals, rank[code])
    owner, code, totals = owner[order], code[order], totals[order]
    bounds = np.searchsorted(owner, np.arange(len(tables) + 1))
    strings = np.array(encoded.dictionary.to_pylist(), dtype=object)
    out = []
    for i, table in enumerate(tables):
        begin, end = int(bounds[i]), int(bounds[i + 1])
        table.truncated = table.truncated or end - begin > MAX_VALUES
        table.seen = end - begin  # every value, unless pruned before (then its sketch counts them)
        end = min(end, begin + MAX_VALUES)
        out.append(dict(zip(strings[code[begin:end]].tolist(), totals[begin:end].tolist(), strict=True)))
    return out


def _table_order(owner: np.ndarray, totals: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The order by table, then count (descending), then value rank: one int64 key when the
    three fit in it (an argsort several times faster than lexsort), else lexsort."""
    top = int(totals.max(initial=0))
    span = int(rank.max(initial=0)) + 1
    if (int(owner.max(initial=0)) + 1) * (top + 1) * span < 2**63:
        return np.argsort((owner * (top + 1) + (top - totals)) * span + rank, kind="stable")
    return np.lexsort((rank, -totals, owner))


class TextStats:
    """Token counts and word ranges for TEXT attributes."""

    def __init__(self) -> None:
        self.tokens = CountStats()
        self.n = 0
        self.words = [math.inf, -math.inf]
        self.lengths = [math.inf, -math.inf]

    def add(self, column: pa.Array) -> None:
        self.add_counts(count_tokens(column))

    def add_counts(self, counted: TokenCounts) -> None:
        """Add the token counts of some records."""
        if not counted.values:
            return
        self.n += counted.values
        self.words = [min(self.words[0], counted.fewest), max(self.words[1], counted.most)]
        if len(counted.tokens):
            length = pc.min_max(pc.utf8_length(counted.tokens))
            self.lengths = [min(self.lengths[0], length["min"].as_py()),
                            max(self.lengths[1], length["max"].as_py())]
            self.tokens.add_table(counted.tokens, counted.counts)

    def merge(self, other: TextStats) -> None:
        """Add the tokens and ranges of other records (another partition's)."""
        self.tokens.merge(other.tokens)
        self.n += other.n
        self.words = [min(self.words[0], other.words[0]), max(self.words[1], other.words[1])]
        self.lengths = [min(self.lengths[0], other.lengths[0]), max(self.lengths[1], other.lengths[1])]

    def summary(self, tokens_counts: dict[str, int] | None = None) -> TextValues:
        tokens = self.tokens.summary(tokens_counts)
        top = dict(list(tokens.value_counts.items())[:MAX_TOKENS])
        finite = self.n > 0 and self.tokens.n > 0
        return TextValues(self.tokens.n, tokens.distinct, top,
                          int(self.words[0]) if self.n else None,
                          int(self.words[1]) if self.n else None,
                          int(self.lengths[0]) if finite else None,
                          int(self.lengths[1]) if finite else None)


def entry_counts(values: pa.DictionaryArray) -> npt.NDArray[np.int64]:
    """How many rows use each dictionary entry (missing values count for none)."""
    indices = values.indices if values.null_count == 0 else values.indices.drop_null()
    return np.bincount(indices.to_numpy(), minlength=len(values.dictionary))


def per_row(per_entry: npt.NDArray[Any], indices: pa.Array, fill: Any = np.nan) -> npt.NDArray[Any]:
    """Expand per-dictionary-entry values to rows; null indices (missing fields) get `fill`."""
    if indices.null_count == 0:
        rows: npt.NDArray[Any] = per_entry[indices.to_numpy()]
        return rows
    out = np.full(len(indices), fill, dtype=per_entry.dtype if per_entry.dtype != bool else bool)
    valid = pc.is_valid(indices).to_numpy(zero_copy_only=False)
    out[valid] = per_entry[indices.drop_null().to_numpy()]
    return out


BINARY_VALUES = pa.array(["1", "0"])  # what a BINARY attribute's values are counted as


class StatisticsBuilder:
    """Statistics of every attribute of a schema, fed one batch of selected valid records at a time."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.records = 0
        self.numeric = {a.name: NumericStats() for a in schema.attributes
                        if a.type is AttributeType.NUMERIC}
        self.counted = {a.name: CountStats() for a in schema.attributes
                        if a.type in (AttributeType.BINARY, AttributeType.CATEGORICAL)}
        self.text = {a.name: TextStats() for a in schema.attributes
                     if a.type is AttributeType.TEXT}

    def add(self, columns: dict[str, pa.Array], coerced: dict[str, Coerced],
            counts: dict[str, npt.NDArray[np.int64]], block: BlockValues | None = None,
            rows: npt.NDArray[np.intp] | None = None) -> None:
        """columns: raw (dictionary-encoded unless TEXT); coerced/counts: per dictionary entry.
        block: the values of the block these rows were taken from, when they share its
        dictionaries (its records `rows`, all of them when None): its numbers are then ordered,
        and its text split into tokens, once for every datasource written from it."""
        self.records += len(next(iter(columns.values()))) if columns else 0
        target = self._target_values(columns, coerced)
        for name, stats in self.numeric.items():
            values, order = (block.numbers(name) if block is not None
                             else (coerced[name].values.to_numpy(zero_copy_only=False), None))
            stats.add_table(np.nan_to_num(values, nan=0.0), np.where(np.isnan(values), 0, counts[name]),
                            order)
            if target is not None and name != self.schema.target:
                stats.add_pairs(per_row(values, columns[name].indices), target)
        for name, table in self.counted.items():
            if self.schema.type_of(name) is not AttributeType.BINARY:
                table.add_table(columns[name].dictionary, counts[name])
                continue
            # BINARY: its values are 1 and 0 whatever the spelling (data.md §3.2), and an
            # invalid one is no value (it counted as one, each spelling a distinct value)
            flags = coerced[name].values.to_numpy(zero_copy_only=False)
            true = int(counts[name][flags == True].sum())  # noqa: E712 (object array)
            false = int(counts[name][flags == False].sum())  # noqa: E712
            table.add_table(BINARY_VALUES, np.array([true, false], np.int64))
            table.true += true
            table.false += false
        for name, text in self.text.items():
            tokenized = block.tokenized(name) if block is not None else None
            if tokenized is not None:
                text.add_counts(tokenized.counts(rows))
            else:
                text.add(columns[name])

    def compact(self) -> None:
        """Make the statistics small and self-contained (CountStats.compact), to send them."""
        for table in [*self.counted.values(), *(text.tokens for text in self.text.values())]:
            table.compact()

    def copy(self) -> StatisticsBuilder:
        """A copy that merging into leaves this one unchanged."""
        return copy.deepcopy(self)

    def merge(self, other: StatisticsBuilder) -> None:
        """Add the statistics of other records of the same schema (the partition after these)."""
        self.records += other.records
        for name, stats in self.numeric.items():
            stats.merge(other.numeric[name])
        for name, table in self.counted.items():
            table.merge(other.counted[name])
        for name, text in self.text.items():
            text.merge(other.text[name])

    def _target_values(self, columns: dict[str, pa.Array],
                       coerced: dict[str, Coerced]) -> npt.NDArray[np.float64] | None:
        """Per-row target as float (NaN = missing/invalid) when it is NUMERIC or BINARY."""
        name = self.schema.target
        if name is None or self.schema.type_of(name) not in (AttributeType.NUMERIC, AttributeType.BINARY):
            return None
        per_entry = pc.cast(coerced[name].values, pa.float64()).to_numpy(zero_copy_only=False)
        return per_row(per_entry, columns[name].indices)

    def finish(self, missing: dict[str, int], invalid: dict[str, int]) -> DatasetStatistics:
        tables = [*self.counted.values(), *(text.tokens for text in self.text.values())]
        finals = dict(zip(map(id, tables), final_counts(tables)))
        attributes: dict[str, AttributeStatistics] = {}
        for attribute in self.schema.attributes:
            name = attribute.name
            stats = self.numeric.get(name) or self.counted.get(name) or self.text[name]
            values: NumericValues | CountedValues | TextValues
            if isinstance(stats, CountStats):
                values = stats.summary(finals[id(stats)], attribute.type is AttributeType.BINARY)
            elif isinstance(stats, TextStats):
                values = stats.summary(finals[id(stats.tokens)])
            else:
                values = stats.summary()
            attributes[name] = AttributeStatistics(attribute.type, missing[name], invalid[name],
                                                   stats.n, values)
        return DatasetStatistics(self.records, self._target(attributes), attributes)

    def _target(self, attributes: dict[str, AttributeStatistics]) -> TargetStatistics | None:
        name = self.schema.target
        if name is None:
            return None
        stats = attributes[name]
        values = stats.values
        if isinstance(values, CountedValues) and values.true_count is not None:  # BINARY
            assert values.false_count is not None
            return TargetStatistics(name, stats.attribute_type, values.true_count + values.false_count,
                                    {"0": values.false_count, "1": values.true_count})
        if isinstance(values, CountedValues):
            return TargetStatistics(name, stats.attribute_type, stats.count, values.value_counts)
        return TargetStatistics(name, stats.attribute_type, stats.count, None)
