"""Train -> evaluate -> batch predict -> real-time predict, for each model type, through boto3."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import numpy as np
import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from openaml.jobs.record_info import read_progress
from openaml.store import EntityKind
from tests.api.conftest import error_code, wait_for

NUMBER = re.compile(r"^-?[0-9](\.[0-9]{1,6})?E-?[0-9]+$")


def make_rows(kind: str, n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """Synthetic data with a learnable target: id, x1 (numeric), c (categorical), words (text), y."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    cats = rng.choice(["red", "green", "blue"], size=n)
    bonus = {"red": 1.5, "green": 0.0, "blue": -1.5}
    signal = 2.0 * x1 + np.array([bonus[c] for c in cats]) + rng.normal(scale=0.3, size=n)
    if kind == "BINARY":
        y = [str(int(s > 0)) for s in signal]
    elif kind == "MULTICLASS":
        y = ["low" if s < -1 else "mid" if s < 1 else "high, very" for s in signal]
    else:
        y = [f"{3.0 * s + 10:.4f}" for s in signal]
    words = [("good great" if s > 0 else "bad poor") + " plain" for s in signal]
    rows = [[f"r{i}", f"{x1[i]:.5f}", cats[i], words[i], y[i]] for i in range(n)]
    return ["id", "x1", "c", "words", "y"], rows


def schema(kind: str, with_target: bool = True) -> str:
    target_type = {"BINARY": "BINARY", "MULTICLASS": "CATEGORICAL", "REGRESSION": "NUMERIC"}[kind]
    attributes = [("id", "CATEGORICAL"), ("x1", "NUMERIC"), ("c", "CATEGORICAL"),
                  ("words", "TEXT"), ("y", target_type)]
    return json.dumps({
        "version": "1.0", "rowId": "id", "targetAttributeName": "y" if with_target else None,
        "dataFormat": "CSV", "dataFileContainsHeader": True,
        "attributes": [{"attributeName": a, "attributeType": t} for a, t in attributes]})


