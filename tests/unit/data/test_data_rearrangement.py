import hashlib

import numpy as np
import pytest

from openaml.ml.data import RearrangementError, parse_rearrangement
from openaml.ml.data.rearrangement import Rearrangement


def test_defaults_select_everything():
    for text in (None, "", "{}", '{"splitting": {}}'):
        assert parse_rearrangement(text).selects_all


def test_accepted_variants():
    r = parse_rearrangement('{"splitting": {"percentBegin": 10, "percentEnd": 70.5, '
                            '"complement": "TRUE", "strategy": "random", "randomSeed": "s"}, '
                            '"randomSeed": "ignored"}')
    assert (float(r.begin), float(r.end), r.complement, r.strategy, r.seed) == (10, 70.5, True, "random", "s")
    r = parse_rearrangement('{"splitting": {"strategy": "random", "strategyParams": {"randomSeed": "x"}}}')
    assert r.seed == "x" and not r.complement
    assert parse_rearrangement('{"splitting": {"strategy": "random", "strategyParams": null}}').seed == ""


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ('{"splitting": {"percentBegin": -1}}', "outside 0-100"),
    ('{"splitting": {"percentEnd": 101}}', "outside 0-100"),
    ('{"splitting": {"percentBegin": 60, "percentEnd": 50}}', "greater than"),
    ('{"splitting": {"strategy": "shuffled"}}', "strategy"),
    ('{"splitting": {"complement": "maybe"}}', "complement"),
    ('{"splitting": {"complement": 1}}', "complement"),
    ('{"splitting": {"percentBegin": "10"}}', "number"),
    ('[1]', "object"),
    ('{"splitting": {"strategy": "random", "strategyParams": "seed"}}', "strategyParams must be a JSON object"),
    ('{"splitting": {"strategy": "random", "strategyParams": ["s"]}}', "strategyParams must be a JSON object"),
])
def test_rejections(text, words):
    with pytest.raises(RearrangementError, match=words):
        parse_rearrangement(text)


def test_sequential_partitions_exactly():
    total = 7
    a = Rearrangement(end=70).select_sequential(0, total, total)
    b = Rearrangement(begin=70).select_sequential(0, total, total)
    c = Rearrangement(end=70, complement=True).select_sequential(0, total, total)
    assert a.sum() == 5 and not (a & b).any() and (a | b).all() and (c == b).all()


def _direct(seed, key, offset):
    k = int.from_bytes(hashlib.sha256((seed + "\n" + key).encode()).digest()[:8], "big")
    z = (k + offset) % 2**64
    m = 2**64
    z = (z + 0x9E3779B97F4A7C15) % m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % m
    z ^= z >> 31
    return 100 * (z >> 11) / 2**53


def test_random_matches_formula_and_partitions():
    offsets = np.arange(0, 5000, 7, dtype=np.int64)
    r = Rearrangement(begin=20, end=70, strategy="random", seed="abc")
    mask = r.select_random("data/f.csv", offsets)
    expected = [20 <= _direct("abc", "data/f.csv", int(o)) < 70 for o in offsets]
    assert mask.tolist() == expected
    comp = Rearrangement(begin=20, end=70, complement=True, strategy="random", seed="abc")
    assert (mask ^ comp.select_random("data/f.csv", offsets)).all()
    other = Rearrangement(begin=20, end=70, strategy="random", seed="abd").select_random("data/f.csv", offsets)
    assert (other != mask).any()
    assert 0.4 < mask.mean() < 0.6


def test_random_decimal_percentages_exact():
    offsets = np.arange(0, 3000, 11, dtype=np.int64)
    r = parse_rearrangement('{"splitting": {"percentBegin": 12.5, "percentEnd": 33.3, "strategy": "random"}}')
    expected = [12.5 <= _direct("", "k", int(o)) < 33.3 for o in offsets]
    assert r.select_random("k", offsets).tolist() == expected


@pytest.mark.parametrize("text, selected", [
    # the decimal text, not the nearest double (33.333333333333336 selected 2 of 3)
    ('{"splitting": {"percentEnd": 33.33333333333333333333}}', [True, False, False]),
    ('{"splitting": {"percentEnd": 1e-400}}', [True, False, False]),  # not 0.0: one record
    ('{"splitting": {"percentBegin": 33.33333333333333333333}}', [False, True, True]),
])
def test_percentages_are_read_exactly_as_written(text, selected):
    assert parse_rearrangement(text).select_sequential(0, 3, 3).tolist() == selected


@pytest.mark.parametrize("number", ["1e999999999", "-1e999999999", "1e-999999999", "0." + "0" * 2000 + "1"])
def test_percentages_of_huge_exponents_are_refused_at_once(number):
    with pytest.raises(RearrangementError, match="outside 0-100|decimal places"):
        parse_rearrangement(f'{{"splitting": {{"percentEnd": {number}}}}}')


def test_a_decimal_seed_hashes_as_before():
    """Numbers are read exactly for the percentages; a number given as the seed keeps the text
    it had when read as a double (the seed of existing datasources)."""
    r = parse_rearrangement('{"splitting": {"strategy": "random", "strategyParams": {"randomSeed": 1.50}}}')
    assert r.seed == "1.5"


@pytest.mark.parametrize("text, seed", [
    ('{"splitting": {"strategy": "random", "strategyParams": {"randomSeed": [1.5, {"a": 2.0}]}}}',
     '[1.5, {"a": 2.0}]'),  # numbers inside a seed, written as before (a TypeError answered 500)
    ('{"splitting": {"percentEnd": 0e-5000}}', ""),  # exactly 0, whatever its exponent
])
def test_decimals_anywhere_in_a_rearrangement_read_as_before(text, seed):
    assert parse_rearrangement(text).seed == seed


def test_a_strategy_params_number_is_refused_naming_it():
    with pytest.raises(RearrangementError, match="not 2.5"):
        parse_rearrangement('{"splitting": {"strategyParams": 2.5}}')
