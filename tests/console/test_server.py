"""The console of a real server over HTTP: the same validation as the API, CSRF, headers, filters."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from openaml.server.embedded import running_server
from tests.api.conftest import make_client, wait_for
from tests.api.test_entities import CSV, SCHEMA


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    with running_server(data_dir=tmp_path_factory.mktemp("console-server"), workers=1) as app:
        app.context.objects.write_bytes("s3://console/data.csv", CSV)
        yield app


@pytest.fixture(scope="module")
def ml(server: Application) -> Any:
    client = make_client(server.settings.base_url)
    client.create_data_source_from_s3(DataSourceId="ds-console", DataSourceName="before",
                                      DataSpec={"DataLocationS3": "s3://console/data.csv", "DataSchema": SCHEMA})
    return client


@pytest.fixture
def browser(server: Application) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies, as a browser does (and sends no Origin or Referer)."""
    with httpx.Client(base_url=f"{server.settings.base_url}/console", timeout=30) as client:
        yield client


def token_of(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("name", ["n" * 5000, "  "])
def test_a_console_rename_is_refused_as_the_api_refuses_it(ml: Any, browser: httpx.Client, name: str) -> None:
    with pytest.raises(ClientError) as refused_by_api:
        ml.update_data_source(DataSourceId="ds-console", DataSourceName=name)
    error = refused_by_api.value.response["Error"]
    token = token_of(browser, "/datasources/ds-console")
    page = browser.post("/datasources/ds-console/rename", data={"name": name, "csrf_token": token})
    assert page.status_code == 400
    assert f"{error['Code']}: {error['Message']}" in html.unescape(page.text)
    assert ml.get_data_source(DataSourceId="ds-console")["Name"] == "before"


def test_the_datasource_page_shows_the_schema_getdatasource_gives(ml: Any, browser: httpx.Client) -> None:
    schema = ml.get_data_source(DataSourceId="ds-console", Verbose=True)["DataSourceSchema"]
    page = browser.get("/datasources/ds-console")
    assert page.status_code == 200
    section = html.unescape(page.text.split('id="schema-h"', 1)[1].split("</section>", 1)[0])
    assert "not available" not in section and "3 attributes" in section
    for name, kind in (("x", "NUMERIC"), ("c", "CATEGORICAL"), ("y", "BINARY")):
        assert f'<td class="mono">{name}</td><td>{kind}</td>' in section
    assert '"targetAttributeName": "y"' in section and schema


def test_a_console_post_needs_the_token_of_a_console_page(ml: Any, browser: httpx.Client) -> None:
    refused = browser.post("/datasources/ds-console/rename", data={"name": "after"})
    assert refused.status_code == 403
    assert refused.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]
    assert ml.get_data_source(DataSourceId="ds-console")["Name"] == "before"
    token = token_of(browser, "/datasources/ds-console")
    moved = browser.post("/datasources/ds-console/rename", data={"name": "after", "csrf_token": token})
    assert moved.status_code == 303 and ml.get_data_source(DataSourceId="ds-console")["Name"] == "after"
    ml.update_data_source(DataSourceId="ds-console", DataSourceName="before")


@pytest.mark.parametrize("kind", ["datasources", "models"])
@pytest.mark.parametrize("value", ["1e400", "1e300", "-1e19"])
def test_a_time_filter_out_of_range_is_an_error_on_the_list_page(
        ml: Any, browser: httpx.Client, kind: str, value: str) -> None:
    page = browser.get(f"/{kind}", params={"var": "CreatedAt", "cmp": "GT", "value": value})
    assert 400 <= page.status_code < 500 and 'role="alert"' in page.text, page.text[:500]


@pytest.mark.parametrize(("target", "charts"), [
    ("y", ["Scores of records whose true label is 1 and 0", "ROC curve", "Precision-recall curve"]),
    ("x", ["Residuals (actual minus predicted)", "Predicted against actual values"]),
])
def test_the_evaluation_page_draws_what_the_evaluation_wrote(
        ml: Any, browser: httpx.Client, target: str, charts: list[str]) -> None:
    """Real evaluations (BINARY on y, REGRESSION on x) through the one report type."""
    schema = SCHEMA.replace('"targetAttributeName":"y"', f'"targetAttributeName":"{target}"')
    ml.create_data_source_from_s3(DataSourceId=f"ds-eval-{target}", DataSpec={
        "DataLocationS3": "s3://console/data.csv", "DataSchema": schema}, ComputeStatistics=True)
    ml.create_ml_model(MLModelId=f"ml-eval-{target}", MLModelType="BINARY" if target == "y" else "REGRESSION",
                       TrainingDataSourceId=f"ds-eval-{target}")
    ml.create_evaluation(EvaluationId=f"ev-{target}", MLModelId=f"ml-eval-{target}",
                         EvaluationDataSourceId=f"ds-eval-{target}")
    assert wait_for(lambda: ml.get_evaluation(EvaluationId=f"ev-{target}"))["Status"] == "COMPLETED"
    page = browser.get(f"/evaluations/ev-{target}")
    # every value is there; only a precision of no record predicted 1 (0 / 0) is not available
    shown = re.sub(r'id="t-precision">not available<', "", page.text)
    assert page.status_code == 200 and "not available" not in shown
    for title in charts:
        assert title in page.text
    assert re.search(r"<dt>Records evaluated</dt><dd>60</dd>", page.text)