def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize("variant", ["sgd", "gbdt", "saga"])
@pytest.mark.parametrize("kind", ["BINARY", "MULTICLASS", "REGRESSION"])
def test_full_workflow(kind: str, variant: str, server: Application, ml: Any, uid: Callable[[str], str],
                       put_object: Callable[[str, bytes], str]) -> None:
    """Every step of the workflow, with the linear model (trained by the default optimizer or
    by SAGA), and with boosted trees (asked for by one more parameter; every output keeps its
    shape)."""
    algorithm = "gbdt" if variant == "gbdt" else "sgd"
    header, rows = make_rows(kind, 600, seed=7)
    data = to_csv(header, rows)
    folder = f"s3://workflow/{uid(kind.lower())}"
    uri = put_object(f"{folder}/data.csv", data)
    batch_rows = rows[:40]
    batch_csv = to_csv(header, batch_rows) + b"only,three,fields\n"  # the last one is rejected
    batch_uri = put_object(f"{folder}/batch/input.csv", batch_csv)
    ids = {name: uid(name) for name in ("train", "eval", "batchds", "model", "ev", "bp")}
    split = '{"splitting":{"percentBegin":0,"percentEnd":70,"strategy":"random",' \
            '"strategyParams":{"randomSeed":"s"}}}'
    ml.create_data_source_from_s3(DataSourceId=ids["train"], ComputeStatistics=True, DataSpec={
        "DataLocationS3": uri, "DataSchema": schema(kind), "DataRearrangement": split})
    ml.create_data_source_from_s3(DataSourceId=ids["eval"], DataSpec={
        "DataLocationS3": uri, "DataSchema": schema(kind),
        "DataRearrangement": split.replace('"s"}}', '"s"},"complement":true}')})
    ml.create_data_source_from_s3(DataSourceId=ids["batchds"], DataSpec={
        "DataLocationS3": batch_uri, "DataSchema": schema(kind)})
    trees = {"openaml.algorithm": "gbdt", "gbdt.rounds": "50"} if algorithm == "gbdt" else {}
    if algorithm == "gbdt" and kind != "REGRESSION":
        trees["openaml.classWeights"] = "balanced"
    if variant == "saga":
        trees["openaml.optimizer"] = "saga"
    ml.create_ml_model(MLModelId=ids["model"], MLModelType=kind, TrainingDataSourceId=ids["train"],
                       Parameters={"sgd.maxPasses": "20", "sgd.shuffleType": "auto", **trees})
    ml.create_evaluation(EvaluationId=ids["ev"], MLModelId=ids["model"],
                         EvaluationDataSourceId=ids["eval"])

    model = wait_for(lambda: ml.get_ml_model(MLModelId=ids["model"], Verbose=True))
    assert model["Status"] == "COMPLETED", model.get("Message")
    assert model["SizeInBytes"] > 0
    assert model["TrainingParameters"]["sgd.maxPasses"] == "20"
    assert model["TrainingParameters"]["algorithm"] == algorithm
    assert ("gbdt.rounds" in model["TrainingParameters"]) == (algorithm == "gbdt")
    assert model["TrainingParameters"].get("openaml.classWeights") == trees.get("openaml.classWeights")
    assert model["TrainingParameters"].get("openaml.optimizer") == trees.get("openaml.optimizer")
    if algorithm == "gbdt":  # the job log tells the rounds
        log = httpx.get(f"{server.settings.base_url}/logs/MLModel/{ids['model']}", timeout=10).text
        assert "boosting round 50 of 50" in log and "binning them" in log
    if algorithm == "sgd":  # the last pass's progress is stored by the end, however fast the passes
        log = httpx.get(f"{server.settings.base_url}/logs/MLModel/{ids['model']}", timeout=10).text
        passes = sum(line.split(" ", 1)[-1].startswith("pass ") for line in log.splitlines())
        progress = read_progress(server.context.store.get(EntityKind.MLMODEL, ids["model"]))
        assert passes > 1 and progress is not None and progress.passes == passes
    assert json.loads(model["Recipe"])["outputs"]  # the default recipe actually used
    assert json.loads(model["Schema"])["targetAttributeName"] == "y"
    assert model["EndpointInfo"] == {"EndpointStatus": "NONE", "PeakRequestsPerSecond": 0}
    assert ("ScoreThreshold" in model) == (kind == "BINARY")
    listed = ml.describe_ml_models(FilterVariable="TrainingDataSourceId", EQ=ids["train"])["Results"]
    assert listed[0]["Algorithm"] == "sgd" and "Recipe" not in listed[0]

    evaluation = wait_for(lambda: ml.get_evaluation(EvaluationId=ids["ev"]))
    assert evaluation["Status"] == "COMPLETED", evaluation.get("Message")
    properties = evaluation["PerformanceMetrics"]["Properties"]
    metric = {"BINARY": "BinaryAUC", "MULTICLASS": "MulticlassAvgFScore",
              "REGRESSION": "RegressionRMSE"}[kind]
    assert list(properties) == [metric]
    value = float(properties[metric])
    if kind == "BINARY":
        assert value > 0.9
    elif kind == "MULTICLASS":
        assert value > 0.55  # always predicting one class scores about 0.2
    else:
        assert value < 3.0  # the target's standard deviation is about 7
    assert evaluation["InputDataLocationS3"] == uri

    output = f"{folder}/out"
    ml.create_batch_prediction(BatchPredictionId=ids["bp"], MLModelId=ids["model"],
                               BatchPredictionDataSourceId=ids["batchds"], OutputUri=output)
    batch = wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=ids["bp"]))
    assert batch["Status"] == "COMPLETED", batch.get("Message")
    assert batch["TotalRecordCount"] == 41 and batch["InvalidRecordCount"] == 1
    result = gzip.decompress(server.context.objects.read_bytes(
        f"{output}/batch-prediction/result/{ids['bp']}-input.csv.gz")).decode()
    assert result.endswith("\n")
    lines = result.split("\n")[:-1]
    assert len(lines) == 1 + 41 and lines[-1] == ""
    parsed = list(csv.reader(lines[:-1]))
    expected_header = {"BINARY": ["tag", "trueLabel", "bestAnswer", "score"],
                       "MULTICLASS": ["tag", "trueLabel", "high, very", "low", "mid"],
                       "REGRESSION": ["tag", "trueLabel", "score"]}[kind]
    assert parsed[0] == expected_header
    for source, row in zip(batch_rows, parsed[1:], strict=True):
        assert row[0] == source[0] and row[1] == source[4]
        for value_text in row[2 + (kind == "BINARY"):]:
            assert NUMBER.match(value_text), value_text
        if kind == "MULTICLASS":
            assert abs(sum(float(v) for v in row[2:]) - 1) < 1e-4
        if kind == "BINARY":
            assert row[2] == ("1" if float(row[3]) >= 0.5 else "0")
    manifest = json.loads(server.context.objects.read_bytes(
        f"{output}/batch-prediction/{ids['bp']}.manifest"))
    assert manifest == {batch_uri: f"{output}/batch-prediction/result/{ids['bp']}-input.csv.gz"}

    record = dict(zip(header[:4], rows[0][:4], strict=True))
    with pytest.raises(ClientError) as err:
        ml.predict(MLModelId=ids["model"], Record=record, PredictEndpoint=server.settings.base_url)
    assert error_code(err) == "PredictorNotMountedException"
    info = ml.create_realtime_endpoint(MLModelId=ids["model"])["RealtimeEndpointInfo"]
    assert info["EndpointStatus"] in ("UPDATING", "READY")
    assert info["EndpointUrl"] == server.settings.base_url
    ready = _wait_endpoint(ml, ids["model"])
    assert ready["EndpointInfo"]["PeakRequestsPerSecond"] == 200
    prediction = ml.predict(MLModelId=ids["model"], Record={**record, "unknown": "ignored"},
                            PredictEndpoint=ready["EndpointInfo"]["EndpointUrl"])["Prediction"]
    assert prediction["details"] == {"Algorithm": "SGD", "PredictiveModelType": kind}
    _check_explanation(ml, ids["model"], record, prediction, kind, algorithm, server.settings.base_url)
    if kind == "REGRESSION":
        assert isinstance(prediction["predictedValue"], float)
        assert "predictedLabel" not in prediction
    else:
        assert prediction["predictedLabel"] in {"0", "1", "low", "mid", "high, very"}
    if kind == "MULTICLASS":
        assert sorted(prediction["predictedScores"]) == ["high, very", "low", "mid"]
    if kind == "BINARY":
        (label, score), = prediction["predictedScores"].items()
        assert label == prediction["predictedLabel"]
        ml.update_ml_model(MLModelId=ids["model"], ScoreThreshold=0.0)
        again = ml.predict(MLModelId=ids["model"], Record=record,
                           PredictEndpoint=server.settings.base_url)["Prediction"]
        assert again["predictedLabel"] == "1"
        assert ml.get_ml_model(MLModelId=ids["model"])["ScoreThreshold"] == 0.0
        assert "ScoreThresholdLastUpdatedAt" in ml.get_ml_model(MLModelId=ids["model"])
    empty = ml.predict(MLModelId=ids["model"], Record={}, PredictEndpoint=server.settings.base_url)
    assert "Prediction" in empty
    ml.delete_realtime_endpoint(MLModelId=ids["model"])
    with pytest.raises(ClientError) as err:
        ml.predict(MLModelId=ids["model"], Record=record, PredictEndpoint=server.settings.base_url)
    assert error_code(err) == "PredictorNotMountedException"


