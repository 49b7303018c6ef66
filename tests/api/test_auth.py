"""SigV4 verification with configured keys, and the rule for non-loopback addresses."""

from __future__ import annotations

import datetime as dt
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from openaml.app import Application, ConfigurationError, build_app
from openaml.server.embedded import running_server
from openaml.settings import Settings
from tests.api.conftest import error_code, make_client

KEY, SECRET = "AKIAOPENAMLTEST", "s3cr3t-value"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    folder = tmp_path_factory.mktemp("secured")
    credentials = folder / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
                           f"[alice]\naws_access_key_id = AKIAALICE\naws_secret_access_key = alice-secret\n")
    with running_server(data_dir=folder / "data", credentials_file=credentials) as app:
        yield app


def test_good_signature_passes(secured: Application) -> None:
    assert make_client(secured.settings.base_url, KEY, SECRET).describe_ml_models()["Results"] == []


def test_wrong_secret_is_rejected(secured: Application) -> None:
    with pytest.raises(ClientError) as err:
        make_client(secured.settings.base_url, KEY, "wrong").describe_ml_models()
    assert error_code(err) == "InvalidSignatureException"


def test_unknown_key_is_rejected(secured: Application) -> None:
    with pytest.raises(ClientError) as err:
        make_client(secured.settings.base_url, "AKIAUNKNOWN", SECRET).describe_ml_models()
    assert error_code(err) == "UnrecognizedClientException"


def signed(url: str, body: bytes, when: dt.datetime | None = None) -> dict[str, str]:
    """Headers of a DescribeMLModels request signed with KEY/SECRET at `when` (default: now)."""
    stamp = (when or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    request = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonML_20141212.DescribeMLModels",
        "X-Amz-Date": stamp})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(KEY, SECRET), "machinelearning", "us-east-1")
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request)
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
        f"Signature={signature}")
    return dict(request.headers.items())


def test_tampered_body_is_rejected(secured: Application) -> None:
    url = secured.settings.base_url
    headers = signed(url, b"{}")
    ok = httpx.post(url + "/", content=b"{}", headers=headers, timeout=10)
    assert ok.status_code == 200, ok.text
    bad = httpx.post(url + "/", content=b'{"Limit": 5}', headers=headers, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["__type"] == "InvalidSignatureException"


def test_stale_timestamp_is_rejected(secured: Application) -> None:
    url = secured.settings.base_url
    then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    answer = httpx.post(url + "/", content=b"{}", headers=signed(url, b"{}", then), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidSignatureException"
    assert answer.json()["message"].startswith("Signature expired")


def test_non_loopback_needs_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        build_app(Settings(host="0.0.0.0", data_dir=tmp_path).resolved())


def test_console_needs_a_key_when_keys_are_configured(secured: Application) -> None:
    url = secured.settings.base_url + "/console/"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, auth=(KEY, "wrong"), timeout=10).status_code == 401
    assert httpx.get(url, auth=(KEY, SECRET), timeout=10).status_code == 200


def test_created_by_names_the_iam_user_of_the_key(secured: Application) -> None:
    alice = make_client(secured.settings.base_url, "AKIAALICE", "alice-secret")
    alice.create_data_source_from_s3(DataSourceId="by-alice", DataSpec={
        "DataLocationS3": "s3://nobody/x.csv", "DataSchema": '{"attributes":[{"attributeName":"a",'
                                                            '"attributeType":"NUMERIC"}]}'})
    root = make_client(secured.settings.base_url, KEY, SECRET)
    root.create_data_source_from_s3(DataSourceId="by-root", DataSpec={
        "DataLocationS3": "s3://nobody/x.csv", "DataSchema": '{"attributes":[{"attributeName":"a",'
                                                            '"attributeType":"NUMERIC"}]}'})
    assert root.get_data_source(DataSourceId="by-alice")["CreatedByIamUser"] == \
        "arn:aws:iam::000000000000:user/alice"
    assert root.get_data_source(DataSourceId="by-root")["CreatedByIamUser"] == \
        "arn:aws:iam::000000000000:root"
    listed = root.describe_data_sources(FilterVariable="IAMUser", EQ="arn:aws:iam::000000000000:user/alice")
    assert [r["DataSourceId"] for r in listed["Results"]] == ["by-alice"]


def signed_headers_only(url: str, body: bytes, names: set[str]) -> dict[str, str]:
    """A correct signature over only the headers in `names` (others are sent unsigned)."""
    headers = signed(url, body)
    stamp = headers["X-Amz-Date"]
    request = AWSRequest(method="POST", url=url + "/", data=body,
                         headers={k: v for k, v in headers.items() if k.lower() in names})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(KEY, SECRET), "machinelearning", "us-east-1")
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request)
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
        f"Signature={signature}")
    return headers


