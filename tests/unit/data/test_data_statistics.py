"""Count tables kept as arrays must give what a plain dict merged batch by batch gives."""

import numpy as np
import pyarrow as pa
import pytest

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