@contextlib.contextmanager
def _explaining(ml: Any, value: str) -> Iterator[None]:
    """Predict calls of `ml` carry X-OpenAML-Explain: `value` (signed, as a user's hook adds it)."""
    def add(request: Any, **_: Any) -> None:
        request.headers["X-OpenAML-Explain"] = value

    ml.meta.events.register("before-sign.machine-learning.Predict", add)
    try:
        yield
    finally:
        ml.meta.events.unregister("before-sign.machine-learning.Predict", add)


def _check_explanation(ml: Any, model_id: str, record: dict[str, str], plain: dict[str, Any], kind: str,
                       algorithm: str, url: str) -> None:
    """Asked for, Predict's details carry the record's contributions, which add up to the score
    before the link (REGRESSION: to the predicted value, in the target's units; they were
    standardized); the prediction itself is the one given without the header."""
    with _explaining(ml, "3"):
        prediction = ml.predict(MLModelId=model_id, Record=record, PredictEndpoint=url)["Prediction"]
    explained = json.loads(prediction["details"].pop("OpenAML.Explanation"))
    assert prediction == plain
    assert explained["algorithm"] == algorithm and len(explained["contributions"]) <= 3
    assert explained["output"] == {"BINARY": "score (class 1)", "REGRESSION": "predicted value"}.get(
        kind, plain.get("predictedLabel"))
    total = explained["baseline"] + sum(c["value"] for c in explained["contributions"]) + explained["rest"]
    assert total == pytest.approx(explained["score"], abs=1e-5)
    if kind == "REGRESSION":
        assert explained["score"] == pytest.approx(plain["predictedValue"], rel=1e-6)
    if kind == "BINARY":  # the score is the log-odds of class 1
        assert 1 / (1 + math.exp(-explained["score"])) == pytest.approx(next(iter(plain["predictedScores"].values())),
                                                                        abs=1e-5)
    for wrong in ("0", "101", "many", "", "\u00b2", "9" * 5000):  # a superscript, past int()'s digits
        with _explaining(ml, wrong), pytest.raises(ClientError) as err:
            ml.predict(MLModelId=model_id, Record=record, PredictEndpoint=url)
        assert error_code(err) == "InvalidInputException" and "X-OpenAML-Explain" in str(err.value)


