"""ConsoleGuard: security headers on every response, CSRF token and same-origin check on every POST."""

from __future__ import annotations

import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount

from openaml.console import build_console
from openaml.console.csrf import SECRET_FILE, CsrfTokens, load_secret
from openaml.console.forms import MAX_FORM_BYTES, MAX_FORM_FIELDS
from openaml.server.basic_auth import BasicAuthGate

from .conftest import FakeService
from .test_pages import form_token, trained_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

MODEL = trained_model()
# (path of a page with the form, action, form fields) for every POST the console has
POSTS = [
    ("/console/datasources/ds-1", "/console/datasources/ds-1/rename", {"name": "renamed"}),
    ("/console/evaluations/ev-1", "/console/evaluations/ev-1/delete", {}),
    ("/console/models/ml-1", "/console/models/ml-1/threshold", {"threshold": "0.25"}),
    ("/console/models/ml-2/predict", "/console/models/ml-2/predict", {"pasted": "8,square"}),
]


@pytest.fixture
def world(fake: FakeService) -> FakeService:
    fake.add("DataSource", "ds-1", Name="data")
    fake.add("Evaluation", "ev-1", MLModelId="ml-1")
    fake.add("MLModel", "ml-1", MLModelType="BINARY", Status="INPROGRESS")
    fake.add("MLModel", "ml-2", MLModelType="MULTICLASS", FinishedAt="x")
    with fake.ctx.artifacts.open_write("MLModel", "ml-2", "model.bin") as out:
        MODEL.save(out)
    return fake


def client_for(app: object) -> TestClient:
    return TestClient(Starlette(routes=[Mount("/console", app)]), base_url="http://testserver")


@pytest.fixture
def client(world: FakeService) -> Iterator[TestClient]:
    with client_for(build_console(world, world.port)) as c:
        yield c


def writes(fake: FakeService) -> list[str]:
    return [name for name, _ in fake.calls if not name.startswith("describe")]


def assert_secured(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_every_response_forbids_framing_and_sniffing(client: TestClient) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    responses = [client.get(path) for path in (
        "/console/", "/console/datasources", "/console/datasources/ds-1", "/console/models/ml-missing",
        "/console/nowhere", "/console/static/console.css", "/console/static/threshold.js")]
    responses.append(client.post("/console/datasources/ds-1/rename", data={"name": "x", "csrf_token": token},
                                 follow_redirects=False))
    responses.append(client.post("/console/datasources/ds-1/rename", data={"name": "x"}))
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 404, 200, 200, 303, 403]
    for response in responses:
        assert_secured(response)


@pytest.mark.parametrize(("page", "action", "fields"), POSTS)
def test_a_post_without_token_is_refused_even_without_origin_or_referer(
        world: FakeService, client: TestClient, page: str, action: str, fields: dict[str, str]) -> None:
    form_token(client, page)  # the cookie alone is not enough
    refused = client.post(action, data=fields)
    assert refused.status_code == 403 and "reload the page" in refused.text
    assert writes(world) == []


@pytest.mark.parametrize(("page", "action", "fields"), POSTS)
def test_a_post_with_the_token_of_its_page_is_accepted(
        world: FakeService, client: TestClient, page: str, action: str, fields: dict[str, str]) -> None:
    token = form_token(client, page)
    answer = client.post(action, data={**fields, "csrf_token": token}, follow_redirects=False)
    assert answer.status_code in (200, 303, 400), answer.text  # past the guard: the route answered
    assert "reload the page" not in answer.text


def test_the_token_must_match_the_cookie_and_be_signed_by_this_server(
        world: FakeService, client: TestClient, tmp_path: Path) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    (cookie,) = client.cookies.keys()
    rename = "/console/datasources/ds-1/rename"
    other = CsrfTokens(load_secret(tmp_path / "elsewhere")).issue()
    forged = token.split(".")[0] + ".AAAA"
    with client_for(build_console(world, world.port)) as stranger:  # sends only the cookies given here
        assert stranger.post(rename, data={"name": "x", "csrf_token": token}).status_code == 403
        for field, jar in ((other, other), (forged, forged), (token, other), (other, token), ("", "")):
            posted = stranger.post(rename, data={"name": "x", "csrf_token": field},
                                   headers={"Cookie": f"{cookie}={jar}"})
            assert posted.status_code == 403
        assert writes(world) == []
        accepted = stranger.post(rename, data={"name": "x", "csrf_token": token}, follow_redirects=False,
                                 headers={"Cookie": f"{cookie}={token}"})
        assert accepted.status_code == 303


