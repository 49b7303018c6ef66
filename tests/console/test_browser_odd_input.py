"""The console in headless Chromium with odd data: long names and values keep pages within
the screen, and the scripts show the console's reasons (and pages work without scripts).

Skipped when Chromium is absent, as test_browser is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import wait_for
from tests.console.test_browser import make_client, pytestmark  # noqa: F401 - the skip marks

LONG_NAME = "A datasource of a rather long name, as exports are named " * 18  # about 1,000 characters
SCHEMA = json.dumps({"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
                     "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                                    {"attributeName": "c", "attributeType": "CATEGORICAL"},
                                    {"attributeName": "y", "attributeType": "BINARY"}]})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from openaml.server.embedded import running_server

    with running_server(data_dir=tmp_path_factory.mktemp("console-odd"), workers=1) as app:
        rows = "".join(f"{i % 17},{'ab'[i % 2]},{int(i % 17 > 8)}\n" for i in range(120))
        app.context.objects.write_bytes("s3://odd/data.csv", ("x,c,y\n" + rows).encode())
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId="ds-long", DataSourceName=LONG_NAME[:1024], ComputeStatistics=True,
                                      DataSpec={"DataLocationS3": "s3://odd/data.csv", "DataSchema": SCHEMA})
        ml.create_ml_model(MLModelId="ml-odd", MLModelType="BINARY", TrainingDataSourceId="ds-long")
        assert wait_for(lambda: ml.get_ml_model(MLModelId="ml-odd"))["Status"] == "COMPLETED"
        yield {"console": f"{app.settings.base_url}/console"}



def page_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("width", [1280, 390])
def test_a_long_datasource_name_keeps_the_model_pages_within_the_screen(
        world: dict[str, Any], browser: Any, width: int) -> None:
    """F6: the pickers' option texts widened their forms, and the model page scrolled sideways
    (1,806 px at 1280 with a name of 100 characters)."""
    context = browser.new_context(viewport={"width": width, "height": 844})
    page = context.new_page()
    for path in ("/models/ml-odd", "/create/model?datasource=ds-long"):
        page.goto(world["console"] + path)
        assert page_width(page) <= width, path
    context.close()


def test_a_long_value_in_a_message_keeps_the_page_within_the_screen(world: dict[str, Any], browser: Any) -> None:
    """F7: a 100,000-character value in a warning made the page about a million pixels wide;
    a long location in the wizard's error 1,689 px at 390."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(world["console"] + "/models/ml-odd/predict")
    page.locator("input[name='attr:x']").fill("9" * 100_000)
    page.locator("form:has(input[name='attr:x']) button[type=submit]").first.click()
    page.wait_for_selector("#record-warnings")
    assert page_width(page) <= 390
    page.goto(world["console"] + "/create/datasource?location=s3://odd/" + "k" * 3000 + ".csv")
    page.wait_for_selector("#location-error")
    assert page_width(page) <= 390
    context.close()


def test_an_expired_form_says_so_in_the_upload_and_the_recipe_check(
        world: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    """F8: with the token cookie gone, the upload said only "Not uploaded: Forbidden" and the
    recipe check "could not be checked now"."""
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.goto(world["console"] + "/create/datasource")
    context.clear_cookies()
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    page.set_input_files("#upload-file", str(tmp_path / "data.csv"))
    page.click("#upload-button")
    expect(page.locator("#upload-status")).to_contain_text("reload the page")
    assert "Not uploaded" in page.locator("#upload-status").inner_text()
    page.goto(world["console"] + "/create/model?datasource=ds-long")
    context.clear_cookies()
    page.locator("#recipe").fill('{"outputs": ["ALL_INPUTS"]}')
    expect(page.locator("#recipe-check")).to_contain_text("reload the page")
    assert "could not be checked" in page.locator("#recipe-check").inner_text()
    context.close()


def test_without_javascript_the_upload_says_what_to_do(world: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    """F9: without JavaScript the Upload button sent the CSRF token in a GET URL and did nothing."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(world["console"] + "/create/datasource")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    page.set_input_files("#upload-file", str(tmp_path / "data.csv"))
    with page.expect_navigation():
        page.click("#upload-button")
    assert "csrf_token" not in page.url
    assert "needs JavaScript" in page.locator("#upload-error").inner_text()
    context.close()