def _wait_endpoint(ml: Any, model_id: str) -> dict[str, Any]:
    for _ in range(200):
        model = ml.get_ml_model(MLModelId=model_id)
        if model["EndpointInfo"]["EndpointStatus"] != "UPDATING":
            assert model["EndpointInfo"]["EndpointStatus"] == "READY"
            return model
        time.sleep(0.05)
    raise AssertionError("endpoint never became READY")


def test_create_model_validation(ml: Any, uid: Callable[[str], str],
                                 put_object: Callable[[str, bytes], str]) -> None:
    header, rows = make_rows("BINARY", 50, seed=1)
    uri = put_object(f"s3://workflow/{uid('v')}.csv", to_csv(header, rows))
    no_stats, stats = uid("ds"), uid("ds")
    ml.create_data_source_from_s3(DataSourceId=no_stats, DataSpec={"DataLocationS3": uri,
                                                                 "DataSchema": schema("BINARY")})
    ml.create_data_source_from_s3(DataSourceId=stats, ComputeStatistics=True, DataSpec={
        "DataLocationS3": uri, "DataSchema": schema("BINARY")})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"TrainingDataSourceId": no_stats}, "ComputeStatistics"),
        ({"TrainingDataSourceId": "missing-ds"}, "missing-ds"),
        ({"MLModelType": "REGRESSION"}, "target"),
        ({"Parameters": {"sgd.maxPasses": "0"}}, "sgd.maxPasses"),
        ({"Parameters": {"sgd.l1RegularizationAmount": "1e-4",
                         "sgd.l2RegularizationAmount": "1e-4"}}, "L1"),
        ({"Parameters": {"sgd.shuffleType": "AUTO"}}, "shuffleType"),
        ({"Parameters": {"sgd.unknown": "1"}}, "sgd.unknown"),
        ({"Recipe": '{"outputs": ["nope"]}'}, "nope"),
        ({"Recipe": "not json"}, "recipe"),
        ({"RecipeUri": "s3://workflow/no-recipe.json"}, "no-recipe.json"),
        ({"MLModelType": "CLUSTERING"}, "MLModelType"),
    ]
    for overrides, fragment in cases:
        params = {"MLModelId": uid("m"), "MLModelType": "BINARY", "TrainingDataSourceId": stats,
                  **overrides}
        with pytest.raises(ClientError) as err:
            ml.create_ml_model(**params)
        assert error_code(err) == "InvalidInputException", overrides
        assert fragment.lower() in err.value.response["Error"]["Message"].lower(), (
            overrides, err.value.response["Error"]["Message"])


def test_threshold_rules(ml: Any, uid: Callable[[str], str],
                         put_object: Callable[[str, bytes], str]) -> None:
    header, rows = make_rows("REGRESSION", 80, seed=2)
    uri = put_object(f"s3://workflow/{uid('t')}.csv", to_csv(header, rows))
    ds, model = uid("ds"), uid("m")
    ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True, DataSpec={
        "DataLocationS3": uri, "DataSchema": schema("REGRESSION")})
    ml.create_ml_model(MLModelId=model, MLModelType="REGRESSION", TrainingDataSourceId=ds)
    wait_for(lambda: ml.get_ml_model(MLModelId=model))
    with pytest.raises(ClientError) as err:
        ml.update_ml_model(MLModelId=model, ScoreThreshold=0.3)
    assert error_code(err) == "InvalidInputException"
    with pytest.raises(ClientError) as err:
        ml.create_batch_prediction(BatchPredictionId=uid("bp"), MLModelId=model,
                                   BatchPredictionDataSourceId=ds, OutputUri="s3://workflow/a/../b")
    assert error_code(err) == "InvalidInputException"
    with pytest.raises(ClientError) as err:
        ml.create_evaluation(EvaluationId=uid("ev"), MLModelId=model, EvaluationDataSourceId="nope")
    assert error_code(err) == "InvalidInputException"
    ml.delete_ml_model(MLModelId=model)
    with pytest.raises(ClientError) as err:
        ml.create_realtime_endpoint(MLModelId=model)
    assert error_code(err) == "InvalidInputException"


