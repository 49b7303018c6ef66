"""The console in headless Chromium against a real server: MNIST and a BINARY model.

Skipped when Chromium is absent (install Debian's `chromium`; never `playwright install`).
Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / "examples" / "mnist"
SHOTS = REPO / "test-artifacts" / "console"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
]


def make_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("machinelearning", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=Config(retries={"max_attempts": 1}, read_timeout=120))


def head_gz(path: Path, lines: int) -> bytes:
    with gzip.open(path, "rt") as stream:
        return gzip.compress("".join(next(stream) for _ in range(lines)).encode())


def wait(ml: Any, calls: dict[str, Any], timeout: float = 180) -> dict[str, dict[str, Any]]:
    deadline, states = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        states = {name: get() for name, get in calls.items()}
        if all(s["Status"] in ("COMPLETED", "FAILED") for s in states.values()):
            break
        time.sleep(0.5)
    failed = {n: s.get("Message") for n, s in states.items() if s["Status"] != "COMPLETED"}
    if failed:
        pytest.fail(f"jobs did not complete (engine?): {failed}")
    return states


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from openaml.server.embedded import running_server

    with running_server(data_dir=tmp_path_factory.mktemp("console"), workers=2) as app:
        put = app.context.objects.write_bytes
        put("s3://mnist/train.csv.gz", head_gz(MNIST / "data" / "train.csv.gz", 1501))
        put("s3://mnist/test.csv.gz", head_gz(MNIST / "data" / "test.csv.gz", 201))
        for name in ("train.schema.json", "batch.schema.json", "recipe.json"):
            put(f"s3://mnist/{name}", (MNIST / name).read_bytes())
        rng = random.Random(7)
        rows = []
        for _ in range(400):
            x = rng.uniform(-3, 3)
            rows.append(f"{x:.4f},{rng.choice('ab')},{int(x + rng.gauss(0, 1) > 0)}")
        put("s3://bin/data.csv", ("\n".join(rows) + "\n").encode())
        ml = make_client(app.settings.base_url)
        split = lambda a, b: json.dumps({"splitting": {"percentBegin": a, "percentEnd": b}})  # noqa: E731
        for ds, (a, b) in (("ds-train", (0, 70)), ("ds-eval", (70, 100))):
            ml.create_data_source_from_s3(
                DataSourceId=ds, DataSourceName=f"MNIST {ds}", ComputeStatistics=True, DataSpec={
                "DataLocationS3": "s3://mnist/train.csv.gz", "DataSchemaLocationS3": "s3://mnist/train.schema.json",
                "DataRearrangement": split(a, b)})
        ml.create_data_source_from_s3(DataSourceId="ds-batch", DataSpec={
            "DataLocationS3": "s3://mnist/test.csv.gz", "DataSchemaLocationS3": "s3://mnist/batch.schema.json"})
        ml.create_ml_model(MLModelId="ml-mnist", MLModelName="MNIST", MLModelType="MULTICLASS",
                           TrainingDataSourceId="ds-train", RecipeUri="s3://mnist/recipe.json",
                           Parameters={"sgd.maxPasses": "3"})
        ml.create_evaluation(EvaluationId="ev-mnist", MLModelId="ml-mnist", EvaluationDataSourceId="ds-eval")
        ml.create_batch_prediction(BatchPredictionId="bp-mnist", MLModelId="ml-mnist",
                                   BatchPredictionDataSourceId="ds-batch", OutputUri="s3://out/mnist/")
        schema = {"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": False,
                  "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                                 {"attributeName": "c", "attributeType": "CATEGORICAL"},
                                 {"attributeName": "y", "attributeType": "BINARY"}]}
        for ds, (a, b) in (("ds-bin-train", (0, 70)), ("ds-bin-eval", (70, 100))):
            ml.create_data_source_from_s3(DataSourceId=ds, ComputeStatistics=True, DataSpec={
                "DataLocationS3": "s3://bin/data.csv", "DataSchema": json.dumps(schema),
                "DataRearrangement": split(a, b)})
        ml.create_ml_model(MLModelId="ml-bin", MLModelName="binary", MLModelType="BINARY",
                           TrainingDataSourceId="ds-bin-train")
        ml.create_evaluation(EvaluationId="ev-bin", MLModelId="ml-bin", EvaluationDataSourceId="ds-bin-eval")
        ml.add_tags(Tags=[{"Key": "project", "Value": "digits"}], ResourceId="ml-mnist", ResourceType="MLModel")
        states = wait(ml, {
            "ds-train": lambda: ml.get_data_source(DataSourceId="ds-train"),
            "model": lambda: ml.get_ml_model(MLModelId="ml-mnist"),
            "evaluation": lambda: ml.get_evaluation(EvaluationId="ev-mnist"),
            "batch": lambda: ml.get_batch_prediction(BatchPredictionId="bp-mnist"),
            "bin-evaluation": lambda: ml.get_evaluation(EvaluationId="ev-bin"),
        })
        yield {"app": app, "ml": ml, "states": states, "console": f"{app.settings.base_url}/console"}



def new_page(context: Any, violations: list[str]) -> Any:
    """A tab that notes every Content-Security-Policy violation (a blocked script or style)."""
    tab = context.new_page()
    tab.on("console", lambda message: violations.append(message.text)
           if "Content Security Policy" in message.text else None)
    return tab


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    yield new_page(context, violations)
    context.close()
    assert violations == []


def completed(page: Any, timeout: float = 120_000) -> None:
    """Wait until the page's entity is COMPLETED and the page has reloaded to show it (live.js
    turns the badge COMPLETED in place just before it reloads: the note of a running job is
    gone only from the new page)."""
    page.wait_for_selector("#page-status.status-completed", timeout=timeout)
    page.wait_for_selector("#live-note", state="detached", timeout=timeout)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_lists_and_datasource_page(world: dict[str, Any], page: Any) -> None:
    page.goto(world["console"] + "/")
    assert page.locator("text=ml-mnist").count() >= 1 and "project=digits" in page.content()
    shot(page, "overview")
    ds = world["states"]["ds-train"]
    page.goto(world["console"] + "/datasources/ds-train")
    body = page.inner_text("main")
    assert f"{ds['DataSizeInBytes']:,}" in body
    assert "785 attribute(s), page 1 of 32" in body
    stats = json.loads(world["app"].context.artifacts.path_for("DataSource", "ds-train", "ingest.json").read_text())
    assert f"Records in statistics\n{stats['statistics']['recordCount']:,}" in body
    shot(page, "datasource")


def test_model_and_multiclass_evaluation_pages(world: dict[str, Any], page: Any) -> None:
    page.goto(world["console"] + "/models/ml-mnist")
    assert "Pass 3 of 3" in page.inner_text("#pass-progress")
    assert page.locator("text=Largest weights").count() >= 1
    shot(page, "model")
    evaluation = world["states"]["evaluation"]
    f1 = float(evaluation["PerformanceMetrics"]["Properties"]["MulticlassAvgFScore"])
    page.goto(world["console"] + "/evaluations/ev-mnist")
    assert page.inner_text("#metric-value") == f"{f1:.4g}"
    assert page.locator("#per-class tbody tr").count() == 10
    shot(page, "evaluation-multiclass")


def test_batch_prediction_page(world: dict[str, Any], page: Any) -> None:
    batch = world["states"]["batch"]
    page.goto(world["console"] + "/batchpredictions/bp-mnist")
    body = page.inner_text("main")
    assert f"Records\n{batch['TotalRecordCount']:,}" in body
    assert page.locator("#preview tbody tr").count() == 10
    with page.expect_download() as info:
        page.click("text=Download")
    data = gzip.decompress(Path(info.value.path()).read_bytes()).decode()
    assert len(data.splitlines()) == batch["TotalRecordCount"] + 1
    shot(page, "batch-prediction")


def test_binary_threshold_slider_saves_through_the_api(world: dict[str, Any], page: Any) -> None:
    page.goto(world["console"] + "/evaluations/ev-bin")
    auc = float(world["states"]["bin-evaluation"]["PerformanceMetrics"]["Properties"]["BinaryAUC"])
    assert page.inner_text("#metric-value") == f"{auc:.4g}"
    before = page.inner_text("#t-tp")
    slider = page.locator("#threshold")
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")  # keyboard use: 0.5 -> 0.7
    assert page.inner_text("#threshold-value") == "0.70"
    assert int(page.inner_text("#t-tp").replace(",", "")) <= int(before.replace(",", ""))
    # the report's exact counts at the slider's step (threshold.js), not ROC points' estimates
    report = world["app"].context.artifacts.read_json("Evaluation", "ev-bin", "report.json")
    assert [int(page.inner_text(f"#t-{k}").replace(",", "")) for k in ("tp", "fp")] == report["stepped"][70]
    shot(page, "evaluation-binary")
    page.click("#save-threshold")
    assert "saved: 0.7" in page.inner_text(".notice")
    assert world["ml"].get_ml_model(MLModelId="ml-bin")["ScoreThreshold"] == pytest.approx(0.7)


def test_a_threshold_off_the_sliders_steps_is_shown_and_saved_as_it_is(world: dict[str, Any], page: Any) -> None:
    """A ScoreThreshold set by the API between the slider's 0.01 steps (0.305) showed as 0.31,
    with 0.31's counts, and Save stored 0.31 (found by an outside test): the page now opens at
    the model's own threshold, and Save without a move keeps it."""
    ml = world["ml"]
    before = ml.get_ml_model(MLModelId="ml-bin").get("ScoreThreshold", 0.5)
    ml.update_ml_model(MLModelId="ml-bin", ScoreThreshold=0.305)
    try:
        page.goto(world["console"] + "/evaluations/ev-bin")
        assert page.inner_text("#threshold-value") == "0.305"
        assert page.input_value("#threshold-field") == "0.305"
        page.click("#save-threshold")
        assert ml.get_ml_model(MLModelId="ml-bin")["ScoreThreshold"] == pytest.approx(0.305)
    finally:
        ml.update_ml_model(MLModelId="ml-bin", ScoreThreshold=before)


