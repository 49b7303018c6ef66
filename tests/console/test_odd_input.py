"""The console with odd input, stale pages and expired forms: messages that keep their page,
say what to do and stay short, never bare text."""

from __future__ import annotations

import html
import io
import re
import time
import warnings

import pytest

from .conftest import FakeService
from .test_pages import binary_model, form_token, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

HTML = {"Accept": "text/html,application/xhtml+xml"}  # as a browser's form post


@pytest.fixture
def world(fake: FakeService) -> FakeService:
    fake.add("DataSource", "ds-1", Name="data")
    fake.add("MLModel", "ml-1", MLModelType="BINARY", FinishedAt="x")
    return fake



@pytest.mark.parametrize(("path", "entity"), [
    ("/console/models/ml-1/rename", "/console/models/ml-1"),
    ("/console/datasources/ds-1/delete", "/console/datasources/ds-1"),
    ("/console/models/ml-1/tag-add", "/console/models/ml-1"),
    ("/console/models/ml-1/create/evaluate", "/console/models/ml-1"),
    ("/console/models/ml-1/create/batch-predict", "/console/models/ml-1"),
])
def test_the_address_of_a_refused_post_loaded_again_goes_to_its_entity(
        world: FakeService, client: TestClient, path: str, entity: str) -> None:
    """F11: a refused action leaves its POST-only address in the address bar; loading it again
    answered a bare "Method Not Allowed"."""
    again = client.get(path, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == entity


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/console/models/<b>x</b>", 404), ("GET", "/console/nothing/here/at/all", 404),
    ("GET", "/console/check/recipe", 404), ("POST", "/console/browse", 405), ("POST", "/console/", 405),
])
def test_an_unknown_address_or_method_is_a_console_page(
        world: FakeService, client: TestClient, method: str, path: str, status: int) -> None:
    token = form_token(client, "/console/datasources/ds-1")
    answer = client.request(method, path, data={"csrf_token": token} if method == "POST" else None, headers=HTML)
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    assert 'class="message" role="alert"' in answer.text and "/console/static/console.css" in answer.text
    assert "<b>x" not in answer.text