def test_predict_rate_limit(tmp_path: Any) -> None:
    from openaml.server.embedded import running_server
    from tests.api.conftest import make_client

    header, rows = make_rows("BINARY", 120, seed=3)
    with running_server(data_dir=tmp_path, predict_rate_limit=5) as app:
        app.context.objects.write_bytes("s3://limits/data.csv", to_csv(header, rows))
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId="ds", ComputeStatistics=True, DataSpec={
            "DataLocationS3": "s3://limits/data.csv", "DataSchema": schema("BINARY")})
        ml.create_ml_model(MLModelId="m", MLModelType="BINARY", TrainingDataSourceId="ds")
        assert wait_for(lambda: ml.get_ml_model(MLModelId="m"))["Status"] == "COMPLETED"
        ml.create_realtime_endpoint(MLModelId="m")
        endpoint = _wait_endpoint(ml, "m")["EndpointInfo"]
        assert endpoint["PeakRequestsPerSecond"] == 5
        codes = []
        for _ in range(12):
            try:
                ml.predict(MLModelId="m", Record={"x1": "0.5"}, PredictEndpoint=endpoint["EndpointUrl"])
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 417
        assert codes[:5] == ["ok"] * 5
        assert "LimitExceededException" in codes
    # without a limit, an endpoint reports the default one (evaluation-and-prediction.md §4.3)
    with running_server(data_dir=tmp_path, predict_rate_limit=0) as app:
        ml = make_client(app.settings.base_url)
        for found in (ml.get_ml_model(MLModelId="m")["EndpointInfo"],
                      ml.describe_ml_models()["Results"][0]["EndpointInfo"]):
            assert (found["EndpointStatus"], found["PeakRequestsPerSecond"]) == ("READY", 200), found


def test_idempotent_creates_of_every_kind(ml: Any, uid: Callable[[str], str],
                                          put_object: Callable[[str, bytes], str]) -> None:
    header, rows = make_rows("BINARY", 60, seed=4)
    uri = put_object(f"s3://workflow/{uid('idem')}.csv", to_csv(header, rows))
    ds, model, ev, bp = uid("ds"), uid("m"), uid("ev"), uid("bp")
    ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True, DataSpec={
        "DataLocationS3": uri, "DataSchema": schema("BINARY")})
    calls: list[tuple[Callable[..., Any], str, dict[str, Any], dict[str, Any]]] = [
        (ml.create_ml_model, "MLModelId",
         {"MLModelId": model, "MLModelType": "BINARY", "TrainingDataSourceId": ds}, {"MLModelName": "other"}),
        (ml.create_evaluation, "EvaluationId",
         {"EvaluationId": ev, "MLModelId": model, "EvaluationDataSourceId": ds}, {"EvaluationName": "other"}),
        (ml.create_batch_prediction, "BatchPredictionId",
         {"BatchPredictionId": bp, "MLModelId": model, "BatchPredictionDataSourceId": ds,
          "OutputUri": "s3://workflow/o"}, {"OutputUri": "s3://workflow/elsewhere"}),
    ]
    for create, key, params, change in calls:
        assert create(**params)[key] == create(**params)[key] == params[key]
        with pytest.raises(ClientError) as err:
            create(**{**params, **change})
        assert error_code(err) == "IdempotentParameterMismatchException"
    done = wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=bp))
    assert done["Status"] == "COMPLETED", done.get("Message")


