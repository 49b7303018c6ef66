import gzip
import io
import json

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from openaml.ml import batch_predict, evaluate_model, load_model, predict_record, train_model
from openaml.ml.execution import Execution
from openaml.ml.linear import linear_scores
from openaml.ml.prediction import RecordScorer
from openaml.ml.training import SGDParams

from .conftest import make_batch, make_schema

SCHEMA = make_schema([("id", "CATEGORICAL"), ("c", "CATEGORICAL"), ("n", "NUMERIC"), ("t", "TEXT"),
                      ("y", "BINARY")], targetAttributeName="y", rowId="id")
DATA = make_batch({"id": [str(i) for i in range(8)], "c": ["a", "b"] * 4,
                   "n": ["1", "2", "3", "4", "5", "6", "7", "x"], "t": ["good day", "bad, day"] * 4,
                   "y": ["1", "0"] * 4})
RECIPE = '{"outputs": ["c", "n", "ngram(no_punct(t), 2)"]}'


@pytest.fixture(scope="module")
def model():
    return train_model("BINARY", SCHEMA, RECIPE, SGDParams(max_passes=5), None, lambda: iter([DATA]))


def test_save_load_round_trip(model):
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = load_model(buffer)
    assert loaded.recipe == RECIPE and loaded.classes == ["0", "1"]
    assert loaded.schema.to_json() == SCHEMA.to_json()
    assert np.array_equal(loaded.score_batch(DATA), model.score_batch(DATA))
    assert loaded.size_in_bytes == model.size_in_bytes > 1024


def test_predict_record_matches_batch_scores(model):
    batch_scores = model.score_batch(DATA)
    record = {"c": "a", "n": "1", "t": "good day", "unknown": "x", "y": "0"}
    out = predict_record(RecordScorer(model), record, 0.5)
    assert out["details"] == {"Algorithm": "SGD", "PredictiveModelType": "BINARY"}
    (label, score), = out["predictedScores"].items()
    assert label == out["predictedLabel"] == ("1" if batch_scores[0] >= 0.5 else "0")
    assert score == float(np.float32(batch_scores[0]))
    assert predict_record(RecordScorer(model), record, 1.0)["predictedLabel"] == "0"
    empty = predict_record(RecordScorer(model), {}, 0.5)  # everything missing: bias only
    assert abs(empty["predictedScores"][empty["predictedLabel"]]
               - float(np.float32(1 / (1 + np.exp(-model.bias[0]))))) < 1e-6
    assert predict_record(RecordScorer(model), {"n": "abc"}, 0.5) == empty


def test_batch_output_format(model):
    batch = make_batch({"id": ["r1", "r,2", "r3"], "c": ["a", None, "b"], "n": ["1", None, "2"],
                        "t": ["good", None, "bad"], "y": ["yes", None, "bogus"]},
                       rejected=[False, True, False], files=[0, 0, 1])
    outputs: dict[int, io.BytesIO] = {}

    class Keep(io.BytesIO):
        def close(self) -> None:
            outputs[self.index] = self.getvalue()

    def open_output(index: int):
        stream = Keep()
        stream.index = index
        return stream

    total, invalid = batch_predict(model, [batch], SCHEMA, 0.5, open_output)
    assert (total, invalid) == (3, 1)
    first = gzip.decompress(outputs[0]).decode().split("\n")
    second = gzip.decompress(outputs[1]).decode().split("\n")
    assert first[0] == second[0] == "tag,trueLabel,bestAnswer,score"
    scores = model.score_batch(batch)
    tag, true, best, score = first[1].split(",")
    assert (tag, true, best) == ("r1", "1", "1" if scores[0] >= 0.5 else "0")
    mantissa, exponent = f"{scores[0]:.6E}".split("E")
    assert score == mantissa.rstrip("0").rstrip(".") + "E" + str(int(exponent))
    assert first[2:] == ["", ""]  # the rejected record's empty line, then the final newline
    assert second[1].startswith("r3,,") and second[2] == ""
    # compressed for speed (the gzip header's XFL byte says so): at the default level, writing
    # a large result took a quarter of the job
    assert outputs[0][8] == outputs[1][8] == 4


