"""openaml.classWeights: "balanced" or an explicit map, for BINARY and MULTICLASS models of
both algorithms; the minority class's recall rises on imbalanced data."""

import json

import numpy as np
import pytest

from openaml.ml import parse_parameters, train_model
from openaml.ml.training import ParameterError
from openaml.ml.training.params import class_weight_of

from .conftest import make_batch, make_schema

SCHEMA = make_schema([("x", "NUMERIC"), ("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
RECIPE = '{"outputs": ["x", "c"]}'


def _imbalanced(n: int = 3000, seed: int = 4):
    """About 7 % positives, overlapping with the negatives: a model without weights rarely says 1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    c = rng.choice(["a", "b", "c"], size=n)
    y = (x + 0.8 * (c == "a") + rng.normal(scale=1.0, size=n)) > 2.2
    return make_batch({"x": [f"{v:.4f}" for v in x], "c": list(c), "y": ["1" if v else "0" for v in y]}), y


def _recall(model, batch, y) -> float:
    predicted = model.score_batch(batch) >= 0.5
    return float((predicted & y).sum() / y.sum())


@pytest.mark.parametrize("algorithm", ["sgd", "gbdt"])
def test_balanced_weights_raise_the_minority_recall(algorithm):
    batch, y = _imbalanced()
    assert 0.03 < y.mean() < 0.12
    base = {"openaml.algorithm": algorithm}
    plain, weighted, heavier = (
        train_model("BINARY", SCHEMA, RECIPE, parse_parameters({**base, **extra}, "BINARY"), None,
                    lambda: iter([batch]))
        for extra in ({}, {"openaml.classWeights": "balanced"}, {"openaml.classWeights": '{"1": 3}'}))
    assert _recall(weighted, batch, y) > _recall(plain, batch, y) + 0.2
    assert _recall(plain, batch, y) < _recall(heavier, batch, y) < _recall(weighted, batch, y) + 0.2
    assert weighted.summary["class_weights"]["1"] > 5 > 1 > weighted.summary["class_weights"]["0"]
    assert heavier.summary["class_weights"] == {"0": 1.0, "1": 3.0}
    assert "class_weights" not in plain.summary


def test_class_weights_are_checked():
    assert parse_parameters({"openaml.classWeights": " Balanced "}, "MULTICLASS").class_weights == "balanced"
    # a BINARY model's classes are 1 and 0, whatever words the data use for them
    assert json.loads(parse_parameters({"openaml.classWeights": '{"Yes": 3, "false": 0.5}'}, "BINARY")
                      .class_weights) == {"1": 3.0, "0": 0.5}
    assert json.loads(parse_parameters({"openaml.classWeights": '{"b": 2, "a": 0.5}'}, "MULTICLASS")
                      .class_weights) == {"a": 0.5, "b": 2.0}
    for given, kind, message in [("balanced", "REGRESSION", "BINARY and MULTICLASS"),
                                 ("heavy", "BINARY", "'balanced' or a JSON object"),
                                 ('{"1": 0}', "BINARY", "numbers from"),
                                 ('{"1": true}', "BINARY", "numbers from"),
                                 ('{}', "BINARY", "numbers from"),
                                 ('[1, 2]', "BINARY", "numbers from"),
                                 ('{"1": 1e7}', "BINARY", "numbers from"),
                                 ('{"maybe": 2}', "BINARY", "no class of a BINARY model"),
                                 ('{"yes": 2, "1": 3}', "BINARY", "two weights")]:
        with pytest.raises(ParameterError, match=message):
            parse_parameters({"openaml.classWeights": given}, kind)
    counts = {"a": 90, "b": 10}
    assert np.allclose(class_weight_of("balanced", counts, ["a", "b"]), [100 / 180, 100 / 20])
    assert np.allclose(class_weight_of('{"b": 4.0}', counts, ["a", "b"]), [1, 4])
    with pytest.raises(ParameterError, match="'z', which no training record has"):
        class_weight_of('{"z": 2.0}', counts, ["a", "b"])
    assert class_weight_of(None, counts, ["a", "b"]) is None


def test_multiclass_weights_follow_the_classes():
    schema = make_schema([("x", "NUMERIC"), ("y", "CATEGORICAL")], targetAttributeName="y")
    rng = np.random.default_rng(2)
    x = rng.normal(size=2000)
    z = x + rng.normal(scale=0.8, size=2000)  # the classes overlap: "rare" is rarely the likeliest
    label = np.where(z > 2.0, "rare", np.where(z > 0, "mid", "low"))
    batch = make_batch({"x": [f"{v:.4f}" for v in x], "y": list(label)})

    def rare_recall(given):
        model = train_model("MULTICLASS", schema, '{"outputs": ["x", "quantile_bin(x, 20)"]}',
                            parse_parameters(given, "MULTICLASS"), None, lambda: iter([batch]))
        predicted = np.asarray(model.classes)[model.score_batch(batch).argmax(axis=1)]
        return float(((predicted == "rare") & (label == "rare")).sum() / (label == "rare").sum())

    assert rare_recall({"openaml.classWeights": '{"rare": 8}'}) > rare_recall({}) + 0.1


def test_a_class_no_record_has_is_refused_before_the_data_are_read():
    """With the datasource's statistics, the classes are known before any record is read: a
    weight for another class fails the training at once, naming the classes."""
    import io

    from openaml.ml.data import DataObject, ingest, parse_rearrangement
    schema = make_schema([("x", "NUMERIC"), ("c", "CATEGORICAL"), ("y", "CATEGORICAL")], targetAttributeName="y")
    text = b"".join(f"{i},{'pq'[i % 2]},{'ab'[i % 2]}\n".encode() for i in range(50))
    report = ingest([DataObject("s3://w/d.csv", "d.csv", len(text), lambda: io.BytesIO(text))], schema,
                    parse_rearrangement(None), True, io.BytesIO())

    def unread():
        raise AssertionError("the records were read")

    with pytest.raises(ParameterError, match=r"'c', which no training record has.*\["):
        train_model("MULTICLASS", schema, '{"outputs": ["x", "ALL_CATEGORICAL"]}',  # x's moments need a read
                    parse_parameters({"openaml.classWeights": '{"c": 2}'}, "MULTICLASS"), report.statistics, unread)