def test_deleted_batch_prediction_stops_without_manifest(server: Application, ml: Any, uid: Callable[[str], str],
                                                         put_object: Callable[[str, bytes], str]) -> None:
    from openaml.jobs.engine import Job
    from openaml.ml.errors import InputError

    header, rows = make_rows("BINARY", 80, seed=5)
    uri = put_object(f"s3://workflow/{uid('stop')}.csv", to_csv(header, rows))
    ds, model, bp = uid("ds"), uid("m"), uid("bp")
    ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True, DataSpec={
        "DataLocationS3": uri, "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model, MLModelType="BINARY", TrainingDataSourceId=ds)
    assert wait_for(lambda: ml.get_ml_model(MLModelId=model))["Status"] == "COMPLETED"
    output = f"s3://workflow/{uid('out')}"
    server.context.engine.pause()
    try:
        ml.create_batch_prediction(BatchPredictionId=bp, MLModelId=model, BatchPredictionDataSourceId=ds,
                                   OutputUri=output)
        ml.delete_batch_prediction(BatchPredictionId=bp)
        record = server.context.store.get(EntityKind.BATCH_PREDICTION, bp)
        assert record is not None
        task = server.context.engine.tasks[EntityKind.BATCH_PREDICTION]
        with pytest.raises(InputError, match="deleted"):
            task(Job(record, server.context.store, lambda line: None))
    finally:
        server.context.engine.resume()
    assert server.context.objects.list(output + "/") == []
    assert ml.get_batch_prediction(BatchPredictionId=bp)["Status"] == "DELETED"


def test_predict_refuses_a_record_whose_cartesian_is_too_large(server: Application, ml: Any,
                                                                 uid: Callable[[str], str]) -> None:
    """A record whose text crossed with itself would make more token pairs than one Predict may
    build gets InvalidInputException at once, and the endpoint keeps answering."""
    header, rows = make_rows("BINARY", 120, seed=4)
    uri = f"s3://pairs/{uid('d')}.csv"
    server.context.objects.write_bytes(uri, to_csv(header, rows))
    ids = {k: uid(k) for k in ("ds", "model")}
    ml.create_data_source_from_s3(DataSourceId=ids["ds"], ComputeStatistics=True, DataSpec={
        "DataLocationS3": uri, "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=ids["model"], MLModelType="BINARY", TrainingDataSourceId=ids["ds"],
                       Recipe='{"outputs": ["x1", "cartesian(words, words)"]}')
    assert wait_for(lambda: ml.get_ml_model(MLModelId=ids["model"]))["Status"] == "COMPLETED"
    ml.create_realtime_endpoint(MLModelId=ids["model"])
    url = _wait_endpoint(ml, ids["model"])["EndpointInfo"]["EndpointUrl"]
    with pytest.raises(ClientError) as refused:
        ml.predict(MLModelId=ids["model"], Record={"x1": "1", "words": "good " * 1_001}, PredictEndpoint=url)
    assert refused.value.response["Error"]["Code"] == "InvalidInputException"
    assert "1,002,001 token pairs for one record" in refused.value.response["Error"]["Message"]
    # below the limit of one record, Predict scores what a batch scores (it refused 160,000)
    assert ml.predict(MLModelId=ids["model"], Record={"x1": "1", "words": "good " * 400},
                      PredictEndpoint=url)["Prediction"]["predictedLabel"] in ("0", "1")
    assert ml.predict(MLModelId=ids["model"], Record={"x1": "1", "words": "good great"},
                      PredictEndpoint=url)["Prediction"]["predictedLabel"] in ("0", "1")
    # 100 KB of a record are bytes, as a CSV line's: 40,000 characters of 3 bytes each are refused
    # (a count of characters let them through, where a batch prediction refused the record)
    for value, fits in (("日" * 40_000, False), ("日" * 34_000, True), ("a" * 102_000, True)):
        record = {"x1": "1", "other": value}
        if fits:
            assert ml.predict(MLModelId=ids["model"], Record=record,
                              PredictEndpoint=url)["Prediction"]["predictedLabel"] in ("0", "1")
            continue
        with pytest.raises(ClientError) as too_large:
            ml.predict(MLModelId=ids["model"], Record=record, PredictEndpoint=url)
        assert too_large.value.response["Error"]["Message"] == "Record is larger than 100 KB"


def test_values_far_beyond_the_training_data_and_padded_values_get_answers(server: Application, ml: Any,
                                                                           uid: Callable[[str], str]) -> None:
    """Predict answers a record whose number lies near the double's range with a finite
    predictedValue (it gave none: the 32-bit rounding overflowed, or the score was infinite),
    reads a category padded with white space as a CSV field's (it scored as missing), and an
    evaluation whose squared errors overflow reports their RMSE, not "0.0E0"."""
    header, rows = make_rows("REGRESSION", 200, seed=8)
    uri = f"s3://far/{uid('d')}.csv"
    server.context.objects.write_bytes(uri, to_csv(header, rows))
    far = [["far", "1e200", "red", "good", "10"], *rows[:5]]
    far_uri = f"s3://far/{uid('e')}.csv"
    server.context.objects.write_bytes(far_uri, to_csv(header, far))
    ids = {k: uid(k) for k in ("ds", "far", "model", "ev")}
    for key, location in (("ds", uri), ("far", far_uri)):
        ml.create_data_source_from_s3(DataSourceId=ids[key], ComputeStatistics=True, DataSpec={
            "DataLocationS3": location, "DataSchema": schema("REGRESSION")})
    ml.create_ml_model(MLModelId=ids["model"], MLModelType="REGRESSION", TrainingDataSourceId=ids["ds"],
                       Recipe='{"outputs": ["x1", "c"]}')
    ml.create_evaluation(EvaluationId=ids["ev"], MLModelId=ids["model"], EvaluationDataSourceId=ids["far"])
    assert wait_for(lambda: ml.get_ml_model(MLModelId=ids["model"]))["Status"] == "COMPLETED"
    ml.create_realtime_endpoint(MLModelId=ids["model"])
    url = _wait_endpoint(ml, ids["model"])["EndpointInfo"]["EndpointUrl"]

    def predicted(record: dict[str, str]) -> float:
        return ml.predict(MLModelId=ids["model"], Record=record, PredictEndpoint=url)["Prediction"]["predictedValue"]

    for value in ("1e200", "1e308", "-1e308"):  # past a 32-bit float: its largest, of the score's sign
        answer = predicted({"x1": value, "c": "red"})
        assert abs(answer) == float(np.finfo(np.float32).max), value
    assert predicted({"x1": "0.5", "c": " red\t"}) == predicted({"x1": "0.5", "c": "red"}) != predicted({"x1": "0.5"})
    evaluation = wait_for(lambda: ml.get_evaluation(EvaluationId=ids["ev"]))
    rmse = float(evaluation["PerformanceMetrics"]["Properties"]["RegressionRMSE"])
    assert evaluation["Status"] == "COMPLETED" and math.isfinite(rmse) and rmse > 1e190


def test_a_binary_report_counts_its_confusion_at_the_models_threshold(
        server: Application, ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    """The evaluation report's confusion counts are at the model's ScoreThreshold when it was
    evaluated, as its batch prediction labels (they were at 0.5 whatever the threshold; found
    by an outside test)."""
    header, rows = make_rows("BINARY", 300, seed=12)
    uri = put_object(f"s3://workflow/{uid('t')}.csv", to_csv(header, rows))
    ds, model, ev, bp = uid("ds"), uid("m"), uid("ev"), uid("bp")
    ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": uri, "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model, MLModelType="BINARY", TrainingDataSourceId=ds)
    assert wait_for(lambda: ml.get_ml_model(MLModelId=model))["Status"] == "COMPLETED"
    ml.update_ml_model(MLModelId=model, ScoreThreshold=0.99)
    output = f"s3://workflow/{uid('out')}"
    ml.create_evaluation(EvaluationId=ev, MLModelId=model, EvaluationDataSourceId=ds)
    ml.create_batch_prediction(BatchPredictionId=bp, MLModelId=model, BatchPredictionDataSourceId=ds, OutputUri=output)
    assert wait_for(lambda: ml.get_evaluation(EvaluationId=ev))["Status"] == "COMPLETED"
    assert wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=bp))["Status"] == "COMPLETED"
    report = httpx.get(f"{server.settings.base_url}/reports/Evaluation/{ev}", timeout=10).json()
    manifest = json.loads(server.context.objects.read_bytes(f"{output}/batch-prediction/{bp}.manifest"))
    labelled = list(csv.DictReader(io.StringIO(gzip.decompress(server.context.objects.read_bytes(
        manifest[uri])).decode())))
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for line in labelled:
        right = "t" if line["bestAnswer"] == line["trueLabel"] else "f"
        counts[right + ("p" if line["bestAnswer"] == "1" else "n")] += 1
    assert report["threshold"] == 0.99 and report["confusion"] == counts
    assert [counts["tp"], counts["fp"]] != report["stepped"][50]  # not the counts at 0.5