def test_try_a_prediction_and_phone_width(world: dict[str, Any], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    violations: list[str] = []
    page = new_page(context, violations)
    page.goto(world["console"] + "/models/ml-bin/predict")
    page.fill("#attr-1", "2.5")
    page.fill("#attr-2", "a")
    page.click("#predict-button")
    from openaml.ml.model import load_model
    from openaml.ml.prediction import RecordScorer, predict_record

    with world["app"].context.artifacts.open_read("MLModel", "ml-bin", "model.bin") as stream:
        model = load_model(stream)
    threshold = world["ml"].get_ml_model(MLModelId="ml-bin").get("ScoreThreshold", 0.5)
    expected = predict_record(RecordScorer(model), {"x": "2.5", "c": "a"}, threshold)
    assert page.inner_text("#predicted-label") == expected["predictedLabel"]
    shot(page, "predict-phone")
    context.close()
    assert violations == []


def test_an_invalid_rename_shows_the_api_message_and_keeps_the_name(world: dict[str, Any], page: Any) -> None:
    page.goto(world["console"] + "/models/ml-bin")
    page.fill("#rename-name", "   ")
    with page.expect_response(lambda r: r.url.endswith("/rename")) as answer:
        page.click("text=Rename")
    assert answer.value.status == 400
    assert "failed to satisfy constraint: Member must satisfy regular expression pattern" in page.inner_text("#alert")
    assert world["ml"].get_ml_model(MLModelId="ml-bin")["Name"] == "binary"


def test_delete_asks_first(world: dict[str, Any], page: Any) -> None:
    """confirm.js (a static script, as the CSP demands) asks; dismissing deletes nothing."""
    ml = world["ml"]
    page.goto(world["console"] + "/datasources/ds-batch")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button.danger")
    assert ml.get_data_source(DataSourceId="ds-batch")["Status"] == "COMPLETED"
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("button.danger")
    assert "Deleted ds-batch" in page.inner_text(".notice")
    assert ml.get_data_source(DataSourceId="ds-batch")["Status"] == "DELETED"


def test_a_running_job_updates_in_place_and_keeps_what_the_user_types(world: dict[str, Any], page: Any) -> None:
    """While a model trains its page follows its status without reloading (once it reloaded
    every 5 s and wiped the rename field); when it completes with a field edited, the page
    offers the reload instead of taking it; unedited, it reloads to show the results."""
    app, ml = world["app"], world["ml"]
    app.context.engine.pause()
    try:
        for model in ("ml-live", "ml-live-2"):
            ml.create_ml_model(MLModelId=model, MLModelType="BINARY", TrainingDataSourceId="ds-bin-train")
        page.goto(world["console"] + "/models/ml-live")
        assert page.inner_text("#page-status") == "PENDING" and "updates here" in page.inner_text("#live-note")
        page.fill("#rename-name", "typed while training")
        other = page.context.new_page()
        other.goto(world["console"] + "/models/ml-live-2")
    finally:
        app.context.engine.resume()
    page.wait_for_selector("#page-status.status-completed", timeout=60_000)  # (no eval: the CSP forbids it)
    assert page.input_value("#rename-name") == "typed while training"
    assert "Reload to see its results" in page.inner_text("#live-note")
    # reloaded on its own: the weights are drawn on a COMPLETED model's page alone (the badge
    # turns COMPLETED in place first, just before the reload)
    other.wait_for_selector("svg.chart[aria-label^='Largest weights for']", timeout=60_000)
    assert other.locator("#page-status.status-completed").count() == 1 and other.locator("#live-note").count() == 0
    other.close()


PAGES = ("/", "/datasources", "/models", "/evaluations", "/batchpredictions", "/datasources/ds-train",
         "/models/ml-mnist", "/models/ml-bin", "/evaluations/ev-mnist", "/evaluations/ev-bin",
         "/batchpredictions/bp-mnist", "/models/ml-bin/predict", "/datasources?limit=1", "/create/datasource",
         "/create/datasource?location=s3://bin/data.csv", "/create/model?datasource=ds-bin-train", "/browse",
         "/browse?uri=s3://mnist/", "/compare?m=ml-mnist&m=ml-bin", "/models/ml-bin/log")


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_reads_at_desktop_and_phone_width(world: dict[str, Any], browser: Any, width: int) -> None:
    """Every page at 1280 and 390 px: no script error, no failed request, no CSP violation,
    the page itself never wider than the screen, and every chart drawn at 85 % of its size at
    least, labels of 9 px and more (at 390 px they shrank to 4-5 px; now their figures scroll)."""
    context = browser.new_context(viewport={"width": width, "height": 844})
    violations: list[str] = []
    page = new_page(context, violations)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    # (a request the next navigation cancels, as the favicon's under load, is no failure of the page)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} ({request.failure})")
            if request.failure != "net::ERR_ABORTED" else None)
    page.on("response", lambda response: problems.append(f"{response.status}: {response.url}")
            if response.status >= 400 else None)
    for path in PAGES:
        page.goto(world["console"] + path)
        main = page.locator("main").bounding_box()
        assert main is not None and main["width"] <= width, path
        wide = page.evaluate("document.documentElement.scrollWidth")  # nothing sticks out of the page
        assert wide <= width, (path, wide)
        for chart in page.locator("svg.chart").all():
            if not chart.is_visible():  # in a closed <details>
                continue
            box = chart.bounding_box()
            view_width = float(chart.get_attribute("viewBox").split()[2])
            assert box is not None and box["width"] >= 0.85 * min(view_width, 760), (path, box, view_width)
        if width == 390:
            name = re.sub(r"[^A-Za-z0-9-]+", "-", path).strip("-") or "overview"
            shot(page, "phone-" + name)
    context.close()
    assert problems == [] and violations == []


