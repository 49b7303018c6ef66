"""Console input meets the API's validation (the botocore model), and every parser is bounded."""

from __future__ import annotations

import gzip
import html
import warnings
from typing import Any

import orjson
import pytest

from openaml.console.routes import pretty_json
from openaml.errors import ServiceError
from openaml.protocol.parse import parse_request
from openaml.protocol.spec import ServiceSpec

from .conftest import FakeService
from .test_pages import form_token, trained_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

MODEL = trained_model()


@pytest.fixture
def world(fake: FakeService) -> FakeService:
    fake.add("DataSource", "ds-1", Name="data")
    fake.add("MLModel", "ml-1", MLModelType="MULTICLASS", FinishedAt="x", ScoreThreshold=0.5)
    with fake.ctx.artifacts.open_write("MLModel", "ml-1", "model.bin") as out:
        MODEL.save(out)
    return fake



def api_message(operation: str, params: dict[str, Any]) -> str:
    """What the API answers for the same request."""
    with pytest.raises(ServiceError) as caught:
        parse_request(ServiceSpec.load().operation(operation), orjson.dumps(params))
    return f"{caught.value.error_type}: {caught.value}"


def writes(fake: FakeService) -> list[str]:
    return [name for name, _ in fake.calls if not name.startswith("describe")]


@pytest.mark.parametrize("name", ["n" * 5000, "   ", "\t\n"])
def test_a_rename_the_api_refuses_is_refused_with_the_api_message(
        world: FakeService, client: TestClient, name: str) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    refused = client.post("/console/datasources/ds-1/rename", data={"name": name, "csrf_token": token})
    expected = api_message("UpdateDataSource", {"DataSourceId": "ds-1", "DataSourceName": name})
    page = html.unescape(refused.text)
    assert refused.status_code == 400 and expected in page
    assert 'role="alert"' in refused.text and "Manage" in page  # the entity page, with the message
    assert writes(world) == [] and world.entities["DataSource"]["ds-1"]["Name"] == "data"


def test_an_empty_name_is_valid_as_in_the_api(world: FakeService, client: TestClient) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    moved = client.post("/console/datasources/ds-1/rename", data={"name": "", "csrf_token": token},
                        follow_redirects=False)
    assert moved.status_code == 303 and world.entities["DataSource"]["ds-1"]["Name"] == ""


@pytest.mark.parametrize(("action", "operation", "params"), [
    ("/console/models/" + "m" * 65 + "/delete", "DeleteMLModel", {"MLModelId": "m" * 65}),
    ("/console/models/bad%20id/delete", "DeleteMLModel", {"MLModelId": "bad id"}),
    ("/console/datasources/" + "d" * 65 + "/rename", "UpdateDataSource",
     {"DataSourceId": "d" * 65, "DataSourceName": "x"}),
])
def test_entity_ids_in_console_actions_are_validated(
        world: FakeService, client: TestClient, action: str, operation: str, params: dict[str, Any]) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    refused = client.post(action, data={"name": "x", "csrf_token": token})
    assert refused.status_code == 400 and api_message(operation, params) in html.unescape(refused.text)
    assert writes(world) == []


@pytest.mark.parametrize("threshold", ["abc", "nan", "inf", "1e400", ""])
def test_a_score_threshold_that_is_not_a_number_is_refused(
        world: FakeService, client: TestClient, threshold: str) -> None:
    token = form_token(client, "/console/models/ml-1")
    refused = client.post("/console/models/ml-1/threshold", data={"threshold": threshold, "csrf_token": token})
    assert refused.status_code == 400 and "The score threshold must be a number" in refused.text
    assert writes(world) == [] and world.entities["MLModel"]["ml-1"]["ScoreThreshold"] == 0.5


@pytest.mark.parametrize(("query", "operation", "params"), [
    ({"var": "Name", "cmp": "Prefix", "value": "v" * 2000}, "DescribeDataSources",
     {"SortOrder": "dsc", "Limit": 50, "FilterVariable": "Name", "Prefix": "v" * 2000}),
    ({"var": "Name", "cmp": "EQ", "value": "  "}, "DescribeDataSources",
     {"SortOrder": "dsc", "Limit": 50, "FilterVariable": "Name", "EQ": "  "}),
    ({"var": "Bogus"}, "DescribeDataSources", {"SortOrder": "dsc", "Limit": 50, "FilterVariable": "Bogus"}),
])
def test_list_filters_are_validated(world: FakeService, client: TestClient, query: dict[str, str],
                                    operation: str, params: dict[str, Any]) -> None:
    page = client.get("/console/datasources", params=query)
    assert page.status_code == 400 and api_message(operation, params) in html.unescape(page.text)


