"""Web pages of the origins --cors-origins lists may call the API (the browser build of AWS's
JavaScript SDK): preflights answered before any credentials, answers readable with their AWS
error headers; other origins, and every other route, stay refused or same-origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openaml.app import Application
from openaml.server.embedded import running_server
from openaml.settings import Settings
from tests.api.conftest import make_client
from tests.api.test_hardening import post

PAGE = "http://app.example:3000"
SDK_HEADERS = "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent,amz-sdk-invocation-id"


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(url + "/", timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": SDK_HEADERS})


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    """A loopback server without keys whose API pages of PAGE may call."""
    with running_server(data_dir=tmp_path_factory.mktemp("cors"), cors_origins=(PAGE,)) as app:
        yield app


def test_a_listed_origin_passes_the_preflight(listed: Application) -> None:
    answer = preflight(listed.settings.base_url, PAGE)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].lower().split(",")}
    assert set(SDK_HEADERS.split(",")) <= allowed
    assert answer.headers["access-control-max-age"] == "600"


def test_a_listed_origin_reads_answers_and_errors(listed: Application) -> None:
    url = listed.settings.base_url
    found = post(url, "DescribeMLModels", b"{}", Origin=PAGE)
    assert found.status_code == 200 and found.json()["Results"] == []
    assert found.headers["access-control-allow-origin"] == PAGE
    missing = post(url, "GetMLModel", b'{"MLModelId": "ml-none"}', Origin=PAGE)
    assert missing.status_code == 404 and missing.json()["__type"] == "ResourceNotFoundException"
    assert missing.headers["access-control-allow-origin"] == PAGE
    exposed = missing.headers["access-control-expose-headers"].lower()
    assert "x-amzn-requestid" in exposed and "x-amzn-errortype" in exposed


def test_other_origins_and_routes_stay_refused(listed: Application) -> None:
    url = listed.settings.base_url
    other = preflight(url, "https://evil.example")
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    refused = post(url, "DescribeMLModels", b"{}", Origin="https://evil.example")
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    for path in ("/console/", "/health"):  # same-origin routes: no CORS answer, even for PAGE
        answer = httpx.get(url + path, headers={"Origin": PAGE})
        assert "access-control-allow-origin" not in answer.headers
    # a client that sends no Origin (boto3, the CLI) is served as before
    assert make_client(url).describe_ml_models()["Results"] == []


def test_any_origin_with_access_keys(tmp_path: Path) -> None:
    """With keys, '*' lets any page call; the preflight asks for no credentials (it has none)
    and the API still verifies every request's signature."""
    settings = Settings(data_dir=tmp_path, port=0, access_keys={"AKIAPAGE": "page-secret"}, cors_origins=("*",))
    with running_server(settings) as app:
        url = app.settings.base_url
        answer = preflight(url, "https://anywhere.example")
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
        unsigned = post(url, "DescribeMLModels", b"{}", Origin="https://anywhere.example")
        assert unsigned.status_code == 400 and unsigned.json()["__type"] == "UnrecognizedClientException"
        assert unsigned.headers["access-control-allow-origin"] == "*"
        assert make_client(url, "AKIAPAGE", "page-secret").describe_ml_models()["Results"] == []
