"""Hostile requests sent in every profile, whatever Hypothesis draws: the kinds that broke the
server once (time filters like 1e400, forged NextTokens, 600-deep nesting in a member whose
constraint fails, odd ids), each against the same property as the fuzzer."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.fuzz.shapes import WEIRD_IDS, Raw, World, deep, dumps
from tests.fuzz.target import Target
from tests.fuzz.wire import ODD_HOSTS, TARGET_PREFIX, Request

TIME_VALUES = ("1e400", "-1e400", "1e19", "-1e19", str(10**30), "9" * 400, "nan", "inf", "1e-400",
               "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59")
TOKEN_PARTS: tuple[Any, ...] = ([1, 2], {"a": 1}, 10**30, -(10**30), 1e308, None, True, "x" * 100_000,
                                Raw("1e400"), deep("list", 600))
DEEP_600 = deep("mixed", 600)


def _post(target: Target, operation: str, body: Any) -> Any:
    return target.post(Request(f"{TARGET_PREFIX}.{operation}", dumps(body)))


@pytest.mark.parametrize("value", TIME_VALUES)
@pytest.mark.parametrize("variable", ["CreatedAt", "LastUpdatedAt"])
@pytest.mark.parametrize("comparator", ["GT", "EQ"])
def test_time_filter_values(server: Target, world: World, comparator: str, variable: str, value: str) -> None:
    _post(server, "DescribeDataSources", {"FilterVariable": variable, comparator: value})


@pytest.fixture(scope="module")
def paged(server: Target) -> Target:
    """The server with two datasources of its own (the fuzzer may delete the world's)."""
    for entity_id in ("seed-ds-a", "seed-ds-b"):
        _post(server, "CreateDataSourceFromS3", {"DataSourceId": entity_id, "DataSpec": {
            "DataLocationS3": "s3://fuzz/data.csv", "DataSchemaLocationS3": "s3://fuzz/schema.json"}})
    return server


def _real_token(target: Target, params: dict[str, Any]) -> list[Any]:
    answer = _post(target, "DescribeDataSources", {**params, "Limit": 1})
    token = answer.json().get("NextToken")
    assert token, f"two datasources exist, so a page of one has a NextToken: {answer.describe()}"
    parts = json.loads(base64.urlsafe_b64decode(token))
    assert isinstance(parts, list)
    return parts


@pytest.mark.parametrize("part", TOKEN_PARTS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("variable", [None, "CreatedAt", "Name"])
def test_forged_token_parts(server: Target, world: World, paged: Target, variable: str | None, part: Any) -> None:
    """A real NextToken with one decoded part replaced, at each position but the query hash."""
    params = {"FilterVariable": variable} if variable else {}
    parts = _real_token(server, params)
    for position in range(len(parts) - 1):
        forged = [*parts[:position], part, *parts[position + 1:]]
        token = base64.urlsafe_b64encode(dumps(forged)).decode()
        _post(server, "DescribeDataSources", {**params, "Limit": 1, "NextToken": token})


DEEP_IN_A_FAILING_MEMBER = {
    "AddTags": {"ResourceId": "fuzz-ds-1", "ResourceType": "DataSource", "Tags": [DEEP_600] * 101},
    "DeleteTags": {"ResourceId": "fuzz-ds-1", "ResourceType": "DataSource", "TagKeys": [DEEP_600] * 101},
    "Predict": {"MLModelId": "fuzz-ml-1", "PredictEndpoint": "x", "Record": {"x1": DEEP_600}},
    "CreateMLModel": {"MLModelId": "m", "MLModelType": "BINARY", "TrainingDataSourceId": "fuzz-ds-1",
                      "Parameters": {"sgd.maxPasses": DEEP_600}},
    "GetMLModel": {"MLModelId": DEEP_600},
    "DescribeMLModels": {"Limit": 500, "EQ": [DEEP_600]},
}


@pytest.mark.parametrize("operation", DEEP_IN_A_FAILING_MEMBER)
def test_deep_nesting(server: Target, world: World, operation: str) -> None:
    _post(server, operation, DEEP_IN_A_FAILING_MEMBER[operation])


@pytest.mark.parametrize("entity_id", WEIRD_IDS)
def test_odd_ids_in_every_operation(server: Target, world: World, entity_id: str) -> None:
    """Each operation with an odd id in every id member answers cleanly (jobs end to end:
    test_fuzz_entity_ids)."""
    for operation, body in [
        ("GetDataSource", {"DataSourceId": entity_id, "Verbose": True}),
        ("GetMLModel", {"MLModelId": entity_id, "Verbose": True}),
        ("GetEvaluation", {"EvaluationId": entity_id}),
        ("GetBatchPrediction", {"BatchPredictionId": entity_id}),
        ("DescribeTags", {"ResourceId": entity_id, "ResourceType": "MLModel"}),
        ("Predict", {"MLModelId": entity_id, "Record": {}, "PredictEndpoint": world.base_url}),
        ("CreateEvaluation", {"EvaluationId": f"ev{entity_id}", "MLModelId": entity_id,
                              "EvaluationDataSourceId": entity_id}),
        ("DeleteRealtimeEndpoint", {"MLModelId": entity_id}),
    ]:
        _post(server, operation, body)
    server.assert_healthy()


@pytest.mark.parametrize("host", ODD_HOSTS, ids=lambda h: h[:20])
def test_odd_host_headers(server: Target, host: str) -> None:
    """A Host the server is not known by is refused with an AWS error (403), never a crash."""
    server.post(Request(f"{TARGET_PREFIX}.DescribeDataSources", b"{}", {"Host": host}))


@pytest.mark.parametrize("origin", ["null", "http://evil.example", "http://[::1", "http://[]", "http://[v1.x]",
                                    "http://127.0.0.1:1", "file://", "://", "http://" + "x" * 9000])
def test_odd_origin_headers(server: Target, origin: str) -> None:
    server.post(Request(f"{TARGET_PREFIX}.DescribeDataSources", b"{}", {"Origin": origin}))
