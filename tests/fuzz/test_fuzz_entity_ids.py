"""Ids the model allows but a file system treats specially ('.', '..', '.tmp-x', 'a..b'): each
Create* with them works end to end (the job completes, every operation on the entity answers,
its log is its own) or is refused cleanly, and the job engine keeps running jobs after."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz.conftest import SCHEMA, fuzzed_server, training_csv, wait_until_settled
from tests.fuzz.target import ServerLog, Tally, Target

ODD_IDS = (".", "..", "...", ".tmp-x", ".tmp", "a..b", "-", "_")
DATA = "s3://ids/data.csv"
GET = {"DataSource": "GetDataSource", "MLModel": "GetMLModel", "Evaluation": "GetEvaluation",
       "BatchPrediction": "GetBatchPrediction"}


@pytest.fixture(scope="module")
def id_server(tmp_path_factory: pytest.TempPathFactory, server_log: ServerLog, tally: Tally) -> Iterator[Target]:
    with fuzzed_server(server_log, tally, data_dir=tmp_path_factory.mktemp("fuzz-ids")) as target:
        target.app.context.objects.write_bytes(DATA, training_csv())
        yield target


def _create_all(target: Target, kind: str, requests: dict[str, dict[str, Any]]) -> list[str]:
    """Create one entity per id; each is accepted or refused with InvalidInputException. Waits
    for the accepted ones and returns their ids; each must complete."""
    operation = "CreateDataSourceFromS3" if kind == "DataSource" else f"Create{kind}"
    accepted = []
    for entity_id, params in requests.items():
        answer = target.call(operation, params)
        if answer.status == 200:
            accepted.append(entity_id)
        else:
            assert answer.json()["__type"] == "InvalidInputException", answer.describe()  # type: ignore[index]
    for entity_id in accepted:
        settled = wait_until_settled(target, GET[kind], {f"{kind}Id": entity_id})
        assert settled["Status"] == "COMPLETED", (kind, entity_id, settled.get("Message"))
    return accepted


def test_odd_ids_work_end_to_end_or_are_refused(id_server: Target) -> None:
    sources = _create_all(id_server, "DataSource", {
        i: {"DataSourceId": i, "ComputeStatistics": True, "DataSpec": {"DataLocationS3": DATA, "DataSchema": SCHEMA}}
        for i in ODD_IDS})
    models = _create_all(id_server, "MLModel", {
        i: {"MLModelId": i, "MLModelType": "BINARY", "TrainingDataSourceId": i} for i in sources})
    evaluations = _create_all(id_server, "Evaluation", {
        i: {"EvaluationId": i, "MLModelId": i, "EvaluationDataSourceId": i} for i in models})
    predictions = _create_all(id_server, "BatchPrediction", {
        i: {"BatchPredictionId": i, "MLModelId": i, "BatchPredictionDataSourceId": i,
            "OutputUri": f"s3://ids/out/{i}/"} for i in models})
    created = {"DataSource": sources, "MLModel": models, "Evaluation": evaluations,
               "BatchPrediction": predictions}
    for kind, ids in created.items():
        for entity_id in ids:
            _use(id_server, kind, entity_id, ids)
    for model_id in models:
        _predict(id_server, model_id)
    plain = _create_all(id_server, "DataSource", {"plain-after": {
        "DataSourceId": "plain-after", "DataSpec": {"DataLocationS3": DATA, "DataSchema": SCHEMA}}})
    assert plain == ["plain-after"], "the job engine no longer runs jobs after the odd ids"
    for kind, ids in reversed(created.items()):
        for entity_id in ids:
            assert id_server.call(f"Delete{kind}", {f"{kind}Id": entity_id}).status == 200


def _use(target: Target, kind: str, entity_id: str, same_kind: list[str]) -> None:
    """Every per-entity operation answers 200, and the entity's log names only itself."""
    member = f"{kind}Id"
    verbose = {"Verbose": True} if kind in ("DataSource", "MLModel") else {}
    got = target.call(GET[kind], {member: entity_id, **verbose})
    assert got.status == 200 and got.json()[member] == entity_id, got.describe()  # type: ignore[index]
    assert target.call(f"Update{kind}", {member: entity_id, f"{kind}Name": f"named {entity_id}"}).status == 200
    tags = {"ResourceId": entity_id, "ResourceType": kind}
    assert target.call("AddTags", {**tags, "Tags": [{"Key": "k", "Value": entity_id}]}).status == 200
    described = target.call("DescribeTags", tags)
    assert described.json()["Tags"] == [{"Key": "k", "Value": entity_id}], described.describe()  # type: ignore[index]
    assert target.call("DeleteTags", {**tags, "TagKeys": ["k"]}).status == 200
    listed = target.call(f"Describe{kind}s", {"FilterVariable": "Name", "EQ": f"named {entity_id}"})
    assert [r[member] for r in listed.json()["Results"]] == [entity_id], listed.describe()  # type: ignore[index]
    job_log = target.get(f"/logs/{kind}/{entity_id}")
    assert job_log.status == 200, (kind, entity_id, job_log.describe())
    text = job_log.body.decode()
    assert f"{kind} {entity_id}: COMPLETED" in text, (kind, entity_id, text)
    others = [o for o in same_kind if o != entity_id and f"{kind} {o}: " in text]
    assert not others, f"the log of {kind} {entity_id!r} holds lines of {others}: {text}"


def _predict(target: Target, model_id: str) -> None:
    assert target.call("CreateRealtimeEndpoint", {"MLModelId": model_id}).status == 200
    for _ in range(200):
        answer = target.call("Predict", {"MLModelId": model_id, "Record": {"x1": "1.5", "c": "red"},
                                         "PredictEndpoint": target.app.settings.base_url})
        if answer.status == 200:
            assert "Prediction" in answer.json(), answer.describe()  # type: ignore[operator]
            break
        assert answer.json()["__type"] == "PredictorNotMountedException", answer.describe()  # type: ignore[index]
        time.sleep(0.05)
    else:
        raise AssertionError(f"the endpoint of {model_id!r} never served")
    assert target.call("DeleteRealtimeEndpoint", {"MLModelId": model_id}).status == 200