@pytest.mark.parametrize("kind", ["datasources", "evaluations"])
def test_pages_of_a_listing_keep_the_query_and_go_back(ml: Any, browser: httpx.Client, kind: str) -> None:
    """Next page keeps the filter, order and limit (it once dropped ?limit), and every page
    after the first links the one before, with the API's own NextTokens."""
    if kind == "datasources":
        for number in range(5):
            ml.create_data_source_from_s3(
                DataSourceId=f"ds-page-{number}", DataSourceName=f"paged {number}",
                DataSpec={"DataLocationS3": "s3://console/data.csv", "DataSchema": SCHEMA})
    query = {"var": "Name", "cmp": "Prefix", "value": "paged", "order": "asc", "limit": "2"}
    page = browser.get(f"/{kind}", params=query)
    seen: list[list[str]] = []
    while True:
        assert page.status_code == 200
        seen.append(re.findall(r'href="/console/datasources/(ds-page-\d)"', page.text))
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if found is None:
            break
        url = html.unescape(found.group(1))
        assert "limit=2" in url and "value=paged" in url and "order=asc" in url
        page = browser.get(f"/{kind}" + url)
    expected = [["ds-page-0", "ds-page-1"], ["ds-page-2", "ds-page-3"], ["ds-page-4"]]
    assert seen == (expected if kind == "datasources" else [[]])
    back = re.search(r'<a href="([^"]+)" rel="prev">', page.text)
    if kind == "evaluations":
        assert back is None  # one page: no pager
        return
    assert back is not None
    before = browser.get("/datasources" + html.unescape(back.group(1)))
    assert re.findall(r'href="/console/datasources/(ds-page-\d)"', before.text) == expected[1]
    assert "Page 2" in before.text


