"""Predict's evaluation of recipe variables one record at a time (features/record.py) gives
exactly the features of the batch evaluator, for every kind of variable and for any record."""

import json
import re
import time

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openaml.ml import predict_record, train_model
from openaml.ml.features import tokens as tk
from openaml.ml.features.pipeline import FeaturePipeline
from openaml.ml.features.tokens import RecordTooLarge
from openaml.ml.features.transforms import TRANSFORMS
from openaml.ml.prediction.realtime import RecordScorer
from openaml.ml.schema.values import NUMBER_PATTERN
from openaml.ml.training import SGDParams

from .conftest import make_batch, make_schema

SCHEMA = make_schema([("n1", "NUMERIC"), ("n2", "NUMERIC"), ("c1", "CATEGORICAL"),
                      ("c2", "CATEGORICAL"), ("t", "TEXT"), ("b", "BINARY"), ("y", "BINARY")],
                     targetAttributeName="y")
# every recipe function, nested, on every kind it accepts
OUTPUTS = ["n1", "c1", "b", "lowercase(c1)", "no_punct(c2)", "no_punct(lowercase(c2))",
           "quantile_bin(n1,5)", "normalize(n2)", "t", "lowercase(t)", "no_punct(t)",
           "ngram(lowercase(t),3)", "osb(no_punct(t),3)", "cartesian(c1,b)",
           "cartesian(quantile_bin(n1,5),lowercase(t))", "cartesian(no_punct(t),c2)",
           "lowercase(quantile_bin(n2,5))"]
WORDS = ["Good", "good", "day!", "(bad)", "BAD", "day", "é", "Straße", "İx", "!!", "a-b", "%"]
SPACES = [" ", "  ", "\t", "\n", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000"]


def _training_data(rows: int = 300) -> dict[str, list[str | None]]:
    rng = np.random.default_rng(0)
    pick = lambda options: [options[i] for i in rng.integers(0, len(options), rows)]  # noqa: E731
    text = [" ".join(rng.choice(WORDS, rng.integers(0, 5))) for _ in range(rows)]
    return {"n1": [f"{v:.2f}" for v in rng.normal(0, 3, rows)],
            "n2": pick(["1", "2", "2", "3.5", "-1e3", "7", None]),
            "c1": pick(["Red", "red", "Blue", "é", "x"]), "c2": pick(["a!", "b", "(c)", "É!", "?"]),
            "t": text, "b": pick(["yes", "no", "T", "0", None]), "y": pick(["1", "0"])}


@pytest.fixture(scope="module")
def scorer() -> RecordScorer:
    data = make_batch(_training_data())
    recipe = json.dumps({"outputs": OUTPUTS})
    model = train_model("BINARY", SCHEMA, recipe, SGDParams(max_passes=2), None, lambda: iter([data]))
    return RecordScorer(model)


def _batch_features(scorer: RecordScorer, record: dict) -> tuple[np.ndarray, np.ndarray]:
    """The generic sources' features by the batch evaluator, on a one-row batch."""
    p = scorer.model.pipeline
    kept = [i for i, source in enumerate(p.sources) if any(source is s for s, *_ in scorer.generic_sources)]
    pipeline = FeaturePipeline(p.schema, tuple(p.sources[i] for i in kept), p.params,
                               [p.scales[i] for i in kept], [p.vocabs[i] for i in kept])
    ids = np.concatenate([np.arange(p.offsets[i], p.offsets[i + 1]) for i in kept])
    x = pipeline.transform(pa.record_batch({n: pa.array([v], pa.string()) for n, v in record.items()}))
    return ids[x.indices], x.data


def _nonzero(ids: np.ndarray, values: np.ndarray) -> tuple[list[int], list[float]]:
    """Sorted (id, value) pairs without zero values (the batch path may drop those)."""
    pairs = sorted((int(i), float(v)) for i, v in zip(ids, values) if v != 0)
    return [i for i, _ in pairs], [v for _, v in pairs]


text = st.lists(st.sampled_from(WORDS) | st.text(max_size=4), max_size=6).flatmap(
    lambda words: st.lists(st.sampled_from(SPACES), min_size=len(words), max_size=len(words)).map(
        lambda spaces: "".join(w + s for w, s in zip(words, spaces))))
value = st.none() | st.sampled_from(["1", "-2.5", "1e400", "-1e400", "nan", "3.", ".5", "yes",
                                     "No", "TRUE", "Red", "red", "é", "a!", "(c)", "x"]) | text
records = st.fixed_dictionaries({}, optional={name: value for name in ("n1", "n2", "c1", "c2", "t", "b")})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records)
def test_python_features_equal_the_batch_features(scorer, record):
    stripped = {n: (record.get(n) or "").strip() or None for n in scorer.generic_attrs}
    assert _nonzero(*scorer.generic_features(stripped)) == _nonzero(*_batch_features(scorer, stripped))


