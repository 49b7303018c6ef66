"""Console pages rendered against a fake service: numbers shown, forms wired, bad input safe."""

from __future__ import annotations

import gzip
import html
import io
import json
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from openaml.console import build_console
from openaml.jobs.record_info import progress_info
from openaml.ml.data.statistics_document import (
    AttributeStatistics,
    CountedValues,
    DatasetStatistics,
    Histogram,
    NumericValues,
    Sketch,
    TargetStatistics,
)
from openaml.ml.prediction import RecordScorer
from openaml.ml.prediction.explanations import contributions
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import AttributeType, parse_schema
from openaml.ml.training import SGDParams, train_model
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.validation import Validation

from .conftest import FakeService

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its test client; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SCHEMA = {"version": "1.0", "targetAttributeName": "color", "dataFormat": "CSV",
          "dataFileContainsHeader": False,
          "attributes": [{"attributeName": "size", "attributeType": "NUMERIC"},
                         {"attributeName": "shape", "attributeType": "CATEGORICAL"},
                         {"attributeName": "color", "attributeType": "CATEGORICAL"}]}


@pytest.fixture
def client(fake: FakeService) -> Iterator[TestClient]:
    app = Starlette(routes=[Mount("/console", build_console(fake, fake.port))])
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def model_of(kind: str, document: dict[str, Any], rows: list[tuple[str, str, str]], recipe: str | None = None) -> Any:
    """A model of `kind` trained on `rows` (size, shape, and the target) of the schema `document`
    (its recipe: the default one without statistics, which leaves out NUMERIC attributes)."""
    schema = parse_schema(json.dumps(document))
    names = [a["attributeName"] for a in document["attributes"]]

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.RecordBatch.from_pydict({
            "__file": pa.array([0] * len(rows), pa.int32()), "__rejected": pa.array([False] * len(rows)),
            **{name: pa.array([r[j] for r in rows]) for j, name in enumerate(names)}})

    return train_model(kind, schema, recipe or default_recipe(schema, None), SGDParams(max_passes=3), None, batches)


def trained_model() -> Any:
    return model_of("MULTICLASS", SCHEMA, [("1", "round", "red"), ("8", "square", "blue"), ("5", "tri", "green")] * 6)