def test_multiclass_and_regression_outputs():
    schema = make_schema([("c", "CATEGORICAL"), ("y", "CATEGORICAL")], targetAttributeName="y")
    data = make_batch({"c": ["a", "b", "c"] * 4, "y": ["x,1", "y", "z"] * 4})
    model = train_model("MULTICLASS", schema, '{"outputs": ["c"]}', SGDParams(), None, lambda: iter([data]))
    out = predict_record(RecordScorer(model), {"c": "b"}, 0.5)
    assert out["predictedLabel"] == "y" and set(out["predictedScores"]) == {"x,1", "y", "z"}
    assert abs(sum(out["predictedScores"].values()) - 1) < 1e-6
    from openaml.ml.prediction import header_line
    assert header_line(model, make_schema([("c", "CATEGORICAL")])) == '"x,1",y,z'
    ev = evaluate_model(model, [data], schema)
    assert ev.metrics == {"MulticlassAvgFScore": "1.0"}
    reg_schema = make_schema([("c", "CATEGORICAL"), ("y", "NUMERIC")], targetAttributeName="y")
    reg_data = make_batch({"c": ["a", "b"] * 10, "y": ["1", "3"] * 10})
    reg = train_model("REGRESSION", reg_schema, '{"outputs": ["c"]}', SGDParams(max_passes=50), None,
                      lambda: iter([reg_data]))
    value = predict_record(RecordScorer(reg), {"c": "b"}, 0.5)
    assert set(value) == {"details", "predictedValue"} and abs(value["predictedValue"] - 3) < 0.5
    metrics = evaluate_model(reg, [reg_data], reg_schema).metrics
    assert float(metrics["RegressionRMSE"]) < 0.5
    assert json.dumps(value)


def _numbers_model(kind: str):
    """A model of one NUMERIC input x in [-0.1, 0.1) taken as it is (a standard deviation of
    0.058: 1e308 standardized is infinite)."""
    x = np.arange(-100, 100) / 1000
    y = {"REGRESSION": 2 * x, "BINARY": x > 0, "MULTICLASS": np.array(list("abc"))[np.digitize(x, [-0.03, 0.03])]}[kind]
    target = {"REGRESSION": "NUMERIC", "BINARY": "BINARY", "MULTICLASS": "CATEGORICAL"}[kind]
    schema = make_schema([("x", "NUMERIC"), ("y", target)], targetAttributeName="y")
    labels = [str(int(v)) if kind == "BINARY" else str(v) for v in y]
    data = make_batch({"x": [str(v) for v in x], "y": labels})
    return train_model(kind, schema, '{"outputs": ["x"]}', SGDParams(), None, lambda: iter([data])), schema


@pytest.mark.parametrize("kind", ["REGRESSION", "BINARY", "MULTICLASS"])
@pytest.mark.parametrize("value", ["1e30", "1e200", "1e308", "-1e308"])
def test_records_far_beyond_the_training_data_still_get_an_answer(kind, value):
    """Inputs near the double's range make scores past a 32-bit float's (Predict gave no
    predictedValue) or infinite ones (probabilities of NaN): Predict answers with the largest
    float of the score's sign where a float cannot hold it (the double itself, which it gave
    before, broke SDKs that read the member as the service model's 32-bit float), and the
    MULTICLASS classes of an infinite score share its probability; batch scores agree."""
    model, schema = _numbers_model(kind)
    scorer = RecordScorer(model)
    answer = predict_record(scorer, {"x": value}, 0.5)
    json.loads(json.dumps(answer, allow_nan=False))
    scores = scorer.scores({"x": value})
    assert np.array_equal(np.atleast_1d(model.score_batch(make_batch({"x": [value]}))[0]), scores)
    if kind == "REGRESSION":
        largest = float(np.finfo(np.float32).max)
        expected = float(np.clip(scores[0], -largest, largest))
        assert answer["predictedValue"] == float(np.float32(expected)) and np.sign(expected) == np.sign(float(value))
        assert abs(answer["predictedValue"]) <= largest
    elif kind == "BINARY":
        assert answer["predictedLabel"] == ("1" if float(value) > 0 else "0")
    else:  # the class whose weight grows fastest toward the value takes it, as in the limit
        assert answer["predictedLabel"] == ("c" if float(value) > 0 else "a")
        assert sum(answer["predictedScores"].values()) == pytest.approx(1.0)