def test_plain_records_take_the_python_path(scorer):
    record = {"n1": "0.5", "n2": "2", "c1": "Red", "c2": "(c)", "t": "Good day! (bad)", "b": "yes"}
    stripped = {n: record.get(n) for n in scorer.generic_attrs}
    ids, values = scorer.generic_features(stripped)
    assert len(ids) > 10 and _nonzero(ids, values) == _nonzero(*_batch_features(scorer, stripped))
    assert predict_record(scorer, record)["predictedLabel"] in ("0", "1")


def test_infinite_numbers_are_missing_in_both_paths(scorer):
    """A NUMERIC field beyond float64's range ("1e400") is missing, as an invalid number is:
    Predict and batch scoring agree (it once became an infinite feature in batches only)."""
    for text_value in ("1e400", "-1e400"):
        record = {"n1": text_value, "n2": text_value}
        batch = scorer.model.score_batch(make_batch({"n1": [text_value], "n2": [text_value]}))[0]
        missing = scorer.model.score_batch(make_batch({"n1": [None], "n2": [None]}))[0]
        assert np.allclose(batch, missing)
        assert np.allclose(scorer.scores(record), missing)


@pytest.mark.parametrize("text_value", ["35\n", "-2.5\n", "1e3\n"])
def test_a_number_with_a_line_end_after_it_is_invalid_in_both_paths(scorer, text_value):
    """Predict read "35\n" as 35 (Python's $ matches before a final LF); a batch finds it no
    number, as the rules do (LF is no white space to strip: no CSV value holds one)."""
    missing = scorer.model.score_batch(make_batch({"n1": [None]}))[0]
    assert np.allclose(scorer.model.score_batch(make_batch({"n1": [text_value]}))[0], missing)
    assert np.allclose(scorer.scores({"n1": text_value}), missing)


def test_a_cartesian_too_large_for_one_record_is_refused_before_it_is_built(scorer, monkeypatch):
    """cartesian(no_punct(t), c2) of a record whose text has more tokens than one record may
    pair is refused (it was built whole: a 22 KB record took seconds and gigabytes); below
    that, Predict scores what a batch scores (a record of 160,000 pairs was refused by Predict
    alone, whose limit was lower)."""
    words = " ".join(["day"] * 1_001)
    assert predict_record(scorer, {"t": words, "c2": "b"})
    monkeypatch.setattr(tk, "MAX_RECORD_PAIRS", 1_000)
    with pytest.raises(RecordTooLarge, match="1,001 token pairs for one record"):
        predict_record(scorer, {"t": words, "c2": "b"})
    assert predict_record(scorer, {"t": " ".join(["day"] * 100), "c2": "b"})


def test_a_record_is_bounded_by_its_tokens_and_pairs_in_all(scorer, monkeypatch):
    """Each cartesian() is bounded for one record, and so is the sum over a record's variables:
    a recipe of 40 cartesians made a 90 KB record cost 8 CPU-seconds of a Predict."""
    words = " ".join(f"w{i}" for i in range(300))  # 300 tokens: under the bound in each variable
    monkeypatch.setattr(tk, "MAX_RECORD_TOKENS", 1_000)
    with pytest.raises(RecordTooLarge, match="more than 1,000 tokens and token pairs in all"):
        predict_record(scorer, {"t": words, "c2": "b"})
    assert predict_record(scorer, {"t": " ".join(["day"] * 50), "c2": "b"})


def test_every_transform_has_both_forms_held_to_each_other_here():
    """Each function of transforms.TRANSFORMS is in OUTPUTS, whose record form the tests above
    hold to the batch form (a function added there without its pair here fails)."""
    used = {name for output in OUTPUTS for name in re.findall(r"([a-z_]+)\(", output)}
    assert used == set(TRANSFORMS)
    for transform in TRANSFORMS.values():
        assert {"batch", "record"} <= set(type(transform).__dict__)


LONG_ALMOST_NUMBER = "1" * 30_000 + "a"  # the old pattern tried every split of the digits: ~20 s


def test_a_long_value_that_is_almost_a_number_is_read_promptly(scorer):
    """Predict reads NUMERIC values with NUMBER_PATTERN on Python's re (small records on the
    event loop): a pattern that backtracks over the digits stalled every client (15,000
    digits and a letter took 4.8 s); the value is invalid, as in a batch."""
    started = time.perf_counter()
    scores = scorer.scores({"n1": LONG_ALMOST_NUMBER, "n2": LONG_ALMOST_NUMBER})
    assert time.perf_counter() - started < 2.0
    assert np.allclose(scores, scorer.model.score_batch(make_batch({"n1": [None], "n2": [None]}))[0])


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet="0123456789.eE+-a ", max_size=10))
def test_the_number_pattern_reads_the_numbers_it_always_read(text):
    """It is the old pattern without its backtracking: the same strings match."""
    old = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
    assert bool(re.fullmatch(NUMBER_PATTERN, text)) == bool(old.fullmatch(text))
