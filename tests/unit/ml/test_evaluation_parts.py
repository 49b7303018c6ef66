"""An evaluation of data in partitions, scored apart and merged (finish_evaluation), reports
exactly what one evaluation of all the records reports, for every model type."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from openaml.ml import parse_parameters, train_model
from openaml.ml.metrics import evaluate_model
from openaml.ml.metrics.evaluation import finish_evaluation, score_records
from tests.unit.ml.conftest import make_batch, make_schema

RECIPE = '{"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC"]}'


@pytest.mark.parametrize(("model_type", "target_type"),
                         [("BINARY", "BINARY"), ("MULTICLASS", "CATEGORICAL"), ("REGRESSION", "NUMERIC")])
def test_partitions_scored_apart_give_one_evaluations_report(model_type: str, target_type: str) -> None:
    rng = np.random.default_rng(5)
    schema = make_schema([("x", "NUMERIC"), ("c", "CATEGORICAL"), ("y", target_type)], targetAttributeName="y")
    x = rng.normal(size=3000)
    c = rng.integers(0, 5, 3000)
    signal = x + c / 2 + rng.normal(size=3000)
    y = {"BINARY": (signal > 1).astype(int), "MULTICLASS": np.digitize(signal, [0, 1, 2]),
         "REGRESSION": np.round(signal, 3)}[model_type]
    rows = {"x": [f"{v:.4f}" for v in x], "c": [str(v) for v in c], "y": [str(v) for v in y]}
    rows["y"][7] = None  # a record without a target: seen, not used
    batches = [make_batch({k: v[i:i + 500] for k, v in rows.items()}) for i in range(0, 3000, 500)]
    model = train_model(model_type, schema, RECIPE, parse_parameters({}, model_type), None, lambda: iter(batches))
    whole = evaluate_model(model, iter(batches), schema)
    parts = [score_records(model, iter(batches[:1])), score_records(model, iter(batches[1:4])),
             score_records(model, iter([])), score_records(model, iter(batches[4:]))]
    merged = finish_evaluation(model, schema, parts)
    assert merged.metrics == whole.metrics and merged.records == whole.records == 2999
    assert json.dumps(merged.report.to_json(), sort_keys=True) == json.dumps(whole.report.to_json(), sort_keys=True)


@pytest.mark.parametrize(("model_type", "target_type"),
                         [("BINARY", "BINARY"), ("MULTICLASS", "CATEGORICAL"), ("REGRESSION", "NUMERIC")])
def test_an_evaluation_alerts_when_its_target_is_distributed_otherwise_than_in_training(
        model_type: str, target_type: str) -> None:
    """evaluation-and-prediction.md §1.4's fifth alert (an evaluation set of 97 % positives
    against a balanced training set raised none), and the training-data alert its caller
    asks for; none for a held-out part of the same data."""
    rng = np.random.default_rng(9)
    schema = make_schema([("x", "NUMERIC"), ("y", target_type)], targetAttributeName="y")

    def rows(n: int, shift: float) -> dict[str, list[str]]:
        x = rng.normal(size=n) + shift
        signal = x + rng.normal(scale=0.5, size=n)
        y = {"BINARY": (signal > 0).astype(int), "MULTICLASS": np.digitize(signal, [-1, 0, 1]),
             "REGRESSION": np.round(signal, 3)}[model_type]
        return {"x": [f"{v:.4f}" for v in x], "y": [str(v) for v in y]}

    model = train_model(model_type, schema, '{"outputs": ["x"]}', parse_parameters({}, model_type), None,
                        lambda: iter([make_batch(rows(2000, 0.0))]))
    alike = evaluate_model(model, iter([make_batch(rows(1000, 0.0))]), schema).report.alerts
    assert not any("distributed otherwise" in alert for alert in alike)
    shifted = evaluate_model(model, iter([make_batch(rows(1000, 2.0))]), schema).report.alerts
    assert [alert for alert in shifted if alert.startswith("The target is distributed otherwise than in training")]
    scores = score_records(model, iter([make_batch(rows(1000, 0.0))]))
    alerts = finish_evaluation(model, schema, [scores], training_data=True).report.alerts
    assert alerts[0].startswith("The evaluation datasource holds the model's training records")


@pytest.mark.parametrize("statistics", [False, True])
def test_a_constant_regression_target_alerts_only_where_the_evaluation_differs(statistics: bool) -> None:
    """A constant training target has a spread of 0, which the model's scale keeps as 1: an
    evaluation of the training records themselves alerted "standard deviation 2.22e-16,
    against 1.235 and 1". Trained from the records and from the datasource statistics."""
    from openaml.ml.data import DataObject, ingest, parse_rearrangement

    schema = make_schema([("x", "NUMERIC"), ("y", "NUMERIC")], targetAttributeName="y")
    rng = np.random.default_rng(3)

    def batch(values: list[str]) -> object:
        return make_batch({"x": [f"{v:.3f}" for v in rng.normal(size=len(values))], "y": values})

    same = batch(["1.2345675"] * 300)
    found = None
    if statistics:  # the datasource statistics of the same records
        data = "\n".join(f"{x},{y}" for x, y in zip(same.column("x").to_pylist(), same.column("y").to_pylist()))
        stored = data.encode()
        found = ingest([DataObject(uri="s3://b/d.csv", key="d.csv", size=len(stored), open=lambda: io.BytesIO(stored))],
                       schema, parse_rearrangement(None), True, io.BytesIO()).statistics
    model = train_model("REGRESSION", schema, '{"outputs": ["x"]}', parse_parameters({}, "REGRESSION"), found,
                        lambda: iter([same]))

    def alerts(values: list[str]) -> list[str]:
        report = evaluate_model(model, iter([batch(values)]), schema).report
        return [a for a in report.alerts if a.startswith("The target is distributed otherwise")]

    assert alerts(["1.2345675"] * 300) == []
    assert alerts(["2.5"] * 300)  # another constant
    assert alerts([f"{1.2345675 + v:.4f}" for v in rng.normal(size=300)])  # spread where there was none
