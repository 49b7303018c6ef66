"""The wire protocol as a client sees it: routing, errors, content types, sizes, request ids."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from openaml.protocol.spec import ServiceSpec
from openaml.server.embedded import running_server
from tests.api.conftest import error_code

HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/machinelearning/"
                     "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
    "X-Amz-Date": "20260101T000000Z",
}


def post(server: Application, target: str | None, body: bytes, **headers: str) -> httpx.Response:
    sent = {**HEADERS, **headers}
    if target is not None:
        sent["X-Amz-Target"] = target
    return httpx.post(server.settings.base_url + "/", content=body, headers=sent, timeout=30)


def test_every_operation_is_routed(server: Application) -> None:
    spec = ServiceSpec.load()
    assert len(spec.operation_names) == 28
    for name in spec.operation_names:
        answer = post(server, f"AmazonML_20141212.{name}", b"{}")
        # Empty bodies miss required members; the point is that no operation is unknown.
        assert answer.status_code != 500, (name, answer.text)
        assert answer.json().get("__type") != "UnknownOperationException", name


@pytest.mark.parametrize(
    ("target", "body", "headers", "status", "error"),
    [
        ("AmazonML_20141212.Nope", b"{}", {}, 400, "UnknownOperationException"),
        (None, b"{}", {}, 400, "UnknownOperationException"),
        ("Other_20141212.GetMLModel", b"{}", {}, 400, "UnknownOperationException"),
        ("AmazonML_20141212.GetMLModel", b"{not json", {}, 400, "SerializationException"),
        ("AmazonML_20141212.GetMLModel", b"[1, 2]", {}, 400, "SerializationException"),
        ("AmazonML_20141212.GetMLModel", b'{"MLModelId": 5}', {}, 400, "SerializationException"),
        ("AmazonML_20141212.GetMLModel", b'{"MLModelId": "x"}', {"Content-Type": "text/plain"},
         415, "UnsupportedMediaTypeException"),
        ("AmazonML_20141212.GetMLModel", b'{"MLModelId": "bad id!"}', {}, 400,
         "InvalidInputException"),
        ("AmazonML_20141212.GetMLModel", b'{}', {}, 400, "InvalidInputException"),
    ],
)
def test_malformed_requests_get_aws_errors(
    server: Application, target: str | None, body: bytes, headers: dict[str, str], status: int,
    error: str,
) -> None:
    answer = post(server, target, body, **headers)
    assert answer.status_code == status, answer.text
    document = answer.json()
    assert document["__type"] == error
    assert document["message"]
    assert "Traceback" not in answer.text
    assert answer.headers["x-amzn-RequestId"]


def test_missing_authorization_is_rejected(server: Application) -> None:
    answer = httpx.post(server.settings.base_url + "/", content=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonML_20141212.DescribeMLModels"}, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "MissingAuthenticationTokenException"


def test_oversized_body_is_rejected(tmp_path: Path) -> None:
    with running_server(data_dir=tmp_path, max_body_bytes=4096) as small:
        body = json.dumps({"MLModelId": "m", "pad": "x" * 5000}).encode()
        answer = post(small, "AmazonML_20141212.GetMLModel", body)
    assert answer.status_code == 413
    assert answer.json()["__type"] == "RequestEntityTooLargeException"


def test_validation_message_names_the_member(ml: Any) -> None:
    with pytest.raises(ClientError) as err:
        ml.describe_ml_models(FilterVariable="MLModelType", EQ="BINARY", SortOrder="up")
    assert error_code(err) == "InvalidInputException"
    assert "SortOrder" in err.value.response["Error"]["Message"]


def test_unknown_entity_is_not_found_with_spec_message(ml: Any) -> None:
    with pytest.raises(ClientError) as err:
        ml.get_batch_prediction(BatchPredictionId="fake-id")
    assert error_code(err) == "ResourceNotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.value.response["Error"]["Message"] == "No BatchPrediction with id fake-id exists"


def test_health_reports_parts(server: Application) -> None:
    document = httpx.get(server.settings.base_url + "/health", timeout=10).json()
    assert document["status"] == "ok"
    assert document["store"]["ok"] is True
    assert "pending" in document["jobs"]
    assert document["version"]
    deadline = time.monotonic() + 30
    while not document["warm"] and time.monotonic() < deadline:  # the start-up warm-up ends
        time.sleep(0.1)
        document = httpx.get(server.settings.base_url + "/health", timeout=10).json()
    assert document["warm"] is True


@pytest.mark.parametrize("full", ["sqlite", "os"])
def test_a_full_disk_answers_saying_so_and_health_tells(server: Application, monkeypatch: pytest.MonkeyPatch,
                                                        full: str, caplog: pytest.LogCaptureFixture) -> None:
    """The store's disk full answered a bare InternalServerException with a traceback logged per
    request, while /health said "ok"."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from openaml import app as app_module
    from openaml.storage.objects import NO_SPACE_MESSAGE

    def full_disk(*_: Any, **__: Any) -> None:
        if full == "os":
            raise OSError(28, "No space left on device")
        driver = sqlite3.OperationalError("database or disk is full")
        driver.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
        raise OperationalError("UPDATE entities ...", {}, driver)

    monkeypatch.setattr(server.context.store, "find", full_disk)
    answer = post(server, "AmazonML_20141212.DescribeEvaluations", b"{}")
    assert answer.status_code == 500 and answer.json()["__type"] == "InternalServerException"
    assert answer.json()["message"].startswith(NO_SPACE_MESSAGE)
    assert "Traceback" not in caplog.text
    monkeypatch.setattr(app_module, "space_left", lambda folder: False)
    document = httpx.get(server.settings.base_url + "/health", timeout=10).json()
    assert document["status"] == "degraded" and document["disk"] == {"ok": False}


def test_unexpected_errors_are_internal_server_exceptions(
    server: Application, ml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(server.context.store, "find", explode)
    answer = post(server, "AmazonML_20141212.DescribeEvaluations", b"{}")
    assert answer.status_code == 500
    assert answer.json()["__type"] == "InternalServerException"
    assert "secret internal detail" not in answer.text and "Traceback" not in answer.text
