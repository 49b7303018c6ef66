"""The console's wizards and forms on a real server, with data and entities the API refuses:
nothing is made for a refused model, unusable datasources are said so, every datasource can be
picked, wide data fit, and refusals on a stale page reach the user."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import httpx
import pytest

from openaml.app import Application
from openaml.server.embedded import running_server
from tests.api.conftest import make_client, wait_for
from tests.console.test_server import TABLE, TABLE_SCHEMA, field_message, token_of

MAX_SCHEMA_LENGTH = (botocore.session.get_session().get_service_model("machinelearning")
                     .operation_model("CreateDataSourceFromS3").input_shape.members["DataSpec"]
                     .members["DataSchema"].metadata["max"])  # the API's limit: 131,071 characters
NO_TARGET = json.dumps({**json.loads(TABLE_SCHEMA), "targetAttributeName": None})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    with running_server(data_dir=tmp_path_factory.mktemp("console-refusals"), workers=1) as app:
        app.context.objects.write_bytes("s3://wizard/table.csv", TABLE)
        app.context.objects.write_bytes("s3://wizard/header-only.csv", b"age,plan,churned\n")
        yield app


@pytest.fixture(scope="module")
def ml(server: Application) -> Any:
    client = make_client(server.settings.base_url)
    for ds_id, schema in (("ds-binary", TABLE_SCHEMA), ("ds-notarget", NO_TARGET)):
        client.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
            "DataLocationS3": "s3://wizard/table.csv", "DataSchema": schema})
    return client


@pytest.fixture
def browser(server: Application) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.settings.base_url}/console", timeout=30) as client:
        yield client


def assert_never_made(ml: Any, model_id: str) -> None:
    """Neither the model nor its 70/30 datasources exist, not even DELETED."""
    with pytest.raises(ml.exceptions.ResourceNotFoundException):
        ml.get_ml_model(MLModelId=model_id)
    for part in ("train", "eval"):
        with pytest.raises(ml.exceptions.ResourceNotFoundException):
            ml.get_data_source(DataSourceId=f"{model_id}-{part}")


def model_form(browser: httpx.Client, datasource: str, **fields: str) -> dict[str, str]:
    token = token_of(browser, "/create/datasource")  # (any page's token)
    return {"csrf_token": token, "datasource": datasource, "type": "BINARY", "evaluate": "1",
            "strategy": "sequential", **fields}


@pytest.mark.parametrize(("datasource", "model_type", "field", "words"), [
    ("ds-binary", "REGRESSION", "type", "choose BINARY"),  # the target's type does not fit the model's
    ("ds-binary", "MULTICLASS", None, None),  # (a BINARY target fits MULTICLASS: made)
    ("ds-notarget", "BINARY", "datasource", "names no target"),
])
@pytest.mark.parametrize("evaluate", ["1", ""])
def test_the_model_wizard_checks_the_target_before_making_anything(
        ml: Any, browser: httpx.Client, datasource: str, model_type: str, field: str | None, words: str | None,
        evaluate: str) -> None:
    """F1: a model CreateMLModel refuses for its target left the wizard's 70/30 datasources
    behind; now nothing is made, and the message says what to choose."""
    model_id = f"ml-{datasource[3:]}-{model_type.lower()}-{evaluate or 'all'}"
    answer = browser.post("/create/model", data=model_form(browser, datasource, type=model_type, id=model_id,
                                                          evaluate=evaluate))
    if field is None:
        assert answer.status_code == 303
        return
    assert answer.status_code == 400 and words in field_message(answer.text, field)
    assert 'name="recipe"' in answer.text or field == "datasource"  # the form again, with what was typed
    assert_never_made(ml, model_id)


@pytest.mark.parametrize("evaluate", ["1", ""])
def test_the_model_wizard_refuses_a_deleted_or_failed_datasource_as_the_api_does(
        server: Application, ml: Any, browser: httpx.Client, evaluate: str) -> None:
    """F2: the 70/30 path trained on a DELETED (or FAILED) datasource; the wizard said nothing."""
    ml.create_data_source_from_s3(DataSourceId=f"ds-gone-{evaluate}", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://wizard/table.csv", "DataSchema": TABLE_SCHEMA})
    ml.delete_data_source(DataSourceId=f"ds-gone-{evaluate}")
    ml.create_data_source_from_s3(DataSourceId=f"ds-failed-{evaluate}", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://wizard/header-only.csv", "DataSchema": TABLE_SCHEMA})
    assert wait_for(lambda: ml.get_data_source(DataSourceId=f"ds-failed-{evaluate}"))["Status"] == "FAILED"
    for source, status in ((f"ds-gone-{evaluate}", "DELETED"), (f"ds-failed-{evaluate}", "FAILED")):
        wizard = browser.get("/create/model", params={"datasource": source})
        assert f"is {status} and cannot be used" in field_message(wizard.text, "datasource")
        assert 'id="model-form"' not in wizard.text  # nothing to submit
        model_id = f"ml-{status.lower()}-{evaluate or 'all'}"
        answer = browser.post("/create/model", data=model_form(browser, source, id=model_id, evaluate=evaluate))
        message = field_message(answer.text, "datasource")
        assert answer.status_code == 400 and f"{source} is {status} and cannot be used" in message
        assert "choose another datasource" in message
        assert_never_made(ml, model_id)


def test_the_model_wizard_needs_statistics_without_the_held_out_evaluation(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    """The sibling rule: training needs statistics (the 70/30 parts compute theirs)."""
    ml.create_data_source_from_s3(DataSourceId="ds-nostats", DataSpec={
        "DataLocationS3": "s3://wizard/table.csv", "DataSchema": TABLE_SCHEMA})
    answer = browser.post("/create/model", data=model_form(browser, "ds-nostats", id="ml-nostats", evaluate=""))
    assert answer.status_code == 400 and "ComputeStatistics" in field_message(answer.text, "datasource")
    made = browser.post("/create/model", data=model_form(browser, "ds-nostats", id="ml-nostats-ev"))
    assert made.status_code == 303


@pytest.mark.parametrize(("taken", "refused"), [("model", "MLModel"), ("evaluation", "Evaluation")])
def test_what_the_wizard_made_is_deleted_again_when_a_later_create_is_refused(
        ml: Any, browser: httpx.Client, taken: str, refused: str) -> None:
    """F1: a Create refused after the wizard made something (here an ID another call took with
    other parameters) leaves nothing behind that this submission made."""
    model_id = f"ml-taken-{taken}"
    if taken == "model":
        ml.create_ml_model(MLModelId=model_id, MLModelType="MULTICLASS", TrainingDataSourceId="ds-binary")
    else:  # the evaluation's ID, by another model
        ml.create_ml_model(MLModelId="ml-other", MLModelType="BINARY", TrainingDataSourceId="ds-binary")
        ml.create_evaluation(EvaluationId=f"{model_id}-ev", MLModelId="ml-other", EvaluationDataSourceId="ds-binary")
    answer = browser.post("/create/model", data=model_form(browser, "ds-binary", id=model_id))
    page = html.unescape(answer.text)
    assert answer.status_code == 400 and "IdempotentParameterMismatchException" in page
    assert "were deleted again" in page
    for part in ("train", "eval"):
        assert ml.get_data_source(DataSourceId=f"{model_id}-{part}")["Status"] == "DELETED"
    if taken == "evaluation":
        assert ml.get_ml_model(MLModelId=model_id)["Status"] == "DELETED"
    else:  # the model another call made is not the wizard's to delete
        assert ml.get_ml_model(MLModelId=model_id)["Status"] != "DELETED"


def test_a_retry_of_a_made_model_deletes_nothing(ml: Any, browser: httpx.Client) -> None:
    """Entities an earlier submission made are not this one's: a retry answers as the API does."""
    form = model_form(browser, "ds-binary", id="ml-twice")
    assert browser.post("/create/model", data=form).status_code == 303
    assert browser.post("/create/model", data=form).status_code == 303
    other = browser.post("/create/model", data={**form, "name": "another"})  # same ID, other parameters
    assert other.status_code == 400
    for part in ("train", "eval"):
        assert ml.get_data_source(DataSourceId=f"ml-twice-{part}")["Status"] != "DELETED"
    assert ml.get_ml_model(MLModelId="ml-twice")["Status"] != "DELETED"