def test_an_input_file_without_records_gets_a_result_file_of_the_header_alone(
        server: Application, ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    """Every input file of a batch prediction's datasource gets its result file, in the
    manifest, one without records (a header line alone) too: a gzip file of the header."""
    header, rows = make_rows("BINARY", 80, seed=6)
    folder = f"s3://workflow/{uid('two')}"
    full, empty = put_object(f"{folder}/a.csv", to_csv(header, rows)), put_object(f"{folder}/b.csv", to_csv(header, []))
    ds, model, bp = uid("ds"), uid("m"), uid("bp")
    ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True, DataSpec={
        "DataLocationS3": folder + "/", "DataSchema": schema("BINARY")})
    ml.create_ml_model(MLModelId=model, MLModelType="BINARY", TrainingDataSourceId=ds)
    output = f"s3://workflow/{uid('out')}"
    ml.create_batch_prediction(BatchPredictionId=bp, MLModelId=model, BatchPredictionDataSourceId=ds,
                               OutputUri=output)
    assert wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=bp))["Status"] == "COMPLETED"
    manifest = json.loads(server.context.objects.read_bytes(f"{output}/batch-prediction/{bp}.manifest"))
    assert list(manifest) == [full, empty]
    lines = [gzip.decompress(server.context.objects.read_bytes(manifest[uri])).decode() for uri in (full, empty)]
    assert lines[0].startswith("tag,trueLabel,bestAnswer,score\n") and lines[0].count("\n") == 81
    assert lines[1] == "tag,trueLabel,bestAnswer,score\n"


