"""The console of a real server over HTTP: the same validation as the API, CSRF, headers, filters."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
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


def field_message(page: str, field: str) -> str:
    found = re.search(rf'id="{field}-error"[^>]*>([^<]+)<', page)
    assert found is not None, page[-3000:]
    return html.unescape(found.group(1))


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
    # what was typed stays in the field, to be mended (it showed the stored name again)
    assert f'id="rename-name" name="name" value="{name}"' in page.text


def test_a_refused_tag_keeps_what_was_typed(ml: Any, browser: httpx.Client) -> None:
    token = token_of(browser, "/datasources/ds-console")
    page = browser.post("/datasources/ds-console/tag-add",
                        data={"key": "team!", "value": "growth & co", "csrf_token": token})
    assert page.status_code == 400 and "InvalidTagException" in html.unescape(page.text)
    assert 'value="team!"' in page.text and 'value="growth &amp; co"' in page.text
    assert ml.describe_tags(ResourceId="ds-console", ResourceType="DataSource")["Tags"] == []
    fresh = browser.get("/datasources/ds-console").text  # a later visit starts empty
    assert 'id="tag-key" name="key" maxlength="128" required value=""' in fresh


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
    for what in ("evaluate", "batch-predict"):  # no datasource is chosen for the user (it was the newest)
        picker = re.findall(rf'<select id="{what}-datasource".*?</select>', page, re.S)[0]
        assert "selected" not in picker and re.search(r"<option[^>]*>", picker).group(0) == '<option value="">'
    token = token_of(browser, "/models/ml-use")
    for what in ("evaluate", "batch-predict"):
        unchosen = browser.post(f"/models/ml-use/create/{what}", data={
            "datasource": "", "datasource_id": " ", "id": f"x-{what}", "output": "s3://console/out/",
            "csrf_token": token})
        assert unchosen.status_code == 400
        assert "Choose a datasource" in field_message(unchosen.text, f"{what}-datasource")
        assert 'value="x-' + what + '"' in unchosen.text
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


TABLE = b"age,plan,churned\n" + b"".join(
    f"{20 + i % 50},{'abc'[i % 3]},{int(i % 3 == 0)}\n".encode() for i in range(90))
TABLE_SCHEMA = json.dumps({"version": "1.0", "targetAttributeName": "churned", "dataFormat": "CSV",
                           "dataFileContainsHeader": True, "attributes": [
                               {"attributeName": "age", "attributeType": "NUMERIC"},
                               {"attributeName": "plan", "attributeType": "CATEGORICAL"},
                               {"attributeName": "churned", "attributeType": "BINARY"}]})


def test_the_object_store_is_browsed_and_a_file_uploaded(server: Application, browser: httpx.Client) -> None:
    """Buckets, then folders and files with links into the datasource wizard; an upload is a PUT
    of the file with the page's token in a header, refused without it, from another origin,
    to a folder or over the size limit."""
    token = token_of(browser, "/create/datasource")
    put = browser.put("/upload", params={"uri": "s3://uploads-test/tables/churn.csv"}, content=TABLE,
                      headers={"X-CSRF-Token": token})
    assert put.status_code == 200 and put.json() == {"uri": "s3://uploads-test/tables/churn.csv", "size": len(TABLE)}
    assert server.context.objects.read_bytes("s3://uploads-test/tables/churn.csv") == TABLE
    assert browser.put("/upload", params={"uri": "s3://uploads-test/x.csv"}, content=b"1").status_code == 403
    assert browser.put("/upload", params={"uri": "s3://uploads-test/x.csv"}, content=b"1",
                       headers={"X-CSRF-Token": token, "Origin": "http://evil.example"}).status_code == 403
    assert browser.put("/upload", params={"uri": "s3://uploads-test/folder/"}, content=b"1",
                       headers={"X-CSRF-Token": token}).status_code == 400
    assert server.context.objects.stat("s3://uploads-test/x.csv") is None
    buckets = browser.get("/browse").text
    assert "s3://uploads-test/" in buckets
    top = html.unescape(browser.get("/browse", params={"uri": "s3://uploads-test/"}).text)
    assert ">tables/<" in top and ">folder<" in top
    inside = html.unescape(browser.get("/browse", params={"uri": "s3://uploads-test/tables/"}).text)
    assert "churn.csv" in inside and "/create/datasource?location=s3%3A//uploads-test/tables/churn.csv" in inside
    assert 'role="alert"' in browser.get("/browse", params={"uri": "s3://Bad_Bucket/"}).text


def test_the_upload_size_is_a_setting(tmp_path: Any) -> None:
    """OPENAML_CONSOLE_UPLOAD_BYTES bounds an upload: refused by its declared length unread,
    or, sent without one, as soon as it passes the limit; nothing is kept either way."""
    from openaml.settings import Settings

    settings = Settings.from_env({"OPENAML_CONSOLE_UPLOAD_BYTES": "1000"}, data_dir=tmp_path, port=0, workers=1)
    with running_server(settings) as app, httpx.Client(base_url=f"{app.settings.base_url}/console") as browser:
        token = token_of(browser, "/create/datasource")
        big = browser.put("/upload", params={"uri": "s3://uploads-test/big.csv"}, content=b"x" * 5000,
                          headers={"X-CSRF-Token": token})
        assert big.status_code == 413 and "1,000 bytes" in big.json()["error"]
        streamed = browser.put("/upload", params={"uri": "s3://uploads-test/big.csv"},
                               content=(b"x" * 500 for _ in range(10)), headers={"X-CSRF-Token": token})
        assert streamed.status_code == 413 and app.context.objects.stat("s3://uploads-test/big.csv") is None
        small = browser.put("/upload", params={"uri": "s3://uploads-test/small.csv"}, content=b"x" * 900,
                            headers={"X-CSRF-Token": token})
        assert small.status_code == 200


def test_the_datasource_wizard_guesses_the_schema_and_creates_what_the_form_says(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    server.context.objects.write_bytes("s3://wizard/churn.csv", TABLE)
    page = html.unescape(browser.get("/create/datasource", params={"location": "s3://wizard/churn.csv"}).text)
    assert 'name="attr.0.name" value="age"' in page and 'name="header" value="1" checked' in page
    assert re.search(r'name="attr.0.type"[^>]*>.*?<option selected>NUMERIC</option>', page, re.S)
    token = token_of(browser, "/create/datasource?location=s3://wizard/churn.csv")
    form = {"csrf_token": token, "location": "s3://wizard/churn.csv", "header": "1", "attr.0.name": "age",
            "attr.0.type": "NUMERIC", "attr.1.name": "plan", "attr.1.type": "CATEGORICAL", "attr.2.name": "churned",
            "attr.2.type": "BINARY", "target": "churned", "rowid": "", "split": "range", "begin": "0", "end": "70",
            "strategy": "random", "seed": "abc", "id": "ds-wizard", "name": "churn", "statistics": "1"}
    bad = browser.post("/create/datasource", data={**form, "begin": "x"})
    assert bad.status_code == 400 and 'id="split-error"' in bad.text and 'value="x"' in bad.text
    made = browser.post("/create/datasource", data=form)
    assert made.status_code == 303 and made.headers["location"].startswith("/console/datasources/ds-wizard?")
    ds = wait_for(lambda: ml.get_data_source(DataSourceId="ds-wizard", Verbose=True))
    assert ds["Status"] == "COMPLETED" and ds["ComputeStatistics"] is True and ds["Name"] == "churn"
    schema = json.loads(ds["DataSourceSchema"])
    assert schema["targetAttributeName"] == "churned" and schema["dataFileContainsHeader"] is True
    assert [a["attributeType"] for a in schema["attributes"]] == ["NUMERIC", "CATEGORICAL", "BINARY"]
    assert json.loads(ds["DataRearrangement"])["splitting"]["strategy"] == "random"
    taken = browser.post("/create/datasource", data={**form, "end": "60"})  # the ID again, other parameters
    assert taken.status_code == 400 and "IdempotentParameterMismatchException" in html.unescape(taken.text)
    unread = browser.get("/create/datasource", params={"location": "s3://wizard/nothing.csv"})
    assert 'id="location-error"' in unread.text and 'id="datasource-form"' not in unread.text
    wide = b",".join(f"p{i}".encode() for i in range(150)) + b"\n" + b",".join(b"1" for _ in range(150)) + b"\n"
    server.context.objects.write_bytes("s3://wizard/wide.csv", wide)
    wide_page = browser.get("/create/datasource", params={"location": "s3://wizard/wide.csv"}).text
    assert 'id="schema-json"' in wide_page and 'id="schema-table"' not in wide_page


def test_the_model_wizard_trains_on_70_and_evaluates_on_30_percent(ml: Any, browser: httpx.Client) -> None:
    """The model wizard suggests the type of the datasource's target and shows its default
    recipe, checks a recipe as CreateMLModel will, and with "evaluate" makes the 70/30
    datasources, the model on the 70 % and its evaluation on the 30 %."""
    if browser.get("/datasources/ds-wizard").status_code != 200:
        pytest.skip("needs the datasource wizard's test")
    page = html.unescape(browser.get("/create/model", params={"datasource": "ds-wizard"}).text)
    assert "<option selected>BINARY</option>" in page and "ALL_CATEGORICAL" in page
    token = token_of(browser, "/create/model?datasource=ds-wizard")
    valid = browser.post("/check/recipe", data={"csrf_token": token, "datasource": "ds-wizard",
                                                "recipe": '{"outputs": ["ALL_CATEGORICAL"]}'})
    assert valid.json() == {"ok": True}
    wrong = browser.post("/check/recipe", data={"csrf_token": token, "datasource": "ds-wizard",
                                                "recipe": '{"outputs": ["nosuch"]}'})
    assert wrong.json()["ok"] is False and "nosuch" in wrong.json()["error"]
    form = {"csrf_token": token, "datasource": "ds-wizard", "type": "BINARY", "recipe": "", "evaluate": "1",
            "strategy": "sequential", "id": "ml-wizard", "name": "churn model", "sgd.maxPasses": "5",
            "sgd.l2RegularizationAmount": "1e-4", "sgd.l1RegularizationAmount": "1e-4"}
    refused = browser.post("/create/model", data=form)  # L1 and L2 at once
    assert refused.status_code == 400 and 'id="parameters-error"' in refused.text
    made = browser.post("/create/model", data={**form, "sgd.l1RegularizationAmount": "0"})
    assert made.status_code == 303 and made.headers["location"].startswith("/console/models/ml-wizard?")
    evaluation = wait_for(lambda: ml.get_evaluation(EvaluationId="ml-wizard-ev"), timeout=120)
    assert evaluation["Status"] == "COMPLETED" and evaluation["EvaluationDataSourceId"] == "ml-wizard-eval"
    model = ml.get_ml_model(MLModelId="ml-wizard")
    assert model["TrainingDataSourceId"] == "ml-wizard-train" and model["TrainingParameters"]["sgd.maxPasses"] == "5"
    splits = [json.loads(ml.get_data_source(DataSourceId=f"ml-wizard-{p}")["DataRearrangement"])["splitting"]
              for p in ("train", "eval")]
    # 70/30 of the records the datasource selects (0-70 %, drawn at random with seed "abc")
    assert [(s["percentBegin"], s["percentEnd"], s["strategyParams"]["randomSeed"]) for s in splits] == [
        (0, 49, "abc"), (49, 70, "abc")]


def test_models_are_compared_side_by_side(ml: Any, browser: httpx.Client) -> None:
    ml.create_data_source_from_s3(DataSourceId="ds-cmp", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://console/data.csv", "DataSchema": SCHEMA})
    for model_id, passes in (("ml-cmp-1", "2"), ("ml-cmp-2", "5")):
        ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId="ds-cmp",
                           Parameters={"sgd.maxPasses": passes})
    ml.create_evaluation(EvaluationId="ev-cmp", MLModelId="ml-cmp-2", EvaluationDataSourceId="ds-cmp")
    auc = wait_for(lambda: ml.get_evaluation(EvaluationId="ev-cmp"))["PerformanceMetrics"]["Properties"]["BinaryAUC"]
    wait_for(lambda: ml.get_ml_model(MLModelId="ml-cmp-1"))
    listing = browser.get("/models").text
    assert 'form="compare-form" aria-label="Compare ml-cmp-1"' in listing
    page = browser.get("/compare", params=[("m", "ml-cmp-1"), ("m", "ml-cmp-2"), ("m", "ml-none")])
    assert page.status_code == 200
    table = html.unescape(page.text.split('id="comparison"', 1)[1].split("</table>", 1)[0])
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<th scope="row"[^>]*>([^<]+)</th>(.*?)</tr>', table, re.S)}
    assert re.findall(r"<td>(\d+)</td>", rows["sgd.maxPasses"]) == ["2", "5"]
    assert f"BinaryAUC {float(auc):.4g}" in rows["Evaluations"] and "none completed" in rows["Evaluations"]
    assert "ResourceNotFoundException" in rows["ID"]  # an unknown ID says so, the others still show
    assert "Choose models to compare" in browser.get("/compare").text


def test_the_comparison_shows_each_class_recall_before_and_after_class_weights(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    """An imbalanced table (about 7 % positives): the model with balanced class weights beside
    the same model without them, each evaluated; the comparison's row of recalls by class shows
    the minority class's recall rise."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=3000)
    label = (x + rng.normal(scale=0.8, size=3000) > 2.0).astype(int)
    server.context.objects.write_bytes("s3://console/imbalanced.csv", "".join(
        f"{v:.4f},{y}\n" for v, y in zip(x, label, strict=True)).encode())
    schema = json.dumps({"targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": False,
                         "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                                        {"attributeName": "y", "attributeType": "BINARY"}]})
    ml.create_data_source_from_s3(DataSourceId="ds-imbalanced", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://console/imbalanced.csv", "DataSchema": schema})
    for model_id, weights in (("ml-plain", {}), ("ml-weighted", {"openaml.classWeights": "balanced"})):
        ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId="ds-imbalanced",
                           Parameters=weights)
        ml.create_evaluation(EvaluationId=f"ev-{model_id}", MLModelId=model_id,
                             EvaluationDataSourceId="ds-imbalanced")
    for evaluation_id in ("ev-ml-plain", "ev-ml-weighted"):
        assert wait_for(lambda: ml.get_evaluation(EvaluationId=evaluation_id))["Status"] == "COMPLETED"  # noqa: B023
    page = browser.get("/compare", params=[("m", "ml-plain"), ("m", "ml-weighted")]).text
    row = html.unescape(page.split("Recall by class (latest evaluation)</th>", 1)[1].split("</tr>", 1)[0])
    cells = [dict((label, float(value)) for label, value in re.findall(r"<div>(\d): ([\d.]+)</div>", cell))
             for cell in row.split("</td>")[:2]]
    plain, weighted = cells
    assert set(plain) == set(weighted) == {"0", "1"}
    assert weighted["1"] > plain["1"] + 0.2 and weighted["0"] < plain["0"]  # more positives found


def test_the_model_wizard_trains_boosted_trees_with_class_weights(server: Application, ml: Any,
                                                                  browser: httpx.Client) -> None:
    """The wizard's beyond-Amazon-ML fields reach CreateMLModel; those left empty are not sent."""
    server.context.objects.write_bytes("s3://wizard/trees.csv", TABLE)
    schema = TABLE_SCHEMA
    ml.create_data_source_from_s3(DataSourceId="ds-wizard-trees", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://wizard/trees.csv", "DataSchema": schema})
    page = browser.get("/create/model", params={"datasource": "ds-wizard-trees"}).text
    assert 'name="openaml.algorithm" value=""' in page and 'name="gbdt.maxBins" value=""' in page
    token = token_of(browser, "/create/model?datasource=ds-wizard-trees")
    made = browser.post("/create/model", data={
        "csrf_token": token, "datasource": "ds-wizard-trees", "type": "BINARY", "id": "ml-wizard-trees",
        "openaml.algorithm": "gbdt", "gbdt.rounds": "7", "gbdt.maxBins": " ", "openaml.classWeights": "balanced",
        "sgd.maxPasses": "10", "sgd.shuffleType": "auto"})  # as a browser sends the prefilled fields
    assert made.status_code == 303, made.text[-2000:]
    model = wait_for(lambda: ml.get_ml_model(MLModelId="ml-wizard-trees"), timeout=120)
    assert model["Status"] == "COMPLETED", model.get("Message")
    shown = model["TrainingParameters"]
    assert (shown["algorithm"], shown["gbdt.rounds"], shown["gbdt.maxBins"], shown["openaml.classWeights"]) == (
        "gbdt", "7", "auto", "balanced")
    plain = browser.post("/create/model", data={"csrf_token": token, "datasource": "ds-wizard-trees", "type": "BINARY",
                                                "id": "ml-wizard-linear", "openaml.algorithm": ""})
    assert plain.status_code == 303
    assert "openaml.algorithm" not in ml.get_ml_model(MLModelId="ml-wizard-linear")["TrainingParameters"]


def test_the_held_out_evaluation_stays_within_the_datasource_and_nothing_is_made_for_a_refused_model(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    """The 70/30 parts are of the records the datasource itself selects (a datasource of the
    first half once trained on 70 % of the whole file, its held-out half included), and a
    model the API would refuse leaves no datasource behind."""
    server.context.objects.write_bytes("s3://wizard/half.csv", TABLE)
    schema = TABLE_SCHEMA
    for ds_id, split in (("ds-half", {"percentBegin": 0, "percentEnd": 50}),
                         ("ds-rest", {"percentBegin": 0, "percentEnd": 50, "complement": True}),
                         ("ds-rand", {"percentBegin": 20, "percentEnd": 80, "strategy": "random",
                                      "strategyParams": {"randomSeed": "s9"}})):
        ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
            "DataLocationS3": "s3://wizard/half.csv", "DataSchema": schema,
            "DataRearrangement": json.dumps({"splitting": split})})
    token = token_of(browser, "/create/model?datasource=ds-half")
    form = {"csrf_token": token, "type": "BINARY", "evaluate": "1", "strategy": "random"}
    made = browser.post("/create/model", data={**form, "datasource": "ds-half", "id": "ml-half"})
    assert made.status_code == 303
    splits = [json.loads(ml.get_data_source(DataSourceId=f"ml-half-{p}")["DataRearrangement"])["splitting"]
              for p in ("train", "eval")]
    assert [(s["percentBegin"], s["percentEnd"], s.get("strategy")) for s in splits] == [(0, 35, None), (35, 50, None)]
    browser.post("/create/model", data={**form, "datasource": "ds-rand", "id": "ml-rand"})
    train = json.loads(ml.get_data_source(DataSourceId="ml-rand-train")["DataRearrangement"])["splitting"]
    assert (train["percentBegin"], train["percentEnd"], train["strategyParams"]["randomSeed"]) == (20, 62, "s9")
    refused = browser.post("/create/model", data={**form, "datasource": "ds-rest", "id": "ml-rest"})
    assert refused.status_code == 400 and 'id="evaluate-error"' in refused.text
    for bad, field in (({"sgd.maxPasses": "0"}, "parameters"), ({"recipe": '{"outputs": ["nosuch"]}'}, "recipe"),
                       ({"id": "m" * 60}, "id"), ({"type": "SOMETHING"}, "type"),
                       ({"gbdt.rounds": "5"}, "parameters"), ({"openaml.algorithm": "forest"}, "parameters"),
                       ({"openaml.algorithm": "gbdt", "gbdt.maxBins": "2"}, "parameters"),
                       ({"openaml.classWeights": '{"7": 2}'}, "parameters")):
        answer = browser.post("/create/model", data={**form, "datasource": "ds-half", "id": "ml-refused", **bad})
        assert answer.status_code == 400 and f'id="{field}-error"' in answer.text, (bad, answer.text[-2000:])
    made_ids = {d["DataSourceId"] for d in ml.describe_data_sources()["Results"]}
    assert not any(i.startswith(("ml-refused", "ml-rest", "m" * 60)) for i in made_ids)
    assert browser.post("/models/ml-none/create/evaluate",
                        data={"csrf_token": token, "datasource": "ds-half"}).status_code == 404


@pytest.mark.parametrize(("name", "content", "message"), [
    ("quote.csv", b'a,b\n"' + b"x" * 200_000 + b"\n", "field larger than field limit"),
    ("broken.csv.gz", b"\x1f\x8b" + b"not gzip at all" * 10, "cannot be decompressed"),
    ("wide.csv", b"y" * (5 << 20), "longer than 4,194,304 bytes"),
])
def test_the_datasource_wizard_says_why_data_cannot_be_read(
        server: Application, browser: httpx.Client, name: str, content: bytes, message: str) -> None:
    """Data the schema guess cannot read are an error beside the location, not a 500."""
    server.context.objects.write_bytes(f"s3://wizard/bad/{name}", content)
    page = browser.get("/create/datasource", params={"location": f"s3://wizard/bad/{name}"})
    assert page.status_code == 200
    error = re.search(r'<p class="field-error" id="location-error" role="alert">([^<]+)</p>', page.text)
    assert error is not None and message in html.unescape(error.group(1))


def test_a_schema_nested_too_deep_is_refused_by_the_wizard_and_the_api(ml: Any, browser: httpx.Client) -> None:
    """JSON nested deeper than the interpreter's stack answered 500 (RecursionError) from the
    API and the wizard: now the API's InvalidInputException, shown beside the schema."""
    deep = "[" * 50_000
    for member in ("DataSchema", "DataRearrangement"):
        spec = {"DataLocationS3": "s3://console/data.csv", "DataSchema": SCHEMA, member: deep}
        with pytest.raises(ClientError) as refused:
            ml.create_data_source_from_s3(DataSourceId=f"ds-deep-{member.lower()}", DataSpec=spec)
        assert refused.value.response["Error"]["Code"] == "InvalidInputException"
        assert "too deeply" in refused.value.response["Error"]["Message"]
    token = token_of(browser, "/create/datasource")
    page = browser.post("/create/datasource", data={"csrf_token": token, "location": "s3://console/data.csv",
                                                    "schema_json": deep, "id": "ds-deep"})
    assert page.status_code == 400 and 'id="schema-error"' in page.text


def test_an_upload_never_replaces_an_object_unasked_and_says_why_it_failed(
        server: Application, browser: httpx.Client) -> None:
    token = token_of(browser, "/create/datasource")
    headers = {"X-CSRF-Token": token}
    uri = "s3://uploads-test/again.csv"
    assert browser.put("/upload", params={"uri": uri}, content=b"1\n", headers=headers).status_code == 200
    again = browser.put("/upload", params={"uri": uri}, content=b"2\n", headers=headers)
    assert again.status_code == 409 and again.json()["exists"] is True
    assert server.context.objects.read_bytes(uri) == b"1\n"
    replaced = browser.put("/upload", params={"uri": uri, "overwrite": "1"}, content=b"2\n", headers=headers)
    assert replaced.status_code == 200 and server.context.objects.read_bytes(uri) == b"2\n"
    server.context.objects.write_bytes("s3://uploads-test/dir/inside.csv", b"x")
    clash = browser.put("/upload", params={"uri": "s3://uploads-test/dir", "overwrite": "1"}, content=b"x",
                        headers=headers)  # a folder of that name: the store cannot keep the file
    assert clash.status_code in (400, 502) and "error" in clash.json()


def test_the_schema_guess_reads_every_member_of_a_gzip_file(server: Application, browser: httpx.Client) -> None:
    """A batch prediction by partition writes its header and each partition's lines as gzip
    members: the guess reads past the first (which holds the header alone)."""
    import gzip

    rows = b"".join(b"%d,%.3f\n" % (i % 2, i / 7) for i in range(50))
    server.context.objects.write_bytes("s3://wizard/members/out.csv.gz",
                                       gzip.compress(b"bestAnswer,score\n") + gzip.compress(rows))
    page = browser.get("/create/datasource", params={"location": "s3://wizard/members/out.csv.gz"})
    assert page.status_code == 200 and "field-error" not in page.text
    assert re.search(r'name="attr.1.type"[^>]*>.*?<option selected>NUMERIC</option>', page.text, re.S)


def test_a_boosted_tree_model_shows_its_importance_and_explains_a_prediction(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    """A model of openaml.algorithm=gbdt: its page draws the features' split gain instead of
    weights, and the try-a-prediction page the record's SHAP values."""
    rows = "".join(f"{i},{'ab'[i % 2]},{int(i > 30)}\n" for i in range(200))
    server.context.objects.write_bytes("s3://console/trees.csv", ("x,c,y\n" + rows).encode())
    ml.create_data_source_from_s3(DataSourceId="ds-trees", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://console/trees.csv", "DataSchema": SCHEMA})
    ml.create_ml_model(MLModelId="ml-trees", MLModelType="BINARY", TrainingDataSourceId="ds-trees",
                       Parameters={"openaml.algorithm": "gbdt", "gbdt.rounds": "20", "gbdt.minRecordsInLeaf": "2"})
    model = wait_for(lambda: ml.get_ml_model(MLModelId="ml-trees"))
    assert model["Status"] == "COMPLETED", model.get("Message")
    page = browser.get("/models/ml-trees")
    assert page.status_code == 200
    assert "Feature importance" in page.text and "Largest weights" not in page.text
    # a finished model of rounds, not passes; its own size, not the data's (found by an outside test)
    assert "No training passes were logged (boosted trees" in page.text and "Model size (bytes)" in page.text
    token = token_of(browser, "/models/ml-trees/predict")
    answer = browser.post("/models/ml-trees/predict", data={"x": "3", "c": "b", "csrf_token": token})
    assert answer.status_code == 200, answer.text[:500]
    assert "Feature contributions" in answer.text and "predictedLabel" in html.unescape(answer.text)
    assert "No feature of this record has a weight" not in answer.text and "<svg" in answer.text


def test_a_tree_models_page_shows_where_lightgbm_is_missing(
        server: Application, ml: Any, browser: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A console whose host lacks the `trees` extra (a front end installed without it) still
    shows a tree model's page, without its importance."""
    from openaml.ml import model as model_module
    from openaml.ml.trees import TreesUnavailable
    rows = "".join(f"{i},{'ab'[i % 2]},{int(i > 30)}\n" for i in range(200))
    server.context.objects.write_bytes("s3://console/trees2.csv", ("x,c,y\n" + rows).encode())
    ml.create_data_source_from_s3(DataSourceId="ds-trees2", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://console/trees2.csv", "DataSchema": SCHEMA})
    ml.create_ml_model(MLModelId="ml-trees2", MLModelType="BINARY", TrainingDataSourceId="ds-trees2",
                       Parameters={"openaml.algorithm": "gbdt", "gbdt.rounds": "5"})
    assert wait_for(lambda: ml.get_ml_model(MLModelId="ml-trees2"))["Status"] == "COMPLETED"

    def missing(text: str) -> Any:
        raise TreesUnavailable("openaml.algorithm=gbdt needs the 'trees' extra")

    monkeypatch.setattr(model_module, "load_booster", missing)
    page = browser.get("/models/ml-trees2")
    assert page.status_code == 200 and "Feature importance" in page.text and "not available" in page.text