def text(html: str) -> str:
    """The page's text: tags are spaces, but a <wbr> (a place a location may wrap) is none."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.replace("<wbr>", "")))


def form_token(client: TestClient, page: str) -> str:
    """The CSRF token in the forms of `page` (fetching it also sets the client's token cookie)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert found is not None, f"no CSRF field on {page}"
    return found.group(1)


def test_overview_lists_entities_with_tags_and_updates_while_busy(fake: FakeService, client: TestClient) -> None:
    """While a job runs the page watches its entities' statuses (live.js asks /status) instead
    of reloading itself, which wiped what the user was typing."""
    fake.add("DataSource", "ds-1", Name="Training data")
    fake.add("MLModel", "ml-1", Name="Digits", MLModelType="MULTICLASS", Status="INPROGRESS")
    page = client.get("/console/")
    assert page.status_code == 200
    assert "Training data" in page.text and "ml-1" in page.text and "team=ml" in page.text
    assert 'http-equiv="refresh"' not in page.text and "/static/live.js" in page.text
    assert 'data-entity="models/ml-1" data-status="INPROGRESS"' in page.text
    fake.entities["MLModel"]["ml-1"]["Status"] = "COMPLETED"
    assert "/static/live.js" not in client.get("/console/").text


def test_the_status_of_watched_entities_is_answered_as_json(fake: FakeService, client: TestClient) -> None:
    fake.add("DataSource", "ds-1", Status="INPROGRESS")
    fake.add("MLModel", "ml-1", MLModelType="BINARY", Status="INPROGRESS")
    fake.set_info("MLModel", "ml-1", progress_info(TrainingProgress(10, (0.5, 0.4, 0.35))))
    answer = client.get("/console/status", params=[("e", "datasources/ds-1"), ("e", "models/ml-1"),
                                                    ("e", "models/ml-gone"), ("e", "nothing/x"), ("e", "models")])
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    found = answer.json()
    assert set(found) == {"datasources/ds-1", "models/ml-1"}
    assert found["datasources/ds-1"]["status"] == "INPROGRESS"
    assert found["models/ml-1"]["progress"] == {"pass": 3, "of": 10, "text": "Pass 3 of 10; last training loss 0.35"}
    assert client.get("/console/status", params=[("e", f"models/m{i}") for i in range(500)]).json() == {}


def test_list_passes_filter_and_sort_to_describe(fake: FakeService, client: TestClient) -> None:
    fake.add("DataSource", "ds-1", Name="alpha")
    fake.add("DataSource", "ds-2", Name="beta")
    page = client.get("/console/datasources", params={"var": "Name", "cmp": "Prefix", "value": "al", "order": "asc"})
    assert "ds-1" in page.text and "ds-2" not in page.text
    assert fake.calls[-1][1] == {"SortOrder": "asc", "Limit": 50, "FilterVariable": "Name", "Prefix": "al"}
    calls = len(fake.calls)
    bad = client.get("/console/datasources", params={"var": "Bogus"})
    assert bad.status_code == 400 and "Member must satisfy enum value set" in bad.text
    assert len(fake.calls) == calls  # refused by the API's validation, before the service


def test_unknown_entity_is_a_404_page(client: TestClient) -> None:
    page = client.get("/console/models/ml-missing")
    assert page.status_code == 404 and "does not exist" in page.text


def test_rename_and_delete_go_through_the_service(fake: FakeService, client: TestClient) -> None:
    fake.add("DataSource", "ds-1", Name="old")
    fake.add("Evaluation", "ev-1", MLModelId="ml-x")
    token = form_token(client, "/console/datasources/ds-1")
    moved = client.post("/console/datasources/ds-1/rename", data={"name": "new name", "csrf_token": token},
                        follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].startswith("/console/datasources/ds-1?notice=")
    assert ("update_data_source", {"DataSourceId": "ds-1", "DataSourceName": "new name"}) in fake.calls
    gone = client.post("/console/evaluations/ev-1/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Deleted ev-1" in gone.text and "ev-1" not in fake.entities["Evaluation"]
    # an empty name clears it (the API allows that): the notice says so, not "Renamed"
    cleared = client.post("/console/datasources/ds-1/rename", data={"name": "", "csrf_token": token},
                          follow_redirects=True)
    assert "Name of ds-1 cleared" in text(cleared.text) and "Renamed" not in text(cleared.text)


def test_only_notices_the_console_wrote_are_shown(fake: FakeService, client: TestClient) -> None:
    """A link's ?notice= text is shown only with the console's signature: otherwise any page
    could be made to say "Model deleted" or "Your key expired, call ...". The notice of a real
    action carries it."""
    fake.add("DataSource", "ds-1", Name="old")
    forged = client.get("/console/datasources/ds-1?notice=Deleted%20every%20model").text
    assert "Deleted every model" not in forged and 'class="notice"' not in forged
    token = form_token(client, "/console/datasources/ds-1")
    moved = client.post("/console/datasources/ds-1/rename", data={"name": "new", "csrf_token": token},
                        follow_redirects=False)
    location = moved.headers["location"]
    assert "&sig=" in location
    shown = client.get(location).text
    assert 'class="notice"' in shown and "Renamed" in text(shown)
    other = location.replace("notice=", "notice=Deleted%20every%20model%20")  # same signature, other text
    assert 'class="notice"' not in client.get(other).text


def test_deleted_entities_offer_no_rename_or_delete(fake: FakeService, client: TestClient) -> None:
    fake.add("DataSource", "ds-gone", Name="gone", Status="DELETED")
    fake.add("DataSource", "ds-here", Name="here")
    gone = client.get("/console/datasources/ds-gone").text
    assert "Deleted: it can no longer be renamed or deleted." in text(gone)
    assert "/rename" not in gone and "/delete" not in gone
    here = client.get("/console/datasources/ds-here").text
    assert "/console/datasources/ds-here/rename" in here and "/console/datasources/ds-here/delete" in here


def test_datasource_insights_and_pagination(fake: FakeService, client: TestClient) -> None:
    counts = {"7": 6, "3": 4}
    attributes = {"label": AttributeStatistics(AttributeType.CATEGORICAL, 0, 0, 10,
                                               CountedValues(2, counts, truncated=False))}
    attributes |= {f"pixel{i}": AttributeStatistics(AttributeType.NUMERIC, i, 0, 10, NumericValues(
        distinct=2, min=0.0, max=255.0, mean=12.5 + i, median=0.0, stddev=3.0,
        histogram=Histogram(list(range(21)), [1] * 20), sketch=Sketch([0.0, 255.0], [5, 5], True)))
        for i in range(60)}
    statistics = DatasetStatistics(10, TargetStatistics("label", AttributeType.CATEGORICAL, 10, counts),
                                   attributes)
    fake.add("DataSource", "ds-1", Name="digits", DataLocationS3="s3://b/train.csv", DataSizeInBytes=1234,
             NumberOfFiles=1, DataSourceSchema=json.dumps(SCHEMA))
    fake.write_artifact("DataSource", "ds-1", "ingest.json", {
        "recordsRead": 10, "rejectedRecords": 0, "selectedRecords": 10, "recordsWithInvalidValues": 0,
        "statistics": statistics.to_json()})
    page = client.get("/console/datasources/ds-1")
    body = text(page.text)
    assert "61 attribute(s), page 1 of 3" in body and "s3://b/train.csv" in body and "1,234" in body
    assert "pixel23" in body and "pixel24" not in body
    assert "Distribution of the target label" in page.text
    second = text(client.get("/console/datasources/ds-1", params={"page": 2}).text)
    assert "pixel24" in second and "Mean 36.5" not in second  # rows closed: no detail
    opened = text(client.get("/console/datasources/ds-1", params={"page": 2, "attr": "pixel24"}).text)
    assert "Mean 36.5" in opened and "Mean 37.5" not in opened  # only the row opened
    found = client.get("/console/datasources/ds-1", params={"q": "pixel59", "attr": "pixel59"}).text
    assert "1 attribute(s)" in text(found) and "Missing 59" in text(found)
    assert "85.5 %" in text(found)  # missing share of its records: 59 of 69


def test_the_attribute_table_sorts_by_each_column(fake: FakeService, client: TestClient) -> None:
    """One table of every attribute, sorted by the column chosen (either way), each row with an
    inline chart, the sort kept by the filter and the pages."""
    attributes = {f"n{i}": AttributeStatistics(AttributeType.NUMERIC, missing=i, invalid=9 - i, count=10,
                                               values=NumericValues(distinct=i + 1, correlation_to_target=(i - 5) / 10,
                                                                    histogram=Histogram([0, 1, 2], [i, 1])))
                  for i in range(10)}
    attributes["c"] = AttributeStatistics(AttributeType.CATEGORICAL, 0, 0, 19, CountedValues(3, {"a": 10, "b": 9},
                                                                                          truncated=False))
    statistics = DatasetStatistics(19, None, attributes)
    fake.add("DataSource", "ds-s", DataSourceSchema=json.dumps(SCHEMA))
    fake.write_artifact("DataSource", "ds-s", "ingest.json", {"statistics": statistics.to_json()})

    def order(**query: str) -> list[str]:
        page = client.get("/console/datasources/ds-s", params=query).text
        table = page.split('id="attribute-table"', 1)[1].split("</table>", 1)[0]
        return re.findall(r'aria-expanded="false">([^<]+)</a>', table)

    assert order()[:3] == ["n0", "n1", "n2"]  # schema order
    assert order(sort="missing", dir="desc")[:3] == ["n9", "n8", "n7"]
    assert order(sort="invalid", dir="desc")[:2] == ["n0", "n1"]
    assert order(sort="distinct")[:2] == ["n0", "n1"] and order(sort="distinct")[-1] == "n9"
    assert order(sort="correlation", dir="desc")[:2] == ["n0", "n9"]  # by size: -0.5, then 0.4
    assert order(sort="type")[0] == "c" and order(sort="name", dir="desc")[0] == "n9"
    assert order(sort="bogus") == order()
    page = client.get("/console/datasources/ds-s", params={"sort": "missing", "dir": "desc"}).text
    assert '<svg class="spark"' in page and 'aria-sort="descending"' in page
    assert '<input type="hidden" name="sort" value="missing">' in page  # the filter keeps the sort


def test_datasource_without_statistics_says_not_available(fake: FakeService, client: TestClient) -> None:
    fake.add("DataSource", "ds-2", Status="PENDING")
    page = client.get("/console/datasources/ds-2")
    assert page.status_code == 200 and "Statistics are not available" in page.text


def test_model_page_shows_passes_and_weights(fake: FakeService, client: TestClient) -> None:
    model = trained_model()
    fake.add("MLModel", "ml-1", Name="colors", MLModelType="MULTICLASS", SizeInBytes=99,
             TrainingParameters={"sgd.maxPasses": "3"}, Recipe=model.recipe, FinishedAt="x")
    with fake.ctx.artifacts.open_write("MLModel", "ml-1", "model.bin") as out:
        model.save(out)
    fake.set_info("MLModel", "ml-1", progress_info(TrainingProgress(3, (1.0, 0.5, 1 / 3))))
    page = client.get("/console/models/ml-1").text
    body = text(page)
    assert "Pass 3 of 3; last training loss 0.3333" in body and "Training loss per pass" in page
    assert "Largest weights for blue" in body and "shape=square" in body


def test_model_page_shows_the_cross_validation_of_the_passes(fake: FakeService, client: TestClient) -> None:
    fake.add("MLModel", "ml-cv", MLModelType="MULTICLASS", TrainingParameters={"sgd.maxPasses": "10"})
    found = Validation((0.9, 0.6, 0.5, 0.55, 0.58), (0.4, 0.7, 0.75, 0.8, 0.78), by_metric=True)
    fake.set_info("MLModel", "ml-cv", progress_info(TrainingProgress(10, validation=found)))
    body = text(client.get("/console/models/ml-cv").text)
    assert "Cross-validating the number of passes: pass 5 of up to 10" in body  # before training starts
    done = TrainingProgress(10, (1.2, 0.7, 0.6, 0.4), found, chosen_passes=found.chosen_passes())
    fake.set_info("MLModel", "ml-cv", progress_info(done))
    page = client.get("/console/models/ml-cv").text
    body = text(page)
    assert "Pass 4 of 4; last training loss 0.4" in body
    assert "4 of up to 10 passes had the best macro-average F1" in body and "4 (chosen)" in body
    assert "Cross-validated held-out loss per pass" in page and "Cross-validated macro-average F1 per pass" in page
    odd = {"training": {"pass": 0, "max_passes": 10, "losses": [], "first_pass": 1, "chosen_passes": 0,
                        "validation_losses": [None, 0.5, 0.4], "validation_metrics": [0.5]}}  # short, not finite
    fake.set_info("MLModel", "ml-cv", odd)
    page = client.get("/console/models/ml-cv").text
    assert "Cross-validating the number of passes: pass 3 of up to 10" in text(page)
    assert "<figure>None" not in page and "nan" not in text(page)  # nothing charted, blanks in the table
    plain = TrainingProgress(10, (1.0, 0.5))
    fake.set_info("MLModel", "ml-cv", progress_info(plain))
    assert "Cross-validation" not in text(client.get("/console/models/ml-cv").text)


def test_model_page_of_a_model_trained_before_every_loss_was_kept(fake: FakeService, client: TestClient) -> None:
    """The earlier progress layout (the last pass alone) still shows."""
    fake.add("MLModel", "ml-old", MLModelType="BINARY", FinishedAt="x")
    fake.set_info("MLModel", "ml-old", {"training": {"pass": 4, "max_passes": 10, "loss": 0.25}})
    body = text(client.get("/console/models/ml-old").text)
    assert "Pass 4 of 10; last training loss 0.25" in body
    assert "nan" not in body.lower()  # the passes before the last: not known, not "nan"
    assert "1 not available 2 not available 3 not available 4 0.25" in body


def test_contributions_are_feature_values_times_weights() -> None:
    model = trained_model()
    record = {"size": "8", "shape": "square"}
    names = model.pipeline.feature_names()
    row = pa.RecordBatch.from_pydict(  # the batch path's features of the same record
        {a.name: pa.array([record.get(a.name)], pa.string()) for a in model.schema.attributes})
    x = model.pipeline.transform(row).toarray()[0]
    for output in range(len(model.classes)):
        expected = {names[i]: x[i] * model.weights[i, output] for i in np.flatnonzero(x)}
        got = dict(contributions(RecordScorer(model), record, output)[0])
        assert got == pytest.approx({k: v for k, v in expected.items() if v != 0})
        z = x @ model.weights[:, output] + model.bias[output]
        assert sum(got.values()) + model.bias[output] == pytest.approx(z)


def test_predict_page(fake: FakeService, client: TestClient) -> None:
    model = trained_model()
    fake.add("MLModel", "ml-1", MLModelType="MULTICLASS", FinishedAt="x")
    with fake.ctx.artifacts.open_write("MLModel", "ml-1", "model.bin") as out:
        model.save(out)
    form = client.get("/console/models/ml-1/predict")
    assert 'name="attr:size"' in form.text and 'name="attr:color"' not in form.text
    token = form_token(client, "/console/models/ml-1/predict")
    page = client.post("/console/models/ml-1/predict", data={"pasted": "8,square", "csrf_token": token})
    assert page.status_code == 200
    assert 'id="predicted-label">blue<' in page.text and "shape=square" in page.text
    # the API's Predict would refuse: the model has no endpoint (found by an outside test)
    assert "The API's Predict needs the model's real-time endpoint first" in page.text
    wrong = client.post("/console/models/ml-1/predict", data={"pasted": "1,2,3", "csrf_token": token})
    assert wrong.status_code == 400 and "The pasted record has 3 values; the model expects 2" in wrong.text
    # a pasted record beside filled fields: which one was meant is asked, not guessed (the
    # pasted one was scored silently; found by an outside test)
    both = client.post("/console/models/ml-1/predict", data={"pasted": "8,square", "attr:size": "1",
                                                             "csrf_token": token})
    assert both.status_code == 400 and "not both" in both.text and 'id="predicted-label"' not in both.text
    assert 'value="1"' in both.text and ">8,square</textarea>" in both.text
    fields = client.post("/console/models/ml-1/predict", data={"pasted": " ", "attr:size": "8", "csrf_token": token})
    assert fields.status_code == 200 and 'id="predicted-label"' in fields.text


def binary_model(recipe: str | None = None) -> Any:
    return model_of("BINARY", {**SCHEMA, "targetAttributeName": "big", "attributes": [
        *SCHEMA["attributes"][:2], {"attributeName": "big", "attributeType": "BINARY"}]},
        [("1", "round", "0"), ("8", "square", "1"), ("5", "tri", "1"), ("2", "round", "0")] * 6, recipe)


@pytest.mark.parametrize("saved", [None, 0.73, 0.0])
def test_a_binary_prediction_shows_the_probability_and_the_threshold_that_made_its_label(
        fake: FakeService, client: TestClient, saved: float | None) -> None:
    """Predict keys a BINARY score by the predicted label: the page once read "Score 0: 0.64"
    for a 0.64 chance of class 1, labelled by a saved threshold it never showed; a saved
    threshold of 0 was read as none (0.5), where Predict labels every record 1."""
    binary_model().save(buffer := io.BytesIO())
    extra = {"ScoreThreshold": saved, "ScoreThresholdLastUpdatedAt": "2026-12-05"} if saved is not None else {}
    fake.add("MLModel", "ml-b", MLModelType="BINARY", FinishedAt="x", **extra)
    fake.write_artifact("MLModel", "ml-b", "model.bin", buffer.getvalue())
    token = form_token(client, "/console/models/ml-b/predict")
    page = client.post("/console/models/ml-b/predict", data={"pasted": "5,tri", "csrf_token": token})
    body = html.unescape(text(page.text))
    probability = float(re.search(r'id="probability">([0-9.e-]+)<', page.text).group(1))
    threshold = saved if saved is not None else 0.5
    label = re.search(r'id="predicted-label">(\w+)<', page.text).group(1)
    assert label == ("1" if probability >= threshold else "0") and "Score 0" not in body and "Score 1" not in body
    assert "P(class 1)" in body and f"label 1 when P(class 1) ≥ {threshold:g}" in body
    assert ("saved on the model" if saved is not None else "the default") in body
    assert body.index("Prediction") < body.index("Try a prediction")  # the result first
    assert '"predictedScores"' in html.unescape(page.text)  # the API's own answer, beside it


def test_the_prediction_page_says_what_the_model_did_with_a_record_it_could_not_fully_use(
        fake: FakeService, client: TestClient) -> None:
    """Empty records, unknown attributes and unreadable values are scored as Predict scores
    them, and the page says so instead of answering silently."""
    binary_model('{"outputs": ["ALL_INPUTS"]}').save(buffer := io.BytesIO())
    fake.add("MLModel", "ml-b", MLModelType="BINARY", FinishedAt="x")
    fake.write_artifact("MLModel", "ml-b", "model.bin", buffer.getvalue())
    token = form_token(client, "/console/models/ml-b/predict")

    def warnings(**form: str) -> str:
        page = client.post("/console/models/ml-b/predict", data={**form, "csrf_token": token})
        assert page.status_code == 200, page.text[:300]
        found = re.search(r'<ul class="alerts" id="record-warnings"[^>]*>(.*?)</ul>', page.text, re.S)
        return html.unescape(text(found.group(1))) if found else ""

    assert "No attribute the model reads has a value" in warnings(pasted="{}")
    shown = warnings(pasted='{"size": "abc", "colour": "red", "big": "1"}')
    assert "Not in the model's schema, ignored: colour." in shown
    assert "'big' is the model's target" in shown
    assert "Not a number, so read as missing: size='abc'." in shown and "Missing, as the model treats" in shown
    assert warnings(pasted="8,square") == ""  # a complete, readable record: nothing to say
    assert "no feature for" in warnings(pasted="8,hexagon") and "shape='hexagon'" in warnings(pasted="8,hexagon")
    assert "shape" in warnings(**{"attr:size": "8"})  # the form's empty field is a missing input
    # white space a CSV field keeps (no-break, ideographic) is part of the value, as Predict reads it
    shown = warnings(pasted='{"size": "\\u00a08", "shape": "\\u3000square"}')
    assert "Not a number, so read as missing: size='\\xa08'." in shown and "shape='\\u3000square'" in shown
    assert warnings(pasted='{"size": " 8\\t", "shape": " square "}') == ""


def test_the_console_predicts_with_the_model_predict_holds(fake: FakeService, client: TestClient) -> None:
    """One loaded copy of a model: the one an endpoint holds is the one the console uses."""
    trained_model().save(buffer := io.BytesIO())
    fake.add("MLModel", "ml-1", MLModelType="MULTICLASS", FinishedAt="x")
    fake.write_artifact("MLModel", "ml-1", "model.bin", buffer.getvalue())
    held = fake.ctx.models.get("ml-1")   # as a mounted endpoint holds it
    scorer = held.scorer
    token = form_token(client, "/console/models/ml-1/predict")
    page = client.post("/console/models/ml-1/predict", data={"pasted": "8,square", "csrf_token": token})
    assert page.status_code == 200 and 'id="predicted-label">blue<' in page.text
    assert fake.ctx.models.get("ml-1") is held and held.scorer is scorer


def test_multiclass_evaluation(fake: FakeService, client: TestClient) -> None:
    fake.add("MLModel", "ml-1", MLModelType="MULTICLASS")
    fake.add("Evaluation", "ev-1", MLModelId="ml-1", PerformanceMetrics={"Properties": {"MulticlassAvgFScore": "0.75"}})
    fake.write_artifact("Evaluation", "ev-1", "report.json", {
        "baseline": 0.2, "classes": ["a", "b"], "confusion_matrix": [[8, 2], [1, 9]],
        "alerts": ["The evaluation uses the training data"]})
    page = client.get("/console/evaluations/ev-1")
    body = text(page.text)
    assert "0.75 MulticlassAvgFScore 0.2 baseline" in body and "Better than the baseline" in body
    assert "a 0.8889 0.8 0.8421 10" in body  # precision 8/9, recall 8/10, F1
    assert "true a predicted as b : 2 (20.0% of a)" in body
    assert "The evaluation uses the training data" in body


def test_evaluation_without_report_degrades(fake: FakeService, client: TestClient) -> None:
    fake.add("MLModel", "ml-1", MLModelType="BINARY")
    fake.add("Evaluation", "ev-2", MLModelId="ml-1", Status="INPROGRESS")
    page = client.get("/console/evaluations/ev-2")
    assert page.status_code == 200 and "Score histograms: not available" in page.text
    fake.write_artifact("Evaluation", "ev-2", "report.json", b"not json")
    assert client.get("/console/evaluations/ev-2").status_code == 200


def test_binary_evaluation_threshold_and_save(fake: FakeService, client: TestClient) -> None:
    fake.add("MLModel", "ml-1", MLModelType="BINARY", ScoreThreshold=0.5)
    fake.add("Evaluation", "ev-1", MLModelId="ml-1", PerformanceMetrics={"Properties": {"BinaryAUC": "0.9"}})
    fake.write_artifact("Evaluation", "ev-1", "report.json", {
        "baseline": 0.5, "histogram_edges": [0, 0.25, 0.5, 0.75, 1],
        "histogram_positive": [0, 1, 3, 6], "histogram_negative": [5, 3, 1, 1]})
    page = client.get("/console/evaluations/ev-1")
    body = text(page.text)
    assert "Accuracy 0.85 Precision 0.8182 Recall 0.9 False positive rate 0.2" in body
    assert "True positives 9 False positives 2 True negatives 8 False negatives 1" in body
    assert "ROC curve" in page.text and "threshold.js" in page.text
    token = form_token(client, "/console/evaluations/ev-1")
    saved = client.post("/console/models/ml-1/threshold",
                        data={"threshold": "0.75", "next": "/console/evaluations/ev-1", "csrf_token": token})
    assert "Score threshold of ml-1 saved: 0.75" in saved.text
    assert fake.entities["MLModel"]["ml-1"]["ScoreThreshold"] == 0.75
    refused = client.post("/console/models/ml-1/threshold", data={"threshold": "7", "csrf_token": token})
    assert refused.status_code == 400 and "InvalidInputException" in refused.text


def test_binary_evaluation_charts_mark_the_threshold_on_exact_curves(fake: FakeService, client: TestClient) -> None:
    """The saved threshold is drawn on the score histogram and ringed on the ROC and
    precision-recall curves; the precision-recall curve has the report's exact points on
    [0, 1] axes and no chance diagonal (which means nothing there). A threshold above every
    score has no precision: "not available", not 0."""
    points = [[0.0, 0.0, 1.0]] + [[min(1.0, k / 40), min(1.0, k / 25), 1 - k / 50] for k in range(1, 50)]
    fake.add("MLModel", "ml-1", MLModelType="BINARY", ScoreThreshold=0.62)
    fake.add("Evaluation", "ev-1", MLModelId="ml-1", PerformanceMetrics={"Properties": {"BinaryAUC": "0.8"}})
    fake.write_artifact("Evaluation", "ev-1", "report.json", {
        "baseline": 0.5, "histogram_edges": [0, 0.25, 0.5, 0.75, 1],
        "histogram_positive": [0, 5, 5, 15], "histogram_negative": [10, 10, 10, 10], "roc": points})
    page = client.get("/console/evaluations/ev-1").text
    charts = {title: page.split(f'aria-label="{title}"', 1)[1].split("</svg>", 1)[0]
              for title in ("Scores of records whose true label is 1 and 0", "ROC curve", "Precision-recall curve")}
    for chart in charts.values():
        assert 'class="marker"' in chart and "threshold 0.62" in chart
    pr = charts["Precision-recall curve"]
    assert 'class="guide"' not in pr and 'class="guide"' in charts["ROC curve"]
    assert len(re.search(r'<polyline points="([^"]+)"', pr).group(1).split()) == 49
    assert ">0</text>" in pr and ">1</text>" in pr  # both axes from 0 to 1
    fake.entities["MLModel"]["ml-1"]["ScoreThreshold"] = 1.0
    assert 'id="t-precision">not available<' in client.get("/console/evaluations/ev-1").text


def test_regression_evaluation(fake: FakeService, client: TestClient) -> None:
    fake.add("MLModel", "ml-1", MLModelType="REGRESSION")
    fake.add("Evaluation", "ev-1", MLModelId="ml-1", PerformanceMetrics={"Properties": {"RegressionRMSE": "1.5"}})
    fake.write_artifact("Evaluation", "ev-1", "report.json", {
        "baseline": 3.0, "residual_histogram": {"edges": [-1, 0, 1], "counts": [4, 6]},
        "predicted_vs_actual": [[1, 1.5], [2, 1.8]]})
    page = client.get("/console/evaluations/ev-1")
    assert "Residuals (actual minus predicted)" in page.text and "Predicted against actual" in page.text
    assert "Better than the baseline" in page.text
    residuals = page.text.split('aria-label="Residuals (actual minus predicted)"', 1)[1].split("</svg>", 1)[0]
    assert 'class="marker"' in residuals and ">zero<" in residuals  # the zero line
    scatter = page.text.split('aria-label="Predicted against actual values"', 1)[1].split("</svg>", 1)[0]
    assert scatter.count("<circle") == 2 and "y = x" in scatter  # a dot per pair, and the line y = x


def test_batch_prediction_preview_and_download(fake: FakeService, client: TestClient) -> None:
    result = "s3://out/preds/batch-prediction/result/bp-1-test.csv.gz"
    data = gzip.compress(b"trueLabel,bestAnswer,score\n1,1,9E-1\n0,0,1E-1\n")
    fake.ctx.objects.write_bytes(result, data)
    fake.ctx.objects.write_bytes("s3://out/preds/batch-prediction/bp-1.manifest",
                                 json.dumps({"s3://in/test.csv": result}).encode())
    fake.add("BatchPrediction", "bp-1", OutputUri="s3://out/preds", TotalRecordCount=2, InvalidRecordCount=0)
    body = text(client.get("/console/batchpredictions/bp-1").text)
    assert "bestAnswer" in body and "9E-1" in body and "Records 2" in body
    download = client.get("/console/batchpredictions/bp-1/download", params={"file": 0})
    assert download.status_code == 200 and download.content == data
    assert client.get("/console/batchpredictions/bp-1/download", params={"file": 5}).status_code == 404
    for wrong in ("-1", "-2", "x", ""):  # -1 served the last file (Python's negative index)
        assert client.get("/console/batchpredictions/bp-1/download", params={"file": wrong}).status_code == 404


def test_every_page_names_an_icon_that_is_served(fake: FakeService, client: TestClient) -> None:
    """Browsers asked for /favicon.ico on every page, a 404 each time."""
    page = client.get("/console/").text
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert icon is not None and icon.group(1) == "/console/static/favicon.svg"
    served = client.get(icon.group(1))
    assert served.status_code == 200 and served.text.startswith("<svg")


def test_static_files_served(client: TestClient) -> None:
    assert "prefers" in client.get("/console/static/console.css").text or \
        client.get("/console/static/console.css").status_code == 200
    assert "threshold" in client.get("/console/static/threshold.js").text


@pytest.mark.parametrize(("split", "words"), [
    (None, "all records"),
    ('{"splitting": {"percentBegin": 0, "percentEnd": 70}}', "records at 0-70 % in file order"),
    ('{"splitting": {"percentBegin": 70, "percentEnd": 100, "strategy": "random", '
     '"strategyParams": {"randomSeed": "s1"}}}', 'records at 70-100 %, drawn at random (seed "s1")'),
    ('{"splitting": {"percentBegin": 12.5, "percentEnd": 40, "complement": true}}',
     "all records but those at 12.5-40 % in file order"),
    ("{not json", "{not json"),
])
def test_splits_are_told_in_words(split: str | None, words: str) -> None:
    from openaml.console.insights import describe_split

    assert describe_split(split) == words


def test_locations_and_splits_read_as_words_on_datasource_and_evaluation_pages(
        fake: FakeService, client: TestClient) -> None:
    """The split is told in words (it showed as raw JSON), an evaluation's data says which
    part of the file it evaluated, and long locations wrap after a slash, not inside a name."""
    location = "s3://a-rather-long-bucket-name/and/a/deep/folder/with-a-long-file-name-2026-12-05.csv"
    split = '{"splitting": {"percentBegin": 70, "percentEnd": 100}}'
    fake.add("DataSource", "ds-ev", DataLocationS3=location, DataRearrangement=split)
    fake.add("MLModel", "ml-1", MLModelType="BINARY")
    fake.add("Evaluation", "ev-1", MLModelId="ml-1", EvaluationDataSourceId="ds-ev", InputDataLocationS3=location)
    datasource = client.get("/console/datasources/ds-ev").text
    assert "Split records at 70-100 % in file order" in text(datasource) and "percentBegin" not in datasource
    assert "s3://<wbr>a-rather-long-bucket-name/<wbr>and/<wbr>" in datasource
    evaluation = text(client.get("/console/evaluations/ev-1").text)
    assert f"Data {location}, records at 70-100 % in file order" in evaluation
    del fake.entities["DataSource"]["ds-ev"]  # its datasource gone: the evaluation still reads
    assert f"Data {location}, all records" in text(client.get("/console/evaluations/ev-1").text)


def test_a_listing_page_keeps_its_number_beyond_the_tokens_it_keeps(fake: FakeService, client: TestClient) -> None:
    fake.add("DataSource", "ds-1")
    page = client.get("/console/datasources", params={"pages": ".".join(f"t{i}" for i in range(80)), "p": "81"})
    assert "Page 81" in text(page.text)
    previous = html.unescape(re.search(r'<a href="([^"]+)" rel="prev">', page.text).group(1))
    assert "p=80" in previous and previous.count("t") <= 60  # at most MAX_PAGES tokens travel


def test_the_comparison_says_when_it_shows_fewer_models_than_chosen(fake: FakeService, client: TestClient) -> None:
    for i in range(8):
        fake.add("MLModel", f"ml-{i}", MLModelType="BINARY")
    page = client.get("/console/compare", params=[("m", f"ml-{i}") for i in range(8)]).text
    assert "8 models were chosen: the first 6 are compared." in text(page)


def test_a_job_log_is_served_as_text_for_the_page_that_follows_it(fake: FakeService, client: TestClient) -> None:
    fake.add("MLModel", "ml-1", MLModelType="BINARY", Status="INPROGRESS")
    fake.write_artifact("MLModel", "ml-1", "job.log", b"2026-12-05T10:00:00Z MLModel ml-1: started\n")
    page = client.get("/console/models/ml-1/log")
    assert 'id="job-log"' in page.text and "/static/live.js" in page.text
    raw = client.get("/console/models/ml-1/log", params={"raw": "1"})
    assert raw.headers["content-type"].startswith("text/plain") and raw.text.endswith("ml-1: started\n")


def test_a_regression_prediction_explains_the_predicted_value_in_the_targets_units(
        fake: FakeService, client: TestClient) -> None:
    """Its contributions were standardized (9.41 predicted, 2.02 explained): they now add up,
    with the baseline, to the predicted value, and the page says so."""
    schema = {**SCHEMA, "targetAttributeName": "weight", "attributes": [
        *SCHEMA["attributes"][:2], {"attributeName": "weight", "attributeType": "NUMERIC"}]}
    model = model_of("REGRESSION", schema, [("1", "round", "10"), ("8", "square", "80"), ("5", "tri", "52")] * 6)
    model.save(buffer := io.BytesIO())
    fake.add("MLModel", "ml-r", MLModelType="REGRESSION", FinishedAt="x")
    fake.write_artifact("MLModel", "ml-r", "model.bin", buffer.getvalue())
    token = form_token(client, "/console/models/ml-r/predict")
    page = client.post("/console/models/ml-r/predict", data={"pasted": "8,square", "csrf_token": token})
    assert "in the target's units: with the baseline they sum to the predicted value" in html.unescape(page.text)
    parts, baseline, rest = contributions(RecordScorer(model), {"size": "8", "shape": "square"}, 0)
    predicted = float(re.search(r'"predictedValue": ([0-9.e+-]+)', html.unescape(page.text)).group(1))
    assert baseline + sum(v for _, v in parts) + rest == pytest.approx(predicted, rel=1e-6)


def test_the_prediction_page_warns_only_of_the_attributes_the_recipe_reads(
        fake: FakeService, client: TestClient) -> None:
    """A model whose recipe reads shape alone: a missing size changes nothing and was said to
    be missing, a given one is ignored and was read as any input."""
    binary_model('{"outputs": ["shape"]}').save(buffer := io.BytesIO())
    fake.add("MLModel", "ml-s", MLModelType="BINARY", FinishedAt="x")
    fake.write_artifact("MLModel", "ml-s", "model.bin", buffer.getvalue())
    token = form_token(client, "/console/models/ml-s/predict")

    def warnings(pasted: str) -> str:
        page = client.post("/console/models/ml-s/predict", data={"pasted": pasted, "csrf_token": token})
        found = re.search(r'<ul class="alerts" id="record-warnings"[^>]*>(.*?)</ul>', page.text, re.S)
        return html.unescape(text(found.group(1))) if found else ""

    assert warnings('{"shape": "square"}') == ""
    ignored = "Read by no output of the model's recipe, so ignored: size."
    assert warnings('{"shape": "square", "size": "abc"}').strip() == ignored
    assert "No attribute the model reads has a value" in warnings('{"size": "8"}')