def test_scoring_a_datasource_without_the_models_attributes_fails_saying_so(
        server: Application, ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]) -> None:
    """A batch prediction (or an evaluation) of a datasource that has none of the attributes
    the model reads COMPLETED with the model's bias as every record's score (found by an
    outside test of the console, whose form picked such a datasource); it fails naming them.
    One attribute in common is enough to score."""
    header, rows = make_rows("BINARY", 120, seed=3)
    trained = put_object(f"s3://workflow/{uid('t')}.csv", to_csv(header, rows))
    other_schema = json.dumps({"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV",
                               "dataFileContainsHeader": True, "attributes": [
                                   {"attributeName": n, "attributeType": t}
                                   for n, t in (("colour", "CATEGORICAL"), ("x1", "NUMERIC"), ("y", "BINARY"))]})
    other = put_object(f"s3://workflow/{uid('o')}.csv", b"colour,size,y\nred,1,0\nblue,2,1\n")
    ds, model, unrelated, partly = uid("ds"), uid("m"), uid("un"), uid("pa")
    ml.create_data_source_from_s3(DataSourceId=ds, DataSpec={"DataLocationS3": trained, "DataSchema": schema("BINARY")},
                                  ComputeStatistics=True)
    ml.create_ml_model(MLModelId=model, MLModelType="BINARY", TrainingDataSourceId=ds)
    ml.create_data_source_from_s3(DataSourceId=unrelated, DataSpec={
        "DataLocationS3": other, "DataSchema": other_schema.replace('"x1"', '"size"')})
    ml.create_data_source_from_s3(DataSourceId=partly, DataSpec={"DataLocationS3": other, "DataSchema": other_schema})
    output = f"s3://workflow/{uid('out')}"
    for source, ending in ((unrelated, "FAILED"), (partly, "COMPLETED")):
        ml.create_batch_prediction(BatchPredictionId=f"bp-{source}", MLModelId=model, OutputUri=output,
                                   BatchPredictionDataSourceId=source)
        ml.create_evaluation(EvaluationId=f"ev-{source}", MLModelId=model, EvaluationDataSourceId=source)
        done = [wait_for(partial(ml.get_batch_prediction, BatchPredictionId=f"bp-{source}")),
                wait_for(partial(ml.get_evaluation, EvaluationId=f"ev-{source}"))]
        assert [d["Status"] for d in done] == [ending, ending], [d.get("Message") for d in done]
        if ending == "FAILED":
            assert all(d["Message"].startswith(f"DataSource {unrelated} has none of the attributes the model "
                                               "reads (c, words, x1)") for d in done)