def test_a_refused_form_post_is_a_console_page_and_a_scripts_refusal_is_json(
        world: FakeService, client: TestClient) -> None:
    """F8: the guard's reason came as text/plain, which the upload showed as "Forbidden" and the
    recipe check as "could not be checked now"; a form post got it outside the console's frame."""
    token = form_token(client, "/console/datasources/ds-1")
    client.cookies.clear()  # expired, or the browser restarted
    page = client.post("/console/datasources/ds-1/rename", data={"name": "x", "csrf_token": token}, headers=HTML)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "reload the page" in page.text and "/console/static/console.css" in page.text
    for answer in (client.post("/console/check/recipe", data={"csrf_token": token, "recipe": "{}"}),
                   client.put("/console/upload", params={"uri": "s3://bucket/a.csv"}, content=b"1",
                              headers={"X-CSRF-Token": token})):
        assert answer.status_code == 403 and "reload the page" in answer.json()["error"]
    large = client.post("/console/datasources/ds-1/rename", content=b"x" * (2 << 20),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert large.status_code == 413 and "larger than" in large.json()["error"]


def test_without_javascript_the_upload_posts_its_form_and_says_what_to_do(
        world: FakeService, client: TestClient) -> None:
    """F9: the upload form, submitted without JavaScript, sent its CSRF token in a GET URL and
    did nothing; it now posts, and the wizard says why nothing was uploaded."""
    page = client.get("/console/create/datasource").text
    form = re.search(r'<form[^>]*id="upload-form"[^>]*>', page)
    assert form is not None and 'method="post"' in form.group(0) and 'action="/console/create/upload"' in form.group(0)
    token = form_token(client, "/console/create/datasource")
    answer = client.post("/console/create/upload", data={"csrf_token": token, "folder": "s3://mine/in/",
                                                          "file": "bom.csv"}, headers=HTML)
    assert answer.status_code == 400 and "needs JavaScript" in html.unescape(answer.text)
    assert 'value="s3://mine/in/"' in answer.text


@pytest.mark.parametrize(("begin", "end"), [("", "70"), ("x", ""), ("5", "abc")])
def test_the_datasource_wizard_keeps_the_split_as_typed(
        world: FakeService, client: TestClient, begin: str, end: str) -> None:
    """F12: an emptied "From %" was shown again as 0 (and an emptied "To %" as 70)."""
    world.ctx.objects.write_bytes("s3://bucket/data.csv", b"a,b\n1,2\n3,4\n")
    token = form_token(client, "/console/create/datasource")
    answer = client.post("/console/create/datasource", data={
        "csrf_token": token, "location": "s3://bucket/data.csv", "attr.0.name": "a", "attr.0.type": "NUMERIC",
        "attr.1.name": "b", "attr.1.type": "NUMERIC", "split": "range", "begin": begin, "end": end})
    assert answer.status_code == 400 and 'id="split-error"' in answer.text
    assert f'name="begin" value="{begin}"' in answer.text and f'name="end" value="{end}"' in answer.text


@pytest.mark.parametrize(("content", "words"), [
    (b"a;b;label\n1;2;0\n3;4;1\n", "holds semicolons"),
    (b"a\tb\tlabel\n1\t2\t0\n3\t4\t1\n", "holds tabs"),
    (b"a;b;label\n1,5;2,25;0\n3,75;4;1\n", "holds semicolons"),  # decimal commas: 2 or 3 columns guessed
    (b"a|b|label\n1,5|2|0\n3|4|1\n", "holds vertical bars"),
    (b'id;text\n1;"a;b"\n2;c\n3;d\n', "holds semicolons"),  # a quoted semicolon is a value's
    (";".join(f"pixel{i}" for i in range(784)).encode() + b"\n"  # a header of 7 KB: whole lines are read
     + b"".join(";".join(["0"] * 784).encode() + b"\n" for _ in range(20)), "holds semicolons"),
    ("\u00e2ge,name\n3,b\u00e9\n".encode("latin-1"), "not UTF-8"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 8, "does not look like text"),
    (bytes(range(256)) * 8, "does not look like text"),  # (NUL bytes: not read at all, and said why)
])
def test_the_datasource_wizard_says_when_the_data_do_not_look_like_csv(
        world: FakeService, client: TestClient, content: bytes, words: str) -> None:
    """F12: a binary file, a semicolon-separated one and Latin-1 text were guessed without a word."""
    world.ctx.objects.write_bytes("s3://bucket/odd.csv", content)
    page = client.get("/console/create/datasource", params={"location": "s3://bucket/odd.csv"})
    hint = re.search(r'<p class="message" id="sample-hint">([^<]+)</p>', page.text)
    assert page.status_code == 200 and hint is not None and words in html.unescape(hint.group(1))


def test_a_plain_csv_file_gets_no_hint(world: FakeService, client: TestClient) -> None:
    world.ctx.objects.write_bytes("s3://bucket/plain.csv", "name;with;semicolons,b\u00e9\nx,y\n".encode())
    page = client.get("/console/create/datasource", params={"location": "s3://bucket/plain.csv"})
    assert page.status_code == 200 and 'id="datasource-form"' in page.text and "sample-hint" not in page.text


def test_a_prediction_warning_shortens_a_long_value(world: FakeService, client: TestClient) -> None:
    """F7: a 100,000-character value was repeated whole in the warning (a page a million pixels wide)."""
    binary_model('{"outputs": ["ALL_INPUTS"]}').save(buffer := io.BytesIO())
    world.write_artifact("MLModel", "ml-1", "model.bin", buffer.getvalue())
    token = form_token(client, "/console/models/ml-1/predict")
    long = "9" * 100_000
    for form in ({"attr:size": long, "attr:shape": "square"}, {"attr:size": "1", "attr:shape": long},
                 {"pasted": '{"size": "1", "' + "k" * 100_000 + '": "1"}'}):
        page = client.post("/console/models/ml-1/predict", data={**form, "csrf_token": token})
        found = re.search(r'<ul class="alerts" id="record-warnings"[^>]*>(.*?)</ul>', page.text, re.S)
        assert page.status_code == 200 and found is not None
        shown = html.unescape(text(found.group(1)))
        assert len(shown) < 600 and "..." in shown, shown[:300]


def test_a_long_value_that_is_almost_a_number_is_guessed_promptly(world: FakeService, client: TestClient) -> None:
    """The guess's number pattern backtracked over every split of a run of digits: a value of
    50,000 digits and a letter took some 50 s to tell from a number."""
    world.ctx.objects.write_bytes("s3://bucket/long.csv", b"a,b\n1," + b"9" * 50_000 + b"x\n2,3\n")
    started = time.monotonic()
    page = client.get("/console/create/datasource", params={"location": "s3://bucket/long.csv"})
    assert page.status_code == 200 and 'id="datasource-form"' in page.text
    assert time.monotonic() - started < 10


def test_an_upload_under_an_object_says_it_is_not_a_folder(world: FakeService, client: TestClient) -> None:
    """F12: uploading into the "folder" s3://bucket/bom.csv/ where bom.csv is an object said
    "cannot write: File exists"."""
    world.ctx.objects.write_bytes("s3://bucket/bom.csv", b"a\n1\n")
    token = form_token(client, "/console/create/datasource")
    answer = client.put("/console/upload", params={"uri": "s3://bucket/bom.csv/x.csv"}, content=b"a\n2\n",
                        headers={"X-CSRF-Token": token})
    assert answer.status_code == 400 and "s3://bucket/bom.csv is an object, not a folder" in answer.json()["error"]
