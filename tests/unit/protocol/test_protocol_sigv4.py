"""SigV4 verification of requests signed by botocore itself, and the credentials file parser."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openaml import errors
from openaml.protocol.parse import parse_request
from openaml.protocol.routing import resolve_target
from openaml.protocol.sigv4 import (
    load_credentials,
    parse_authorization,
    parse_credentials,
    verify_request,
)
from openaml.protocol.spec import ServiceSpec

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SECRETS = {KEY: SECRET}
URL = "http://127.0.0.1:8080/"
UTC = dt.UTC


def sign(body: bytes, url: str = URL, secret: str = SECRET, key: str = KEY,
         region: str = "us-east-1", service: str = "machinelearning",
         extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers as the server receives them for a request botocore signed just now."""
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": "AmazonML_20141212.Predict",
        "Content-Type": "application/x-amz-json-1.1", **(extra or {})})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = urlsplit(url).netloc  # added by the HTTP client, signed by botocore
    headers["User-Agent"] = "Boto3/1.x"  # unsigned headers may be added freely
    return headers


def verify(headers: dict[str, str], body: bytes, url: str = URL,
           lookup: Any = SECRETS.get, now: dt.datetime | None = None) -> str:
    return verify_request("POST", url, headers, body, lookup, now or dt.datetime.now(UTC))


BODY = ('{"MLModelId":"m","Record":{"text":"héllo wörld ☃"},'
        '"PredictEndpoint":"http://h"}').encode()


def test_valid_request_with_non_ascii_body() -> None:
    assert verify(sign(BODY), BODY) == KEY


def test_valid_request_lower_case_headers_https_and_query() -> None:
    url = "https://ml.example.com:8443/?b=2&a=1"
    headers = {k.lower(): v for k, v in sign(BODY, url=url).items()}
    assert verify(headers, BODY, url=url) == KEY


def test_other_region_is_accepted() -> None:
    assert verify(sign(BODY, region="eu-west-1"), BODY) == KEY


def test_signed_content_sha256_header() -> None:
    good = sign(BODY, extra={"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()})
    assert verify(good, BODY) == KEY
    lying = sign(BODY, extra={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()})
    with pytest.raises(errors.InvalidSignatureException):
        verify(lying, BODY)


@pytest.mark.parametrize("tamper", [
    lambda h, b: (h, b.replace(b'"m"', b'"n"')),
    lambda h, b: ({**h, "X-Amz-Target": "AmazonML_20141212.DeleteMLModel"}, b),
    lambda h, b: ({**h, "Host": "evil.example.com"}, b),
    lambda h, b: ({**h, "Authorization": h["Authorization"][:-1] +
                   ("0" if h["Authorization"][-1] != "0" else "1")}, b),
])
def test_tampered_request_is_rejected(tamper: Any) -> None:
    headers, body = tamper(sign(BODY), BODY)
    with pytest.raises(errors.InvalidSignatureException) as info:
        verify(headers, body)
    assert info.value.http_status == 400


def test_wrong_secret() -> None:
    with pytest.raises(errors.InvalidSignatureException):
        verify(sign(BODY, secret="not-the-secret"), BODY)


def test_unknown_key() -> None:
    with pytest.raises(errors.UnrecognizedClientException):
        verify(sign(BODY, key="AKIDUNKNOWN"), BODY)


def test_wrong_service_scope() -> None:
    with pytest.raises(errors.InvalidSignatureException):
        verify(sign(BODY, service="s3"), BODY)


@pytest.mark.parametrize("minutes,ok", [(14, True), (-14, True), (16, False), (-16, False)])
def test_clock_skew(minutes: int, ok: bool) -> None:
    headers = sign(BODY)
    now = dt.datetime.now(UTC) + dt.timedelta(minutes=minutes)
    if ok:
        assert verify(headers, BODY, now=now) == KEY
    else:
        with pytest.raises(errors.InvalidSignatureException) as info:
            verify(headers, BODY, now=now)
        assert info.value.message.startswith("Signature expired")


def test_missing_authorization() -> None:
    headers = sign(BODY)
    del headers["Authorization"]
    for lookup in (SECRETS.get, None):
        with pytest.raises(errors.MissingAuthenticationTokenException) as info:
            verify(headers, BODY, lookup=lookup)
        assert info.value.http_status == 400


@pytest.mark.parametrize("value", [
    "AWS4-HMAC-SHA256",
    "Bearer abc",
    "AWS AKID:sig",
    "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/machinelearning/aws4_request",
    "AWS4-HMAC-SHA256 Credential=AKID/2015/us-east-1/machinelearning/aws4_request, "
    "SignedHeaders=host, Signature=" + "a" * 64,
    "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/machinelearning/aws4_request, "
    "SignedHeaders=host, Signature=xyz",
    "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/machinelearning/aws4_request, "
    "SignedHeaders=Host;X-Amz-Date, Signature=" + "a" * 64,
])
def test_malformed_authorization(value: str) -> None:
    for lookup in (SECRETS.get, None):
        with pytest.raises(errors.IncompleteSignatureException):
            verify({**sign(BODY), "Authorization": value}, BODY, lookup=lookup)


def test_missing_or_bad_date() -> None:
    headers = sign(BODY)
    del headers["X-Amz-Date"]
    with pytest.raises(errors.IncompleteSignatureException):
        verify(headers, BODY)
    with pytest.raises(errors.IncompleteSignatureException):
        verify({**headers, "X-Amz-Date": "yesterday"}, BODY)


def test_host_must_be_signed() -> None:
    value = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/machinelearning/"
             "aws4_request, SignedHeaders=x-amz-date, Signature=" + "a" * 64)
    headers = {"Authorization": value, "X-Amz-Date": "20150830T123600Z"}
    with pytest.raises(errors.InvalidSignatureException):
        verify(headers, BODY, now=dt.datetime(2015, 8, 30, 12, 40, tzinfo=UTC))


def test_permissive_mode_only_parses() -> None:
    headers = sign(BODY, secret="anything", key="AKIDANY")
    assert verify(headers, b"tampered", lookup=None, now=dt.datetime(2000, 1, 1, tzinfo=UTC)) \
        == "AKIDANY"


def test_parse_authorization_fields() -> None:
    auth = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/machinelearning/aws4_request,"
        "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0f" * 32)
    assert (auth.access_key_id, auth.date, auth.region, auth.service) == \
        ("AKID", "20150830", "eu-west-1", "machinelearning")
    assert auth.signed_headers == ("content-type", "host", "x-amz-date")
    assert auth.signature == "0f" * 32