def test_the_whole_workflow_is_made_in_the_console(world: dict[str, Any], page: Any, tmp_path: Path) -> None:
    """Upload a CSV, check and edit its guessed schema, create the datasource, train a model
    with the 70/30 evaluation, run a batch prediction, create an endpoint and predict: every
    step in the browser, no API call of the test's own."""
    rng = random.Random(11)
    lines = ["id,age,plan,note,churned"]
    for i in range(300):
        age, plan = rng.randint(18, 80), rng.choice("abc")
        churned = int(age / 80 + (plan == "a") * 0.5 + rng.gauss(0, 0.3) > 0.9)
        lines.append(f"c{i},{age},{plan},{rng.choice(['late bill', 'happy user', 'asked for help'])},{churned}")
    data = tmp_path / "churn.csv"
    data.write_text("\n".join(lines) + "\n")
    console = world["console"]

    page.goto(console + "/create/datasource")
    page.fill("#upload-folder", "s3://e2e-uploads/")
    page.set_input_files("#upload-file", str(data))
    with page.expect_navigation():
        page.click("#upload-button")
    assert page.input_value("#location") == "s3://e2e-uploads/churn.csv"
    assert page.locator("#schema-table tbody tr").count() == 6  # (none) and five attributes
    page.check("input[aria-label='churned is the target']")
    page.check("input[aria-label='id is the row ID']")
    page.check("input[aria-label='Exclude note']")
    page.select_option("select[aria-label='Type of churned']", "BINARY")
    page.fill("#ds-id", "ds-e2e")
    shot(page, "create-datasource")
    with page.expect_navigation():
        page.click("#create-datasource")
    assert "Created ds-e2e" in page.inner_text(".notice")
    completed(page)

    with page.expect_navigation():
        page.click("text=Create a model from it")
    assert page.input_value("#model-type") == "BINARY"
    page.wait_for_selector("#recipe-check:has-text('The recipe is valid.')")
    page.fill("#ml-id", "ml-e2e")
    assert page.is_checked("#evaluate")
    shot(page, "create-model")
    with page.expect_navigation():
        page.click("#create-model")
    assert "Created ml-e2e and its evaluation ml-e2e-ev" in page.inner_text(".notice")
    completed(page, 180_000)

    page.select_option("#batch-predict-datasource", "ds-e2e")
    page.fill("#batch-predict-output", "s3://e2e-out/")
    with page.expect_navigation():
        page.click("text=Start the batch prediction")
    completed(page)
    assert page.locator("#preview tbody tr").count() == 10

    page.goto(console + "/evaluations/ml-e2e-ev")
    completed(page)
    assert 0.5 < float(page.inner_text("#metric-value")) <= 1.0

    page.goto(console + "/models/ml-e2e")
    with page.expect_navigation():
        page.click("text=Create endpoint")
    for _ in range(100):  # the endpoint becomes READY (its page offers Delete while UPDATING too)
        if "READY" in page.inner_text("section[aria-labelledby=endpoint-h]"):
            break
        time.sleep(0.2)
        page.reload()
    assert page.locator("text=Delete endpoint").count() == 1
    assert "READY" in page.inner_text("section[aria-labelledby=endpoint-h]")

    page.goto(console + "/models/ml-e2e/predict")
    page.fill("input[name='attr:age']", "75")
    page.fill("input[name='attr:plan']", "a")
    page.click("#predict-button")
    assert page.inner_text("#predicted-label") in ("0", "1") and "P(class 1)" in page.inner_text("#prediction")


