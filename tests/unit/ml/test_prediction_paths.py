"""One record, four ways to score it: Predict, batch prediction, evaluation and the console's
explanation give the same numbers, for every model type (one feature path, one link)."""

import gzip
import io
import json

import numpy as np
import pyarrow as pa
import pytest

from openaml.ml import batch_predict, evaluate_model, predict_record, train_model
from openaml.ml.metrics.formatting import format_metric, format_score
from openaml.ml.prediction import RecordScorer
from openaml.ml.prediction.explanations import contributions
from openaml.ml.training import SGDParams

from .conftest import make_batch, make_schema
from .test_record_features import OUTPUTS, _training_data

ROWS = 120
TARGETS = {"BINARY": ("BINARY", lambda i, row: "1" if (row["c1"] or "") in ("Red", "é") else "0"),
           "MULTICLASS": ("CATEGORICAL", lambda i, row: ["x", "y", "z"][i % 3]),
           "REGRESSION": ("NUMERIC", lambda i, row: str(i % 7 + (len(row["t"] or "") % 3) / 4))}


def _data(model_type: str) -> dict[str, list[str | None]]:
    data = _training_data(ROWS)
    rows = [{name: values[i] for name, values in data.items()} for i in range(ROWS)]
    data["y"] = [TARGETS[model_type][1](i, row) for i, row in enumerate(rows)]
    # records the training never saw: unseen values, missing and invalid fields
    data["c1"][:3] = ["never seen", None, "RED"]
    data["n1"][3:6] = [None, "abc", "1e400"]
    data["t"][6:8] = [None, "  "]
    return data


@pytest.fixture(scope="module", params=list(TARGETS))
def case(request):
    model_type = request.param
    schema = make_schema([("n1", "NUMERIC"), ("n2", "NUMERIC"), ("c1", "CATEGORICAL"),
                          ("c2", "CATEGORICAL"), ("t", "TEXT"), ("b", "BINARY"),
                          ("y", TARGETS[model_type][0])], targetAttributeName="y")
    data = _data(model_type)
    model = train_model(model_type, schema, json.dumps({"outputs": OUTPUTS}), SGDParams(max_passes=3),
                        None, lambda: iter([make_batch(data)]))
    records = [{name: values[i] for name, values in data.items() if values[i] is not None}
               for i in range(ROWS)]
    return model, schema, make_batch(data), records


def _explained_scores(scorer, record) -> np.ndarray:
    """What the console's explanation adds up to: the bias plus every contribution of the
    features it shows, in feature order, through the model's link function."""
    model = scorer.model
    ids, values = scorer.sorted_features(record)
    values = np.ones(len(ids)) if values is None else values
    z = np.array(model.bias, dtype=np.float64)
    for feature, value in zip(ids.tolist(), values.tolist(), strict=True):
        z = z + value * model.weights[feature]
    return np.atleast_1d(model.link(z[None, :])[0])


def _batch_texts(model, schema, batch) -> list[list[str]]:
    """The score fields of the batch prediction's result lines."""
    out = io.BytesIO()
    out.close = lambda: None  # kept readable after batch_predict closes it
    batch_predict(model, [batch], schema, 0.5, lambda index: out)
    lines = gzip.decompress(out.getvalue()).decode().splitlines()[1:]
    first = 2 if model.model_type == "BINARY" else 1   # after trueLabel (and bestAnswer)
    return [line.split(",")[first:] for line in lines]


def test_every_path_gives_the_record_path_scores(case):
    model, schema, batch, records = case
    evaluation_scores = model.score_batch(batch)   # what evaluate_model scores records with
    texts = _batch_texts(model, schema, batch)
    scorer = RecordScorer(model)
    for i, record in enumerate(records):
        scores = scorer.scores(record)
        assert np.array_equal(np.atleast_1d(evaluation_scores[i]), scores), i
        assert np.array_equal(_explained_scores(scorer, record), scores), i
        assert texts[i] == [format_score(float(s)) for s in scores], i
        predicted = predict_record(scorer, record, 0.5)
        if model.model_type == "REGRESSION":
            assert predicted["predictedValue"] == float(np.float32(scores[0]))
        elif model.model_type == "BINARY":
            label = "1" if scores[0] >= 0.5 else "0"
            assert predicted["predictedScores"] == {label: float(np.float32(scores[0]))}
        else:
            assert predicted["predictedScores"] == {c: float(np.float32(s))
                                                    for c, s in zip(model.classes, scores, strict=True)}


def test_the_evaluation_measures_those_scores(case):
    model, schema, batch, records = case
    scores = np.array([RecordScorer(model).scores(r) for r in records])
    truth = [r["y"] for r in records]
    if model.model_type == "BINARY":
        from sklearn.metrics import roc_auc_score
        expected = roc_auc_score([t == "1" for t in truth], scores[:, 0])
    elif model.model_type == "MULTICLASS":
        from sklearn.metrics import f1_score
        expected = f1_score(truth, np.asarray(model.classes)[scores.argmax(axis=1)], average="macro")
    else:
        expected = float(np.sqrt(np.mean((scores[:, 0] - np.array(truth, float)) ** 2)))
    metrics = evaluate_model(model, [batch], schema).metrics
    # the same value, to the rounding of a different order of summation
    assert [float(v) for v in metrics.values()] == [pytest.approx(float(format_metric(expected)), rel=1e-12)]