@pytest.mark.parametrize("header", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                    {"Referer": "http://evil.example/page"}])
def test_a_cross_site_post_is_refused_even_with_a_token(
        world: FakeService, client: TestClient, header: dict[str, str]) -> None:
    token = form_token(client, "/console/evaluations/ev-1")
    refused = client.post("/console/evaluations/ev-1/delete", data={"csrf_token": token}, headers=header)
    assert refused.status_code == 403 and "Cross-site" in refused.text
    assert writes(world) == []
    same = client.post("/console/evaluations/ev-1/delete", data={"csrf_token": token}, follow_redirects=False,
                       headers={"Origin": "http://testserver", "Referer": "http://testserver/console/"})
    assert same.status_code == 303


def test_forms_over_the_size_or_field_limit_are_refused(world: FakeService, client: TestClient) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    rename = "/console/datasources/ds-1/rename"
    big = client.post(rename, data={"name": "x" * (MAX_FORM_BYTES + 1), "csrf_token": token})
    assert big.status_code == 413
    many = client.post(rename, content="&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS + 1)) + f"&csrf_token={token}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert many.status_code == 400 and "more than" in many.text
    assert writes(world) == []


def test_every_post_form_carries_the_token(world: FakeService, client: TestClient) -> None:
    world.entities["MLModel"]["ml-1"]["Status"] = "COMPLETED"
    world.add("BatchPrediction", "bp-1")
    for page in ("/console/datasources/ds-1", "/console/models/ml-1", "/console/evaluations/ev-1",
                 "/console/batchpredictions/bp-1", "/console/models/ml-2/predict"):
        html = client.get(page).text
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S)
        assert forms and all('name="csrf_token"' in f for f in forms), page


def test_pages_have_no_inline_script(world: FakeService, client: TestClient) -> None:
    """The Content-Security-Policy runs no inline script: no event handler attributes, and
    <script> only with src (or as a JSON data block)."""
    world.entities["MLModel"]["ml-1"].update(Status="COMPLETED", ScoreThreshold=0.5)
    world.write_artifact("Evaluation", "ev-1", "report.json", {
        "baseline": 0.5, "histogram_edges": [0, 0.5, 1], "histogram_positive": [1, 3],
        "histogram_negative": [3, 1]})
    for page in ("/console/", "/console/datasources/ds-1", "/console/models/ml-1", "/console/evaluations/ev-1",
                 "/console/models/ml-2/predict"):
        html = client.get(page).text
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), page
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (page, tag)
    assert "confirm(" in client.get("/console/static/confirm.js").text


def test_the_secret_is_private_and_shared_by_the_consoles_of_one_data_dir(world: FakeService, tmp_path: Path) -> None:
    with client_for(build_console(world, world.port)) as first, client_for(build_console(world, world.port)) as second:
        token = form_token(first, "/console/datasources/ds-1")
        second.cookies.update(first.cookies)
        moved = second.post("/console/datasources/ds-1/rename", data={"name": "y", "csrf_token": token},
                            follow_redirects=False)
        assert moved.status_code == 303
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    assert load_secret(tmp_path) == (tmp_path / SECRET_FILE).read_bytes()
    (tmp_path / SECRET_FILE).write_bytes(b"short")
    with pytest.raises(ValueError, match="not a console secret"):
        load_secret(tmp_path)


def test_the_sign_in_answer_cannot_be_framed_or_sniffed() -> None:
    c = TestClient(BasicAuthGate(PlainTextResponse("inside"), {"AKID": "secret"}))  # no lifespan to run
    refused = c.get("/")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
    assert refused.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert c.get("/", auth=("AKID", "secret")).text == "inside"


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example/x", "https://evil.example/x"])
def test_next_never_leaves_the_console(world: FakeService, target: str) -> None:
    """Even mounted at the root, where every `next` starts with the console's base."""
    app = Starlette(routes=[Mount("/", build_console(world, world.port))])
    with TestClient(app, base_url="http://testserver") as root:
        token = form_token(root, "/datasources/ds-1")
        moved = root.post("/datasources/ds-1/rename", data={"name": "x", "next": target, "csrf_token": token},
                          follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].startswith("/datasources/ds-1?notice=")


def test_the_token_cookie_is_http_only_and_kept_to_the_console(client: TestClient) -> None:
    first = client.get("/console/datasources/ds-1")
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert "set-cookie" not in client.get("/console/datasources/ds-1").headers  # kept while valid