@pytest.mark.parametrize("what", ["evaluate", "batch-predict"])
def test_a_refusal_on_a_model_deleted_meanwhile_is_shown(ml: Any, browser: httpx.Client, what: str) -> None:
    """F3: the model page of a DELETED model draws no create form, and the refusal was lost."""
    model_id = f"ml-stale-{what}"
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId="ds-binary")
    token = token_of(browser, f"/models/{model_id}")
    ml.delete_ml_model(MLModelId=model_id)  # in another tab
    answer = browser.post(f"/models/{model_id}/create/{what}", data={
        "csrf_token": token, "datasource": "ds-binary", "output": "s3://out/stale/"})
    alert = re.search(r'<p class="message" role="alert" id="alert">([^<]+)</p>', answer.text)
    assert answer.status_code == 400 and alert is not None
    assert f"MLModel {model_id} is DELETED" in html.unescape(alert.group(1))


def test_pickers_reach_datasources_beyond_the_newest_hundred(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    """F4: the pickers listed the newest 100 datasources, FAILED ones among them, and an older
    one could not be evaluated, batch-predicted or trained on. Now they list the newest 100
    usable ones, and an ID may be typed for any other."""
    ml.create_data_source_from_s3(DataSourceId="ds-oldest", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://wizard/table.csv", "DataSchema": TABLE_SCHEMA})
    for n in range(104):
        ml.create_data_source_from_s3(DataSourceId=f"ds-filler-{n:03d}", DataSpec={
            "DataLocationS3": "s3://wizard/table.csv", "DataSchema": TABLE_SCHEMA})
    ml.create_data_source_from_s3(DataSourceId="ds-newest-failed", DataSpec={
        "DataLocationS3": "s3://wizard/header-only.csv", "DataSchema": TABLE_SCHEMA})
    assert wait_for(lambda: ml.get_data_source(DataSourceId="ds-newest-failed"), timeout=180)["Status"] == "FAILED"
    ml.create_ml_model(MLModelId="ml-picker", MLModelType="BINARY", TrainingDataSourceId="ds-binary")
    page = browser.get("/models/ml-picker").text
    listed = re.findall(r'<select id="evaluate-datasource".*?</select>', page, re.S)[0]
    assert listed.count('<option value="ds-') == 100 and "FAILED" not in listed and "ds-oldest" not in listed
    assert "type the ID" in page or "the ID of another datasource" in page
    token = token_of(browser, "/models/ml-picker")
    both = browser.post("/models/ml-picker/create/evaluate", data={
        "csrf_token": token, "datasource": "ds-filler-103", "datasource_id": " ds-oldest ", "id": "ev-oldest"})
    assert both.status_code == 400 and "not both" in field_message(both.text, "evaluate-datasource")
    made = browser.post("/models/ml-picker/create/evaluate", data={
        "csrf_token": token, "datasource": "", "datasource_id": " ds-oldest ", "id": "ev-oldest"})
    assert made.status_code == 303
    assert ml.get_evaluation(EvaluationId="ev-oldest")["EvaluationDataSourceId"] == "ds-oldest"
    made = browser.post("/models/ml-picker/create/batch-predict", data={
        "csrf_token": token, "datasource": "", "datasource_id": "ds-oldest", "id": "bp-oldest",
        "output": "s3://out/oldest/"})
    assert made.status_code == 303
    assert ml.get_batch_prediction(BatchPredictionId="bp-oldest")["BatchPredictionDataSourceId"] == "ds-oldest"
    wizard = browser.get("/create/model", params={"datasource_id": "ds-oldest"}).text
    assert 'id="model-form"' in wizard and 'name="datasource" value="ds-oldest"' in wizard
    picker = re.findall(r'<select id="pick-datasource".*?</select>', wizard, re.S)[0]
    assert picker.count('<option value="ds-') == 100 and "FAILED" not in picker
    assert "selected" not in picker  # the older one typed is on show, not the newest listed


def wide_csv(columns: int) -> bytes:
    """A header of long names (62 characters, as exports have) and five rows of numbers."""
    names = ",".join(f"a_rather_long_column_name_that_people_do_write_in_exports_{i:04d}" for i in range(columns))
    return (names + "\n" + "\n".join(",".join(str(r + i) for i in range(columns)) for r in range(5)) + "\n").encode()


def test_the_guess_knows_the_apis_schema_limit() -> None:
    from openaml.ml.schema import guess

    assert guess.MAX_SCHEMA_LENGTH == MAX_SCHEMA_LENGTH


def test_wide_data_fit_the_schema_limit_wherever_compact_json_does(
        server: Application, ml: Any, browser: httpx.Client) -> None:
    """F5: the wizard's own guessed schema of 1,000 long-named columns was refused as too long
    (pretty-printed); compact, it fits. A schema typed pretty-printed is sent compactly; one that
    cannot fit, or data of more columns than a schema takes, say so."""
    server.context.objects.write_bytes("s3://wizard/wide.csv", wide_csv(1000))
    page = browser.get("/create/datasource", params={"location": "s3://wizard/wide.csv"}).text
    found = re.search(r'<textarea id="schema-json"[^>]*>([^<]*)</textarea>', page)
    assert found is not None
    schema = html.unescape(found.group(1))
    assert len(schema) <= MAX_SCHEMA_LENGTH and len(json.loads(schema)["attributes"]) == 1000
    token = token_of(browser, "/create/datasource")
    form = {"csrf_token": token, "location": "s3://wizard/wide.csv", "split": "all", "statistics": "1"}
    made = browser.post("/create/datasource", data={**form, "schema_json": schema, "id": "ds-wide"})
    assert made.status_code == 303, field_message(made.text, "schema")
    pretty = json.dumps(json.loads(schema), indent=2)
    assert len(pretty) > MAX_SCHEMA_LENGTH
    made = browser.post("/create/datasource", data={**form, "schema_json": pretty, "id": "ds-wide-pretty"})
    assert made.status_code == 303, field_message(made.text, "schema")
    server.context.objects.write_bytes("s3://wizard/wider.csv", wide_csv(1001))
    wider = browser.get("/create/datasource", params={"location": "s3://wizard/wider.csv"}).text
    assert "fewer columns" in field_message(wider, "location") and 'id="datasource-form"' not in wider
    too_long = json.dumps({**json.loads(schema), "attributes": json.loads(schema)["attributes"] * 2})
    refused = browser.post("/create/datasource", data={**form, "schema_json": too_long, "id": "ds-too-wide"})
    message = field_message(refused.text, "schema")
    assert refused.status_code == 400 and "fewer columns" in message and len(message) < 400
    assert too_long in html.unescape(refused.text)  # what was typed stays


def test_the_held_out_parts_of_a_datasource_of_the_longest_name_are_made(ml: Any, browser: httpx.Client) -> None:
    """The parts are named "<source name> (evaluation)": past the API's 1,024 characters for a
    source named at the limit, which refused the whole model."""
    ml.create_data_source_from_s3(DataSourceId="ds-long-name", DataSourceName="n" * 1024, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": "s3://wizard/table.csv", "DataSchema": TABLE_SCHEMA})
    made = browser.post("/create/model", data=model_form(browser, "ds-long-name", id="ml-long-name"))
    assert made.status_code == 303
    name = ml.get_data_source(DataSourceId="ml-long-name-eval")["Name"]
    assert len(name) <= 1024 and name.endswith("n (evaluation)")


def test_the_model_wizard_keeps_a_refused_datasource_id_and_chooses_none(ml: Any, browser: httpx.Client) -> None:
    """The ID typed beside the picker was lost when refused, and the picker showed the newest
    datasource as if chosen."""
    page = browser.get("/create/model", params={"datasource_id": " ds-nope "})
    assert "ResourceNotFoundException" in field_message(page.text, "datasource")
    assert 'id="pick-datasource-id" name="datasource_id" size="20" placeholder="ds-…" value="ds-nope"' in page.text
    picker = re.findall(r'<select id="pick-datasource".*?</select>', page.text, re.S)[0]
    assert "selected" not in picker and 'id="model-form"' not in page.text
    ml.create_data_source_from_s3(DataSourceId="ds-picked", DataSpec={
        "DataLocationS3": "s3://wizard/table.csv", "DataSchema": TABLE_SCHEMA})
    # a choice from the list after a refused ID typed (and kept) is not silently lost to it
    both = browser.get("/create/model", params={"datasource_id": "ds-nope", "datasource": "ds-picked"}).text
    assert "not both" in field_message(both, "datasource") and 'id="model-form"' not in both
    chosen = browser.get("/create/model", params={"datasource": "ds-picked"}).text
    picker = re.findall(r'<select id="pick-datasource".*?</select>', chosen, re.S)[0]
    assert picker.count("selected") == 1 and '<option value="ds-picked" selected>' in picker