def test_aws_documentation_example_signature() -> None:
    """The worked example of the SigV4 documentation (IAM ListUsers), computed independently."""
    url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"
    headers = {
        "Host": "iam.amazonaws.com",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
                         "aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
                         "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"}
    got = verify_request("GET", url, headers, b"", {"AKIDEXAMPLE": SECRET}.get,
                         dt.datetime(2015, 8, 30, 12, 40, tzinfo=UTC), service="iam",
                         must_sign=("host",))
    assert got == "AKIDEXAMPLE"


def test_parse_credentials_both_formats(tmp_path: Path) -> None:
    text = ("# server keys\n\nAKIDBOB:bob/secret+1\n ; another comment\n"
            "[alice]\naws_access_key_id = AKIDALICE\naws_secret_access_key = s3cr3t\n\n"
            "[default]\naws_access_key_id=AKIDDEF\naws_secret_access_key=def:with:colons\n")
    expected = {"AKIDBOB": "bob/secret+1", "AKIDALICE": "s3cr3t", "AKIDDEF": "def:with:colons"}
    assert parse_credentials(text) == expected
    path = tmp_path / "credentials"
    path.write_text(text, encoding="utf-8")
    assert load_credentials(path) == expected
    assert parse_credentials("") == {}


@pytest.mark.parametrize("text", ["AKIDONLY\n", ":secret\n", "[x]\naws_access_key_id=A\n"])
def test_parse_credentials_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_credentials(text)


class _Captured(Exception):
    pass


def test_real_boto3_predict_request_verifies_and_parses() -> None:
    """The exact request boto3 sends (host switched to PredictEndpoint), stopped before the wire."""
    client = boto3.client("machinelearning", endpoint_url="http://localhost:1",
                          region_name="eu-west-1", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET)
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request)
        raise _Captured()

    client.meta.events.register("before-send.machinelearning.Predict", capture)
    record = {"text": "naïve café ☃", "x": "1"}
    with pytest.raises(_Captured):
        client.predict(MLModelId="ml-1", Record=record, PredictEndpoint="http://127.0.0.1:8080")
    request = sent[0]
    headers = {**dict(request.headers.items()), "Host": urlsplit(request.url).netloc}
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in headers.items()}
    assert headers["Host"] == "127.0.0.1:8080"
    assert verify_request(request.method, request.url, headers, request.body, SECRETS.get,
                          dt.datetime.now(UTC)) == KEY
    spec = ServiceSpec.load()
    operation = resolve_target(spec, headers["X-Amz-Target"])
    assert parse_request(operation, request.body) == {
        "MLModelId": "ml-1", "Record": record, "PredictEndpoint": "http://127.0.0.1:8080"}


def test_user_names_come_from_credential_sections(tmp_path):
    from openaml.protocol.sigv4 import load_user_names

    path = tmp_path / "credentials"
    path.write_text("AKIDROOT:s1\n[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = s2\n"
                    "[alice]\naws_access_key_id = AKIDALICE\naws_secret_access_key = s3\n")
    assert load_user_names(path) == {"AKIDALICE": "alice"}


@pytest.mark.parametrize(("text", "message"), [
    ("[a]\naws_access_key_id=A\naws_secret_access_key=S\n[a]\n", "line 4: section [a] appears twice"),
    ("K:S\n[a]\naws_access_key_id=A\naws_access_key_id=B\n", "line 4: aws_access_key_id appears twice"),
    ("K:S\n\n[a]\nstray\n", "line 4: expected KEY = VALUE in a section, not 'stray'"),
])
def test_an_ini_syntax_error_names_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "credentials"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=f"credentials file {path}: {re.escape(message)}"):
        load_credentials(path)


def test_a_credentials_file_without_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no access key"):
        load_credentials(path)
