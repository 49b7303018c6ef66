"""An evaluation of data in partitions, scored apart and merged (finish_evaluation), reports
exactly what one evaluation of all the records reports, for every model type."""

from __future__ import annotations

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