def test_an_input_far_beyond_the_training_data_meets_a_zero_weight_without_nan():
    """A standardized input is bounded (pipeline.STANDARDIZED_LIMIT): one near the double's
    range times a weight L1 set to exactly 0 is 0, not NaN (inf * 0), so batch and Predict
    answer (a reviewer's MULTICLASS model with sgd.l1RegularizationAmount 0.1)."""
    x = np.arange(-100, 100) / 1000
    schema = make_schema([("x", "NUMERIC"), ("y", "CATEGORICAL")], targetAttributeName="y")
    data = make_batch({"x": [str(v) for v in x], "y": list(np.array(list("abc"))[np.digitize(x, [-0.03, 0.03])])})
    model = train_model("MULTICLASS", schema, '{"outputs": ["x"]}', SGDParams(), None, lambda: iter([data]))
    model.weights[0, 1] = 0.0  # as L1 leaves a weight
    for value in ("1e306", "1e308", "-1e308"):
        batch = model.score_batch(make_batch({"x": [value]}))
        scores = RecordScorer(model).scores({"x": value})
        assert np.isfinite(batch).all() and np.array_equal(batch[0], scores)
        assert sum(predict_record(RecordScorer(model), {"x": value}, 0.5)["predictedScores"].values()) == \
            pytest.approx(1.0)