def test_each_of_the_twelve_findings_of_issue_16(world: dict[str, Any], browser: Any) -> None:
    """The twelve findings of the console's review, each checked in the browser as a user met
    it (2 and 12 have tests of their own above: a running job's page, every page at 390 px)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    page = new_page(context, violations)
    console, ml = world["console"], world["ml"]
    # 1: the schema of a datasource is shown
    page.goto(console + "/datasources/ds-bin-train")
    page.click("section[aria-labelledby=schema-h] summary >> nth=0")
    schema = page.inner_text("section[aria-labelledby=schema-h]")
    assert "not available" not in schema and "CATEGORICAL" in schema and "NUMERIC" in schema
    # 3 and 4: a BINARY prediction says P(class 1) and its threshold; an odd record is explained
    page.goto(console + "/models/ml-bin/predict")
    page.fill("#pasted", '{"x": "abc", "colour": "red"}')
    page.click("#predict-button")
    result = page.inner_text("#prediction")
    assert "P(class 1)" in result and "Score threshold" in result and "Score 0" not in result
    warnings = page.inner_text("#record-warnings")
    assert "colour" in warnings and "x='abc'" in warnings and "Missing" in warnings
    page.fill("#pasted", "{}")
    page.click("#predict-button")
    assert "No attribute the model reads has a value" in page.inner_text("#record-warnings")
    # 5 and 7: above every score, precision is not available; the curves carry the threshold
    page.goto(console + "/evaluations/ev-bin")
    page.locator("#threshold").fill("1")
    assert page.inner_text("#t-precision") == "not available"
    pr = page.locator("svg[aria-label='Precision-recall curve']")
    assert pr.locator(".marker").count() == 1 and pr.locator(".guide").count() == 0
    assert page.locator("svg[aria-label='ROC curve'] .marker").count() == 1
    # 6: pages keep ?limit and go back
    page.goto(console + "/datasources?limit=1")
    page.click("a[rel=next]")
    assert "limit=1" in page.url and page.locator("a[rel=prev]").count() == 1
    page.click("a[rel=prev]")
    assert "Page 1" in page.inner_text(".pager")
    # 8: a notice in a link is not shown unless the console signed it
    page.goto(console + "/datasources/ds-train?notice=Your%20key%20expired")
    assert page.locator(".notice").count() == 0
    # 9: a deleted entity offers no rename or delete
    ml.create_data_source_from_s3(DataSourceId="ds-gone", DataSpec={
        "DataLocationS3": "s3://bin/data.csv", "DataSchemaLocationS3": "s3://mnist/train.schema.json"})
    ml.delete_data_source(DataSourceId="ds-gone")
    page.goto(console + "/datasources/ds-gone")
    assert page.locator("button:has-text('Rename')").count() == 0 and page.locator("button.danger").count() == 0
    # 10: deleting a model with a live endpoint warns that the endpoint goes too
    ml.create_realtime_endpoint(MLModelId="ml-bin")
    page.goto(console + "/models/ml-bin")
    assert "real-time endpoint" in page.inner_text("#endpoint-warning")
    ml.delete_realtime_endpoint(MLModelId="ml-bin")
    # 11: the icon is served, a negative file number is no file, locations wrap at slashes,
    # splits are words and an evaluation's data names its part of the file
    assert page.request.get(console + "/static/favicon.svg").status == 200
    assert page.request.get(console + "/batchpredictions/bp-mnist/download?file=-1").status == 404
    page.goto(console + "/datasources/ds-eval")
    assert "records at 70-100 % in file order" in page.inner_text("main") and "percentBegin" not in page.inner_text(
        "section[aria-labelledby=summary-h]")
    assert "s3://<wbr>mnist/<wbr>train.csv.gz" in page.content()
    page.goto(console + "/evaluations/ev-mnist")
    assert "records at 70-100 %" in page.inner_text("section[aria-labelledby=summary-h]")
    context.close()
    assert violations == []


def test_line_charts_are_interactive(world: dict[str, Any], page: Any) -> None:
    """uPlot (vendored, MIT) draws the line charts: values under the pointer in the legend; the
    server's SVG stays for pages without scripts but is hidden; no script breaks the CSP."""
    page.goto(world["console"] + "/models/ml-mnist")
    holder = page.locator(".uplot-holder").first
    holder.wait_for()
    assert holder.locator("canvas").count() >= 1
    assert page.locator("svg[aria-label='Training loss per pass']").is_hidden()
    holder.scroll_into_view_if_needed()
    box = holder.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=5)
    legend = holder.locator(".u-legend").inner_text()
    assert re.search(r"\d\.\d", legend), legend
    shot(page, "model-interactive")
    page.goto(world["console"] + "/evaluations/ev-bin")
    assert page.locator(".uplot-holder").count() == 2  # ROC and precision-recall
    shot(page, "evaluation-interactive")