def test_a_real_time_endpoint_is_created_and_deleted_in_the_console(ml: Any, browser: httpx.Client) -> None:
    """The model page creates and deletes the endpoint as CreateRealtimeEndpoint and
    DeleteRealtimeEndpoint do, shows its URL, and warns before a model with a live endpoint
    is deleted that the endpoint goes too."""
    ml.create_data_source_from_s3(DataSourceId="ds-endpoint", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://console/data.csv", "DataSchema": SCHEMA})
    ml.create_ml_model(MLModelId="ml-endpoint", MLModelType="BINARY", TrainingDataSourceId="ds-endpoint")
    assert wait_for(lambda: ml.get_ml_model(MLModelId="ml-endpoint"))["Status"] == "COMPLETED"
    page = browser.get("/models/ml-endpoint").text
    assert "Create endpoint" in page and 'id="endpoint-warning"' not in page
    token = token_of(browser, "/models/ml-endpoint")
    created = browser.post("/models/ml-endpoint/endpoint-create", data={"csrf_token": token})
    assert created.status_code == 303
    notice = browser.get(created.headers["location"].removeprefix("/console")).text
    assert "Real-time endpoint of ml-endpoint requested" in html.unescape(notice)
    deadline = time.monotonic() + 60
    while (info := ml.get_ml_model(MLModelId="ml-endpoint")["EndpointInfo"])["EndpointStatus"] != "READY":
        assert time.monotonic() < deadline, info
        time.sleep(0.1)
    page = html.unescape(browser.get("/models/ml-endpoint").text)
    assert info["EndpointUrl"] in page and "Delete endpoint" in page
    warning = re.search(r'<p class="message" id="endpoint-warning">([^<]+)</p>', page)
    assert warning is not None and info["EndpointUrl"] in warning.group(1)
    assert f"Its real-time endpoint ({info['EndpointUrl']}) is deleted too." in page
    deleted = browser.post("/models/ml-endpoint/endpoint-delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert ml.get_ml_model(MLModelId="ml-endpoint")["EndpointInfo"]["EndpointStatus"] == "NONE"
    page = browser.get("/models/ml-endpoint").text
    assert "Create endpoint" in page and 'id="endpoint-warning"' not in page


def test_tags_are_added_and_removed_as_the_api_does_it(ml: Any, browser: httpx.Client) -> None:
    token = token_of(browser, "/datasources/ds-console")
    added = browser.post("/datasources/ds-console/tag-add",
                         data={"key": "team", "value": "growth", "csrf_token": token})
    assert added.status_code == 303
    tags = ml.describe_tags(ResourceId="ds-console", ResourceType="DataSource")["Tags"]
    assert {"Key": "team", "Value": "growth"} in tags
    page = html.unescape(browser.get("/datasources/ds-console").text)
    assert '<span class="tag">team=growth</span>' in page and 'aria-label="Remove tag team"' in page
    bad = browser.post("/datasources/ds-console/tag-add", data={"key": "", "csrf_token": token})
    assert bad.status_code == 400 and "InvalidTagException" in html.unescape(bad.text)  # the API's own refusal
    removed = browser.post("/datasources/ds-console/tag-delete", data={"key": "team", "csrf_token": token})
    assert removed.status_code == 303
    assert ml.describe_tags(ResourceId="ds-console", ResourceType="DataSource")["Tags"] == []


@pytest.mark.parametrize("kind", ["datasources", "models"])
def test_the_job_log_of_an_entity_is_a_page(ml: Any, browser: httpx.Client, kind: str) -> None:
    entity_id = "ds-console" if kind == "datasources" else "ml-endpoint"
    if kind == "models" and browser.get(f"/models/{entity_id}").status_code != 200:
        pytest.skip("the endpoint test made the model")
    page = browser.get(f"/{kind}/{entity_id}")
    assert f'href="/console/{kind}/{entity_id}/log"' in page.text
    log = browser.get(f"/{kind}/{entity_id}/log")
    assert log.status_code == 200 and "started" in html.unescape(log.text) and 'id="job-log"' in log.text
    assert browser.get(f"/{kind}/missing-id/log").status_code == 404
    assert browser.get("/nothing/x/log").status_code == 404


def test_evaluations_and_batch_predictions_are_created_from_the_model_page(ml: Any, browser: httpx.Client) -> None:
    """The model page's forms make the calls a boto3 user would (CreateEvaluation,
    CreateBatchPrediction); a refusal is shown beside the field it concerns, with what was
    typed kept, and nothing is created."""
    ml.create_data_source_from_s3(DataSourceId="ds-use", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://console/data.csv", "DataSchema": SCHEMA})
    ml.create_ml_model(MLModelId="ml-use", MLModelType="BINARY", TrainingDataSourceId="ds-use")
    page = browser.get("/models/ml-use").text
    assert 'id="form-evaluate"' in page and 'id="form-batch-predict"' in page
    token = token_of(browser, "/models/ml-use")
    made = browser.post("/models/ml-use/create/evaluate",
                        data={"datasource": "ds-use", "id": "ev-use", "csrf_token": token})
    assert made.status_code == 303 and made.headers["location"].startswith("/console/evaluations/ev-use?notice=")
    assert wait_for(lambda: ml.get_evaluation(EvaluationId="ev-use"))["Status"] == "COMPLETED"
    bad = browser.post("/models/ml-use/create/batch-predict",
                       data={"datasource": "ds-use", "output": "not-a-location", "id": "bp-use", "csrf_token": token})
    assert bad.status_code == 400
    error = re.search(r'<p class="field-error" id="batch-predict-output-error">([^<]+)</p>', bad.text)
    assert error is not None and "OutputUri" in html.unescape(error.group(1))
    assert 'value="not-a-location"' in bad.text and 'value="bp-use"' in bad.text  # what was typed stays
    with pytest.raises(ClientError):
        ml.get_batch_prediction(BatchPredictionId="bp-use")
    made = browser.post("/models/ml-use/create/batch-predict", data={
        "datasource": "ds-use", "output": "s3://console/out/", "id": "bp-use", "csrf_token": token})
    assert made.status_code == 303
    assert wait_for(lambda: ml.get_batch_prediction(BatchPredictionId="bp-use"))["Status"] == "COMPLETED"
    same = browser.post("/models/ml-use/create/evaluate",
                        data={"datasource": "ds-use", "id": "ev-use", "csrf_token": token})
    assert same.status_code == 303  # the same call again: idempotent, as in the API
    other = browser.post("/models/ml-use/create/evaluate", data={"datasource": "ds-console", "id": "ev-use",
                                                                  "csrf_token": token})
    assert other.status_code == 400 and "IdempotentParameterMismatchException" in html.unescape(other.text)
    missing = browser.post("/models/ml-use/create/evaluate", data={"datasource": "ds-none", "csrf_token": token})
    assert missing.status_code == 400 and 'id="evaluate-datasource-error"' in missing.text