def test_the_operation_must_be_signed(secured: Application) -> None:
    """Else a man in the middle could replay the signature with another X-Amz-Target (the
    host is always signed by botocore's signer; an unsigned host is refused the same way)."""
    url = secured.settings.base_url
    headers = signed_headers_only(url, b"{}", {"host", "x-amz-date"})
    headers["X-Amz-Target"] = "AmazonML_20141212.DescribeDataSources"  # swapped, unsigned
    answer = httpx.post(url + "/", content=b"{}", headers=headers, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidSignatureException"
    assert "must be a 'SignedHeader'" in answer.json()["message"]


@pytest.mark.parametrize("path", ["/logs/DataSource/by-root", "/reports/DataSource/by-root",
                                  "/console/datasources", "/", "/no/such/route"])
def test_every_route_but_health_needs_a_key(secured: Application, path: str) -> None:
    url = secured.settings.base_url + path
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, auth=(KEY, "wrong"), timeout=10).status_code == 401
    assert httpx.get(url, auth=(KEY, SECRET), timeout=10).status_code in (200, 307, 404)


@pytest.mark.parametrize("path", ["/health", "/health/live"])
def test_health_is_public_and_shows_no_paths(secured: Application, path: str) -> None:
    answer = httpx.get(secured.settings.base_url + path, timeout=10)
    assert answer.status_code == 200
    assert str(secured.settings.data_dir) not in answer.text
    assert "/" not in answer.text.replace('"ok"', "")  # no path, URL or address at all


def test_unauthenticated_bodies_are_not_read(secured: Application) -> None:
    """A request without credentials is refused before its body is read (here: never sent)."""
    status, sent = post_chunked(secured.settings.base_url, 256 << 20, {})
    assert status == 400
    assert sent < 64 << 20


def post_chunked(base_url: str, total: int, headers: dict[str, str]) -> tuple[int, int]:
    """POST / a chunked body of up to `total` bytes over a raw socket, stopping as soon as the
    server answers; returns (status, bytes sent)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    lines = ["POST / HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked",
             "Content-Type: application/x-amz-json-1.1",
             "X-Amz-Target: AmazonML_20141212.DescribeDataSources",
             *(f"{k}: {v}" for k, v in headers.items())]
    chunk = b"%x\r\n" % (1 << 16) + b" " * (1 << 16) + b"\r\n"
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(chunk)
                sent += 1 << 16
            else:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), sent


def test_access_keys_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"OPENAML_ACCESS_KEYS": "AKIAENV1:env-secret, AKIAENV2:other",
                                  "OPENAML_DATA_DIR": str(tmp_path)}, port=0)
    assert settings.access_keys == {"AKIAENV1": "env-secret", "AKIAENV2": "other"}
    with running_server(settings) as app:
        assert not app.unverified
        url = app.settings.base_url
        assert make_client(url, "AKIAENV2", "other").describe_ml_models()["Results"] == []
        with pytest.raises(ClientError) as err:
            make_client(url, "AKIAENV1", "wrong").describe_ml_models()
        assert error_code(err) == "InvalidSignatureException"
    with pytest.raises(ValueError, match="entry 2 is not KEY_ID:SECRET"):
        Settings.from_env({"OPENAML_ACCESS_KEYS": "A:b,nosecret"})


@pytest.mark.parametrize("host", ["127.example.com", "127.0.0.1.nip.io", "localhost.evil.example"])
def test_names_that_look_like_loopback_need_keys(tmp_path: Path, host: str) -> None:
    assert not Settings(host=host).is_loopback
    with pytest.raises(ConfigurationError):
        build_app(Settings(host=host, data_dir=tmp_path).resolved())


def test_the_api_answers_signed_requests_at_the_advertised_path(tmp_path: Path) -> None:
    """AWS's JavaScript SDK posts Predict to its endpoint, EndpointUrl, path included: behind
    an --advertise-url with a path, that path answered a plain-text 401 (404 without keys).
    The API answers there too, checking the signature of that path; other routes do not."""
    settings = Settings(data_dir=tmp_path, port=0, access_keys={KEY: SECRET},
                        advertise_url="https://ml.example.com/aml/")
    with running_server(settings) as app:
        url = f"http://127.0.0.1:{app.settings.port}"
        request = AWSRequest(method="POST", url=url + "/aml", data=b"{}", headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonML_20141212.DescribeMLModels"})
        SigV4Auth(Credentials(KEY, SECRET), "machinelearning", "us-east-1").add_auth(request)
        answer = httpx.post(url + "/aml", content=b"{}", headers=dict(request.headers.items()), timeout=10)
        assert answer.status_code == 200 and answer.json()["Results"] == [], answer.text
        at_root = httpx.post(url + "/", content=b"{}", headers=dict(request.headers.items()), timeout=10)
        assert at_root.json()["__type"] == "InvalidSignatureException"  # signed for /aml
        unsigned = httpx.post(url + "/aml", content=b"{}", timeout=10, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonML_20141212.DescribeMLModels"})
        assert unsigned.status_code == 400 and unsigned.json()["__type"] == "MissingAuthenticationTokenException"
        assert httpx.get(url + "/aml", timeout=10).status_code == 401  # not the API: HTTP Basic asked