def test_explanations_come_from_the_predicted_features(case):
    """The contributions are those of the features Predict scores; with the baseline they sum
    to the score before the link (up to the rounding of another order of addition), and for
    REGRESSION to the predicted value itself, in the target's units (they were standardized:
    9.41 predicted, 2.02 explained)."""
    model, _, _, records = case
    scorer = RecordScorer(model)
    for record in records[:20]:
        z = scorer.linear(record)[0]
        for output in range(len(model.bias)):
            parts, baseline, rest = contributions(scorer, record, output, limit=10**6)
            explained = baseline + sum(v for _, v in parts)
            assert rest == 0
            if model.model_type == "REGRESSION":
                mean, std = model.target_scale
                assert baseline == pytest.approx(model.bias[0] * std + mean, rel=1e-12)
                assert explained == pytest.approx(predict_record(scorer, record)["predictedValue"], rel=1e-6)
            else:
                assert baseline == model.bias[output]
                assert explained == pytest.approx(z[output], abs=1e-9)


def test_a_one_row_batch_scores_as_its_record(case):
    model, _, batch, records = case
    for i in (0, 3, 7):
        row = batch.slice(i, 1)
        assert np.array_equal(np.atleast_1d(model.score_batch(row)[0]), RecordScorer(model).scores(records[i]))


@pytest.mark.parametrize("lookups", ["python", "table", "dicts"])
def test_white_space_around_a_value_is_stripped_as_around_a_csv_field(case, lookups, monkeypatch):
    """A CSV field is read without the white space around it (data.md §1), and so is each
    value of a Predict record: every attribute's value padded scores as the value itself,
    whichever way the categorical values are looked up (a Python loop, the shared code table,
    a dict per attribute); white space alone is a missing value."""
    from openaml.ml.prediction import realtime

    if lookups != "python":
        monkeypatch.setattr(realtime, "PYTHON_LOOKUPS", 0)
    if lookups == "dicts":
        monkeypatch.setattr(realtime, "TABLE_LIMIT", 0)
    model, _, _, records = case
    scorer = RecordScorer(model)
    assert (scorer.codes is None) == (lookups == "dicts")
    for record in records[:40]:
        padded = {name: f" \t{value}\r " for name, value in record.items()}
        assert np.array_equal(scorer.scores(padded), scorer.scores(record))
        blank = {name: " \t" for name in record}
        assert np.array_equal(scorer.scores(blank), scorer.scores({}))


def test_missing_attributes_score_as_missing_fields():
    """A record without an attribute and one with it empty are the same record."""
    schema = make_schema([("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    data = {"c": ["a", "b"] * 10, "y": ["1", "0"] * 10}
    model = train_model("BINARY", schema, '{"outputs": ["c"]}', SGDParams(max_passes=2), None,
                        lambda: iter([make_batch(data)]))
    assert np.array_equal(RecordScorer(model).scores({}), RecordScorer(model).scores({"c": ""}))
    empty = pa.record_batch({"c": pa.array([None], pa.string()), "y": pa.array(["1"])})
    assert np.array_equal(RecordScorer(model).scores({}), np.atleast_1d(model.score_batch(empty)[0]))


def test_a_label_never_contradicts_the_score_predict_gives(case):
    """A threshold set to the score Predict answered (a 32-bit float) labels that record 1, and
    one just above it 0, in Predict, in the batch prediction and in an evaluation's confusion
    counts alike: the label was decided on the unrounded double, so a record scoring just
    below its own answered score was labelled 0 beside a score equal to the threshold."""
    from openaml.ml.metrics.accumulators import BinaryAccumulator

    model, schema, batch, records = case
    if model.model_type != "BINARY":
        return
    scorer = RecordScorer(model)
    for i in range(0, ROWS, 7):
        score = next(iter(predict_record(scorer, records[i], 0.5)["predictedScores"].values()))
        for threshold, label in ((score, "1"), (float(np.nextafter(np.float32(score), np.float32(1))), "0")):
            assert predict_record(scorer, records[i], threshold)["predictedLabel"] == label, (i, threshold)
            out = io.BytesIO()
            out.close = lambda: None  # kept readable after batch_predict closes it
            batch_predict(model, [batch.slice(i, 1)], schema, threshold, lambda index, out=out: out)
            assert gzip.decompress(out.getvalue()).decode().splitlines()[1].split(",")[1] == label, (i, threshold)
            accumulator = BinaryAccumulator()
            accumulator.add(model.score_batch(batch.slice(i, 1)), np.ones(1, np.int8))
            assert accumulator.report(threshold)[1].confusion["tp"] == (label == "1"), (i, threshold)
