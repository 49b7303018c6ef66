"""Count tables kept as arrays must give what a plain dict merged batch by batch gives."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openaml.ml.data import statistics
from openaml.ml.data.statistics import CountStats, final_counts


def _reference(batches, cap):
    """value -> count merged per batch, pruned to `cap` whenever it holds more than 2 * cap."""
    table, truncated = {}, False
    for values, counts in batches:
        for value, count in zip(values, counts, strict=True):
            if count:
                table[value] = table.get(value, 0) + count
        if len(table) > 2 * cap:
            truncated = True
            table = dict(sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))[:cap])
    ordered = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ordered[:cap]), truncated or len(ordered) > cap


def _batches(rng, n, words):
    out = []
    for _ in range(n):
        values = list(rng.choice(words, size=rng.integers(0, 12), replace=False))
        out.append((values, rng.integers(0, 4, len(values))))   # zero counts included
    return out


def test_tables_match_a_dict_merged_per_batch(monkeypatch):
    monkeypatch.setattr(statistics, "MAX_VALUES", 4)
    rng = np.random.default_rng(7)
    words = np.array(["a", "b", "é", "10", "9", "zz", "Z", "", "x y", "ü", "b2", "c"])
    cases = [_batches(rng, n, words) for n in (0, 1, 3, 20, 40)]
    tables = []
    for batches in cases:
        table = CountStats()
        for values, counts in batches:
            table.add_table(pa.array(values, pa.string()), counts)
        tables.append(table)
    finals = final_counts(tables)
    for batches, table, counts in zip(cases, tables, finals, strict=True):
        expected, truncated = _reference(batches, 4)
        assert list(counts.items()) == list(expected.items())
        assert table.truncated == truncated
        assert table.n == sum(int(c.sum()) for _, c in batches)
        assert table.summary(counts).value_counts == counts
    assert any(t.truncated for t in tables) and not tables[0].truncated


def _distinct_of(batchings):
    """The distinct count each batching's CountStats reports (its batches in order; a batching
    given as several lists is several partitions merged in order)."""
    found = []
    for partitions in batchings:
        tables = []
        for batches in partitions:
            table = CountStats()
            for values in batches:
                table.add_table(pa.array(values, pa.string()), np.ones(len(values), np.int64))
            tables.append(table)
        whole = tables[0]
        for later in tables[1:]:
            whole.merge(later)
        found.append(whole.summary().distinct)
    return found


@pytest.mark.parametrize("distinct", [150, 40_000])
def test_the_distinct_count_of_a_pruned_table_depends_on_the_values_alone(monkeypatch, distinct):
    """A table pruned to its most frequent values once reported those as its distinct values
    (100,000 for 300,001), and where it was pruned depended on how the records were batched.
    Below the sketch's size it is exact; past it, an estimate within a few percent; the same
    values in other batches, orders and partitions give the same number."""
    monkeypatch.setattr(statistics, "MAX_VALUES", 40)
    rng = np.random.default_rng(distinct)
    values = [f"v{i:06d}" for i in range(distinct)]
    stream = values + list(rng.choice(values, distinct // 2))  # repeats in later records
    shuffled = list(rng.permutation(stream))

    def cut(items, sizes):
        bounds = np.cumsum([0, *sizes])
        return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if a < len(items)]

    n = len(stream)
    batchings = [[cut(stream, [n])], [cut(stream, [1000] * (n // 1000 + 1))],
                 [cut(shuffled, [37] * (n // 37 + 1))],
                 [cut(stream[:n // 3], [500] * n), cut(stream[n // 3:], [777] * n)]]  # two partitions
    found = _distinct_of(batchings)
    assert len(set(found)) == 1
    assert abs(found[0] - distinct) <= 0.03 * distinct
    if distinct < 1000:
        assert found[0] == distinct


def test_a_table_cut_without_pruning_counts_every_value(monkeypatch):
    """A table over the cap only at its end (never pruned) knows its distinct values exactly."""
    monkeypatch.setattr(statistics, "MAX_VALUES", 40)
    table = CountStats()
    table.add_table(pa.array([f"w{i}" for i in range(70)], pa.string()), np.arange(1, 71))
    summary = table.summary()
    assert summary.truncated and len(summary.value_counts) == 40 and summary.distinct == 70


def test_table_order_by_one_key_or_by_lexsort():
    rng = np.random.default_rng(9)
    owner, rank = np.sort(rng.integers(0, 50, 2000)), rng.integers(0, 40, 2000)
    for top in (100, 2**60):  # the second does not fit one int64 key: lexsort
        totals = rng.integers(1, top, 2000)
        expected = np.lexsort((rank, -totals, owner))
        assert np.array_equal(statistics._table_order(owner, totals, rank), expected)


@pytest.mark.parametrize("with_order", [False, True])
def test_numeric_tables_merge_like_numpy_unique(with_order):
    """Batches of values (repeated within and across batches, unsorted, some with no count)
    merge into the distinct values with their total counts, whether or not their sorted order
    is given (block_values.sorted_order, shared by the datasources of one read)."""
    from openaml.ml.data.block_values import sorted_order
    from openaml.ml.data.statistics import NumericStats

    rng = np.random.default_rng(5)
    stats, seen, weights = NumericStats(), [], []
    for size in (1, 50, 7, 300, 0, 120):
        values = rng.integers(-40, 40, size) / 4.0
        counts = rng.integers(0, 4, size)
        stats.add_table(values, counts, sorted_order(values) if with_order else None)
        seen.append(values)
        weights.append(counts)
    values, counts = np.concatenate(seen), np.concatenate(weights)
    expected, inverse = np.unique(values[counts > 0], return_inverse=True)
    assert stats.values.tolist() == expected.tolist()
    assert stats.counts.tolist() == np.bincount(inverse, weights=counts[counts > 0]).tolist()
    assert stats.n == counts.sum() and stats.moments.mean == pytest.approx(np.average(values, weights=counts))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), parts=st.integers(1, 6), scale=st.sampled_from([1e-300, 1e-3, 1.0, 1e9, 1e300]))
def test_a_sketch_past_its_exact_limit_depends_on_the_values_alone(seed, parts, scale, monkeypatch):
    """Past EXACT_DISTINCT distinct values the sketch holds the values cut to the most mantissa
    bits that leave at most SKETCH_POINTS: the same however the values come in batches and
    partitions merged (the sketch of them all at once), with whole counts, each value single
    where its records hold one value alone (then given as it is), and one bit more would
    leave too many (at no bits, one value per binade and sign is left however many those are:
    never more than 4,093, under the real SKETCH_POINTS). The limits are the same for every
    draw."""
    from openaml.ml import number_sketch
    from openaml.ml.data.statistics import NumericStats

    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 60)
    monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 40)
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0, scale, 150), rng.lognormal(0, 4, 60) * scale,
                             rng.integers(-3, 3, 40).astype(float), [0.0, -0.0, scale, -scale]])
    counts = rng.integers(1, 4, len(values))
    order = rng.permutation(len(values))
    values, counts = values[order], counts[order]
    merged = []
    for part in np.array_split(np.arange(len(values)), parts):  # partitions, each in batches
        stats = NumericStats()
        for batch in np.array_split(part, rng.integers(1, 5)):
            stats.add_table(values[batch], counts[batch])
        merged.append(stats)
    while len(merged) > 1:  # merged in a random tree, in input order
        k = int(rng.integers(0, len(merged) - 1))
        merged[k].merge(merged.pop(k + 1))
    expected = number_sketch.settled(number_sketch.Sketched.exact(*number_sketch.counted(np.repeat(values, counts))))
    found = merged[0].sketch
    assert not merged[0].exact and found.bits == expected.bits
    assert np.array_equal(found.values.view(np.int64), expected.values.view(np.int64))
    assert np.array_equal(found.counts, expected.counts) and found.counts.sum() == counts.sum()
    assert np.array_equal(found.single, expected.single)
    # a single value is its records' own, alone in its cut value
    keys, distinct = number_sketch.cut(found.values, found.bits), np.unique(values + 0.0)
    for value, key, single in zip(found.values, keys, found.single, strict=True):
        members = distinct[number_sketch.cut(distinct, found.bits) == key]
        assert single == (len(members) == 1) and value == (members[0] if single else key)
    assert found.bits == 0 or len(found.values) <= 40
    assert len(np.unique(number_sketch.cut(distinct, found.bits + 1))) > 40
    sketch = merged[0].summary().sketch
    assert (sketch.exact, sketch.bits, sketch.counts, sketch.single) == (
        False, found.bits, found.counts.astype(int).tolist(), found.single.tolist())


def test_a_sketch_within_its_exact_limit_holds_every_value(monkeypatch):
    """Up to EXACT_DISTINCT distinct values, and at exactly that many, the values themselves."""
    from openaml.ml import number_sketch
    from openaml.ml.data.statistics import NumericStats

    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 60)
    values = np.linspace(-1, 1, 60) * np.pi
    stats = NumericStats()
    stats.add_table(values[:30], np.ones(30, np.int64))
    stats.add_table(values[30:], np.full(30, 2))
    assert stats.exact and stats.values.tolist() == values.tolist() and stats.summary().sketch.bits is None
    stats.add_table(np.array([0.5]), np.ones(1, np.int64))
    assert not stats.exact and stats.summary().distinct is None


def test_a_cut_sketch_keeps_the_exact_extremes_and_positive_zeros(monkeypatch):
    """Cut values lie toward zero from the values they stand for: the minimum and maximum are
    the values' own, the histogram counts every value within them, and a negative value cut
    to zero is 0.0 whatever order the values come in."""
    from openaml.ml import number_sketch
    from openaml.ml.data.statistics import NumericStats

    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 30)
    monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 10)
    values = np.concatenate([np.linspace(1.5, 1.9, 40), [-5e-324, 0.0, 7.75]])
    for ordered in (values, values[::-1]):
        stats = NumericStats()
        for part in np.array_split(ordered, 3):
            stats.add_table(part, np.ones(len(part), np.int64))
        summary = stats.summary()
        assert not stats.exact and (summary.min, summary.max) == (-5e-324, 7.75)
        assert sum(summary.histogram.counts) == len(values)
        assert not np.signbit(stats.values).any()
    # the least value (and its negation, the greatest) cut below it: the histogram still counts
    # it, and the median of cut values stays within the extremes
    crowded = np.concatenate([np.linspace(1.51, 1.56, 30), np.linspace(2, 3.9, 10)])
    for sign in (1, -1):
        stats = NumericStats()
        stats.add_table(sign * crowded, np.ones(len(crowded), np.int64))
        summary = stats.summary()
        assert not stats.exact and sorted([summary.min, summary.max]) == sorted([sign * 1.51, sign * 3.9])
        assert summary.min <= summary.median <= summary.max
        assert sum(summary.histogram.counts) == len(crowded)


def test_the_median_of_a_cut_sketch_is_exact_where_the_middle_records_are_single(monkeypatch):
    """Single values are the values themselves: two of them in the middle of an even count
    give their mean, as an exact sketch does; a middle record in a cut value that stands for
    several gives that cut value."""
    from openaml.ml import number_sketch
    from openaml.ml.data.statistics import NumericStats

    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 40)
    monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 30)
    sides = [np.linspace(-200, -100, 30), np.linspace(100, 200, 30)]
    for middle, expected in (([1.0] * 20 + [3.0] * 20, 2.0), (np.linspace(1.01, 1.2, 40), None)):
        values = np.concatenate([sides[0], middle, sides[1]])
        stats = NumericStats()
        stats.add_table(values, np.ones(len(values), np.int64))
        assert not stats.exact
        median = stats.summary().median
        if expected is not None:
            assert median == expected == np.median(values)
        else:  # the lower middle record's cut value, below it
            lower = np.sort(values)[len(values) // 2 - 1]
            assert median == float(number_sketch.cut(np.array([lower]), stats.sketch.bits)[0]) < lower


def test_statistics_of_the_largest_doubles_warn_nothing():
    """The histogram's spacing near the largest float64 overflows quietly (warnings raised as
    errors failed the ingest)."""
    import warnings

    from openaml.ml.data.statistics import NumericStats

    stats = NumericStats()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats.add_table(np.array([-1.7976931348623157e308, 1.7976931348623157e308]), np.ones(2, np.int64))
        summary = stats.summary()
        largest = NumericStats()
        largest.add_table(np.array([1.7976931348623157e308]), np.array([2]))
        assert largest.summary().median == 1.7976931348623157e308  # the two middle values' mean
    assert (summary.min, summary.max) == (-1.7976931348623157e308, 1.7976931348623157e308)
