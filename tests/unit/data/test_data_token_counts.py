"""The compiled token count of ASCII text must give what Python's str.split gives (the rule of
recipes.md §7.1, which Arrow's utf8_split_whitespace follows too), on every column shape."""

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from openaml.ml.data import token_counts
from openaml.ml.data.statistics import TextStats
from openaml.ml.data.token_counts import count_tokens

# every ASCII white space byte (Python's and Arrow's set), a few that are not, and words
PIECES = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x00", "\x7f",
          "_", "a", "b", "ab", "ba", "call", "Call", "late,", '"q"', "0", "12"]


def _expected(values):
    present = [v for v in values if v is not None]
    tokens = Counter(t for v in present for t in v.split())
    words = [len(v.split()) for v in present]
    return tokens, len(present), min(words, default=0), max(words, default=0)


def _found(column):
    counted = count_tokens(column)
    tokens = dict(zip(counted.tokens.to_pylist(), counted.counts.tolist(), strict=True))
    assert len(tokens) == len(counted.tokens), "each token once"
    return Counter(tokens), counted.values, counted.fewest, counted.most


def _random_values(rng, n, pieces):
    out = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(None)
        else:
            out.append("".join(rng.choice(pieces, size=rng.integers(0, 12))))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_random_ascii_text_counts_as_str_split(seed):
    rng = np.random.default_rng(seed)
    values = _random_values(rng, 300, PIECES)
    assert _found(pa.array(values, pa.string())) == _expected(values)
    assert _found(pa.array(values, pa.large_string())) == _expected(values)
    sliced = pa.array(values, pa.string()).slice(37, 200)   # an offset into shared buffers
    assert _found(sliced) == _expected(values[37:237])


def test_many_distinct_tokens_grow_the_tables():
    values = [" ".join(f"w{i}x{j}" for j in range(i % 50)) for i in range(2_000)]
    values[7] = "tok " * 3_000   # one long record: the tables grow before it
    assert _found(pa.array(values)) == _expected(values)


def test_tokens_that_share_a_hash_stay_apart(monkeypatch):
    """Distinct tokens in one slot chain (every hash the same) are still told apart."""
    monkeypatch.setattr(token_counts, "_scan", token_counts._scan.py_func)
    monkeypatch.setattr(token_counts, "_FNV_PRIME", np.uint64(0))
    values = ["ab ba a b ab", "b a ba", "abc"]
    assert _found(pa.array(values)) == _expected(values)


@pytest.mark.parametrize("values", [
    ["caf\u00e9 au lait", "x"],             # non-ASCII letters
    ["a\u00a0b c", "a\u3000b", "a\u2028b"],  # Unicode white space: split there too
    ["\u00e9", None, ""],
])
def test_non_ascii_text_counts_as_str_split(values):
    assert _found(pa.array(values)) == _expected(values)


@pytest.mark.parametrize("values", [[], [None, None], [""], ["  \t "]])
def test_empty_and_missing_values(values):
    column = pa.array(values, pa.string())
    assert _found(column) == _expected(values)


def test_text_statistics_of_ascii_and_unicode_batches_merge():
    stats = TextStats()
    stats.add(pa.array(["a bb", None, "ccc a"]))
    stats.add(pa.array(["\u00e9t\u00e9 a", "   "]))
    summary = stats.summary()
    assert summary.top_tokens == {"a": 3, "bb": 1, "ccc": 1, "\u00e9t\u00e9": 1}
    assert (summary.total_tokens, summary.distinct_tokens) == (6, 4)
    assert (summary.min_words_per_record, summary.max_words_per_record) == (0, 2)
    assert (summary.min_word_length, summary.max_word_length) == (1, 3)


@pytest.mark.parametrize("seed", range(4))
def test_the_counts_of_some_records_are_those_of_their_own_scan(seed):
    """An ingest splits a block's text once (tokenize) and each datasource counts its own
    records from it: the same as scanning those records alone, for any selection."""
    from openaml.ml.data.token_counts import tokenize

    rng = np.random.default_rng(seed)
    values = _random_values(rng, 200, PIECES)
    column = pa.array(values, pa.string()).slice(3)
    tokenized = tokenize(column)
    assert tokenized is not None
    for rows in (np.arange(0), np.arange(len(column)), np.flatnonzero(rng.random(len(column)) < 0.7),
                 np.flatnonzero(rng.random(len(column)) < 0.05), rng.permutation(len(column))[:50]):
        counted, alone = tokenized.counts(rows), count_tokens(column.take(pa.array(rows, pa.int64())))
        assert dict(zip(counted.tokens.to_pylist(), counted.counts.tolist())) == dict(
            zip(alone.tokens.to_pylist(), alone.counts.tolist()))
        assert (counted.values, counted.fewest, counted.most) == (alone.values, alone.fewest, alone.most)
    assert tokenize(pa.array(["caf\u00e9"])) is None  # not ASCII: each datasource splits its own