@pytest.mark.parametrize("query", [{"var": "Name", "cmp": "BOGUS", "value": "x"}, {"order": "sideways"},
                                   {"var": "Name", "cmp": "FilterVariable", "value": "Status"}])
def test_a_made_up_order_or_comparator_is_refused(world: FakeService, client: TestClient,
                                                  query: dict[str, str]) -> None:
    """They were ignored: every row, in the default order, with no word of it."""
    page = client.get("/console/datasources", params=query)
    assert page.status_code == 400 and "The list&#39;s order must be asc or dsc" in page.text


def test_entity_ids_of_pages_are_validated(client: TestClient) -> None:
    page = client.get("/console/models/" + "m" * 65)
    assert page.status_code == 400 and api_message("GetMLModel", {"MLModelId": "m" * 65, "Verbose": True}) \
        .split(": ", 1)[1] in html.unescape(page.text)


@pytest.mark.parametrize(("pasted", "message"), [
    ('{"size": ' + "[" * 600 + "]" * 600 + "}", "The value of 'size' is a JSON array"),
    ('{"size": ' + "[" * 5000 + "]" * 5000 + "}", "The pasted JSON is not valid: depth limit exceeded"),
    ('{"size": ' + '{"a": ' * 5000 + "1" + "}" * 5001, "The pasted JSON is not valid: depth limit exceeded"),
    ('{"size": {"a": 1}}', "The value of 'size' is a JSON object"),
    ('{"size": 1e400}', "The pasted JSON is not valid"),
    ('{"size": 8', "The pasted JSON is not valid"),
    ("x" * 200_000 + ",square", "The pasted record is not valid CSV: field larger than field limit"),
    ("[" * 5000, "The pasted record has 1 values; the model expects 2"),
    ("8,square\n5,tri", "The pasted text holds 2 CSV records; paste one"),  # the second was dropped
])
def test_a_pasted_record_is_parsed_within_bounds(client: TestClient, pasted: str, message: str) -> None:
    token = form_token(client, "/console/models/ml-1/predict")
    page = client.post("/console/models/ml-1/predict", data={"pasted": pasted, "csrf_token": token})
    assert page.status_code == 400 and message in html.unescape(page.text)
    assert 'id="pasted"' in page.text  # the form again, to correct the record


def test_a_pasted_json_record_of_scalars_is_scored(client: TestClient) -> None:
    token = form_token(client, "/console/models/ml-1/predict")
    page = client.post("/console/models/ml-1/predict",
                       data={"pasted": '{"size": 8, "shape": "square", "note": null}', "csrf_token": token})
    assert page.status_code == 200 and 'id="predicted-label">blue<' in page.text


def test_stored_json_too_deep_to_pretty_print_is_shown_as_it_is(world: FakeService, client: TestClient) -> None:
    deep = "[" * 5000 + "]" * 5000
    assert pretty_json(deep) == deep
    assert pretty_json('{"a": [1, "é"]}') == '{\n  "a": [\n    1,\n    "é"\n  ]\n}'
    world.entities["MLModel"]["ml-1"].update(Recipe=deep, Schema=deep)
    page = client.get("/console/models/ml-1")
    assert page.status_code == 200 and deep in page.text
    world.add("DataSource", "ds-deep", DataSourceSchema='{"attributes": ' + deep + "}")
    assert client.get("/console/datasources/ds-deep").status_code == 200


def test_a_result_value_over_the_csv_field_limit_leaves_the_batch_page_readable(
        world: FakeService, client: TestClient) -> None:
    result = "s3://out/big/batch-prediction/result/bp-big-in.csv.gz"
    world.ctx.objects.write_bytes(result, gzip.compress(b"trueLabel,score\n" + b"x" * 200_000 + b",1\n"))
    world.ctx.objects.write_bytes("s3://out/big/batch-prediction/bp-big.manifest",
                                  orjson.dumps({"s3://in/in.csv": result}))
    world.add("BatchPrediction", "bp-big", OutputUri="s3://out/big")
    page = client.get("/console/batchpredictions/bp-big")
    assert page.status_code == 200 and "bp-big-in.csv.gz" in page.text


def test_a_pasted_record_keeps_a_quoted_line_break() -> None:
    """A quoted value may hold a line break, as in the CSV files: the record was cut at the
    first line (its text scored as "beta" alone, without a word)."""
    from openaml.console import forms

    record = forms.record_from_form({"pasted": '5,"beta\nalpha alpha"\n'}, ["size", "text"])
    assert record == {"size": "5", "text": "beta\nalpha alpha"}