def test_softmax_of_infinite_scores_is_their_limit():
    from openaml.ml.model import softmax

    z = np.array([[np.inf, -np.inf, 1.0], [np.inf, np.inf, 0.0], [-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0]])
    with np.errstate(all="raise"):
        p = softmax(z)
    assert p[:3].tolist() == [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3] * 3]
    assert np.allclose(p[3], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_a_score_that_is_not_a_number_is_refused_with_a_reason(monkeypatch):
    """Where infinite terms meet in one score (+inf and -inf), Predict says why it gives no
    answer instead of leaving the member out."""
    from openaml.ml.prediction import UnscorableRecord

    model, _ = _numbers_model("REGRESSION")
    scorer = RecordScorer(model)
    monkeypatch.setattr(scorer, "scores", lambda record: np.array([np.nan]))
    with pytest.raises(UnscorableRecord, match="not a number"):
        predict_record(scorer, {"x": "1"}, 0.5)


@pytest.mark.parametrize("table_limit", [0, 1 << 22])
def test_categorical_records_score_like_batches(table_limit, monkeypatch):
    """Categorical-only models score records through one value-code table (or per-attribute
    dicts when the table would be too big): the same scores as batch scoring."""
    import openaml.ml.prediction.realtime as realtime

    monkeypatch.setattr(realtime, "TABLE_LIMIT", table_limit)
    schema = make_schema([("p0", "CATEGORICAL"), ("p1", "CATEGORICAL"), ("label", "CATEGORICAL")],
                         targetAttributeName="label")
    rng = np.random.default_rng(2)
    p0, p1 = rng.integers(0, 5, 60), rng.integers(0, 3, 60)
    data = make_batch({"p0": [str(v) for v in p0], "p1": [f"v{v}" for v in p1],
                       "label": [str((a + b) % 3) for a, b in zip(p0, p1)]})
    model = train_model("MULTICLASS", schema, '{"outputs": ["ALL_CATEGORICAL"]}',
                        SGDParams(max_passes=3), None, lambda: iter([data]))
    records = [{"p0": "1", "p1": "v2"}, {"p0": "9", "p1": "v0"}, {"p1": "2"}, {}]
    expected = model.score_batch(make_batch({"p0": [r.get("p0") for r in records],
                                             "p1": [r.get("p1") for r in records]}))
    for record, scores in zip(records, expected):
        got = predict_record(RecordScorer(model), record)["predictedScores"]
        assert np.allclose([got[c] for c in model.classes], scores, atol=1e-6)


@pytest.mark.parametrize("rows", [5, 3001])
@pytest.mark.parametrize("indicators", [True, False])
def test_linear_scores_equal_a_sparse_product(rows, indicators):
    x = sp.random(rows, 60, density=0.1, format="csr", random_state=rows)
    if indicators:
        x.data[:] = 1.0
    rng = np.random.default_rng(3)
    weights, bias = rng.normal(size=(60, 4)), rng.normal(size=4)
    rows_of = (x.indptr, x.indices, None if indicators else x.data)
    assert np.allclose(linear_scores(rows_of, weights, bias), x @ weights + bias)


def _many_batches(count: int) -> list[pa.RecordBatch]:
    """Batches of varied sizes over two input files, some records rejected or without a target."""
    batches, first = [], 0
    for k in range(count):
        rows = 3 + k % 5
        ids = range(first, first + rows)
        batches.append(make_batch({"id": [str(i) for i in ids], "c": ["abc"[i % 3] for i in ids],
                                   "n": [str(i % 7) for i in ids], "t": ["good day" if i % 2 else "bad" for i in ids],
                                   "y": [None if i % 11 == 0 else str(i % 2) for i in ids]},
                                  rejected=[i % 13 == 0 for i in ids], files=[int(k >= count // 2)] * rows))
        first += rows
    return batches


def _outputs(model, batches, execution):
    outputs: dict[int, bytes] = {}

    class Keep(io.BytesIO):
        def close(self) -> None:
            outputs[self.index] = gzip.decompress(self.getvalue())

    def open_output(index: int):
        stream = Keep()
        stream.index = index
        return stream

    counts = batch_predict(model, iter(batches), SCHEMA, 0.5, open_output, execution=execution)
    return counts, outputs


def test_two_threads_score_slices_in_order_like_one(model, monkeypatch):
    """An evaluation and a batch prediction with two threads score two slices at once (on the
    helper threads) and give one thread's metric, report and result files, line for line."""
    import threading

    batches = _many_batches(40)
    threads: set[str] = set()
    score = type(model).score_batch

    def noted(self, batch):
        threads.add(threading.current_thread().name)
        return score(self, batch)

    monkeypatch.setattr(type(model), "score_batch", noted)
    one, two = (evaluate_model(model, iter(batches), SCHEMA, execution=Execution(n)) for n in (1, 2))
    assert one.metrics == two.metrics and one.records == two.records
    assert one.report == two.report
    assert _outputs(model, batches, Execution(1)) == _outputs(model, batches, Execution(2))
    assert any(name.startswith("openaml-features") for name in threads)


@pytest.mark.parametrize("kind, target, labels", [("BINARY", "BINARY", ["1", "0"]),
                                                  ("REGRESSION", "NUMERIC", ["1.5", "3"]),
                                                  ("MULTICLASS", "CATEGORICAL", ["a", "b"])])
def test_a_slice_of_rejected_records_alone_gives_empty_lines(kind, target, labels):
    """A batch (or a slice of one) whose every record was rejected still has its empty result
    lines written, for every model type (its scores had a shape no formatter took)."""
    schema = make_schema([("c", "CATEGORICAL"), ("y", target)], targetAttributeName="y")
    data = make_batch({"c": ["a", "b"] * 10, "y": labels * 10})
    model = train_model(kind, schema, '{"outputs": ["c"]}', SGDParams(), None, lambda: iter([data]))
    bad = make_batch({"c": ["a", "b", "a"], "y": labels + labels[:1]}, rejected=[True] * 3)
    outputs: dict[int, bytes] = {}

    class Keep(io.BytesIO):
        def close(self) -> None:
            outputs[0] = gzip.decompress(self.getvalue())

    assert batch_predict(model, [bad, data.slice(0, 2)], schema, 0.5, lambda _: Keep()) == (5, 3)
    lines = outputs[0].decode().split("\n")
    assert lines[1:4] == ["", "", ""] and lines[4] and lines[5] and lines[6] == ""
