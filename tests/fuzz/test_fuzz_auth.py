"""A server with access keys: signed requests of every operation, and signatures broken in
every part (key, scope, date, signed headers, signature, payload), never verified wrongly."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from openaml.protocol.spec import ServiceSpec
from tests.fuzz.conftest import ACCESS_KEYS
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.shapes import World, bodies, texts
from tests.fuzz.target import Target
from tests.fuzz.wire import TARGET_PREFIX, Request, plain_header_value, signed_headers

SPEC = ServiceSpec.load()
OPERATIONS = st.sampled_from(SPEC.operation_names)
AUTH_ERRORS = {"MissingAuthenticationTokenException", "IncompleteSignatureException",
               "UnrecognizedClientException", "InvalidSignatureException"}
KEY, SECRET = next(iter(ACCESS_KEYS.items()))


def _sign(target: Target, operation: str, body: bytes) -> tuple[str, dict[str, str | None]]:
    name = f"{TARGET_PREFIX}.{operation}"
    return name, signed_headers(target.address, name, body, KEY, SECRET)


@fuzz_settings(3)
@given(data=st.data())
def test_signed_requests_pass_verification(keyed_server: Target, world: World, data: st.DataObject) -> None:
    operation = data.draw(OPERATIONS, label="operation")
    body = data.draw(bodies(SPEC.operation(operation), world), label="body")
    name, headers = _sign(keyed_server, operation, body)
    answer = keyed_server.post(Request(name, body, headers))
    if answer.status != 200:
        assert answer.json()["__type"] not in AUTH_ERRORS, answer.describe()  # type: ignore[index]


AUTH_MUTATIONS = st.one_of(
    st.sampled_from([
        (r"Signature=[0-9a-f]", "Signature=g"), (r"Signature=([0-9a-f]{63})[0-9a-f]", r"Signature=\g<1>0"),
        (r"Credential=AKIDFUZZ", "Credential=AKIDOTHER"), (r"Credential=AKIDFUZZ", "Credential="),
        (r"/\d{8}/", "/19700101/"), (r"/us-east-1/", "/../"), (r"/machinelearning/", "/s3/"),
        (r"SignedHeaders=[^,]*", "SignedHeaders=x-amz-date"), (r"SignedHeaders=[^,]*", "SignedHeaders=host;host"),
        (r"SignedHeaders=[^,]*", "SignedHeaders=host;x-amz-date;x-not-sent"), (r"AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
        (r", ", ","), (r", ", " , "), (r"$", ", Extra=1"), (r"$", ", Signature=" + "a" * 64), (r"^", " "),
        (r"aws4_request", "aws4_request/"), (r"Credential=", "credential="),
    ]),
    st.tuples(st.just(r"Signature=[0-9a-f]{64}"), st.from_regex(r"Signature=[0-9a-f]{64}", fullmatch=True)),
    st.tuples(st.just(r"Credential=[^,]*"), texts().map(lambda t: "Credential=" + t.replace("\\", "\\\\"))),
)
# Changes that keep the header's meaning: the request must still pass.
HARMLESS = {(r", ", ","), (r", ", " , "), (r"$", ", Extra=1"), (r"^", " ")}
DATE_MUTATIONS = st.sampled_from([
    None, "", "20260101T000000Z", "19700101T000000Z", "99991231T235959Z", "2026-01-01T00:00:00Z", "junk",
    "00000000T000000Z", "20261340T256199Z"])


@fuzz_settings(3)
@given(data=st.data())
def test_broken_signatures_are_refused(keyed_server: Target, world: World, data: st.DataObject) -> None:
    operation = data.draw(OPERATIONS, label="operation")
    body = data.draw(bodies(SPEC.operation(operation), world), label="body")
    name, headers = _sign(keyed_server, operation, body)
    what = data.draw(st.sampled_from(["authorization", "date", "payload", "body", "target", "date header"]),
                     label="broken part")
    authorization, must_refuse = str(headers["Authorization"]), True
    if what == "authorization":
        pattern, new = data.draw(AUTH_MUTATIONS, label="mutation")
        changed = re.sub(pattern, new, authorization, count=1)
        if changed == authorization:
            return
        headers["Authorization"] = changed
        must_refuse = (pattern, new) not in HARMLESS
    elif what == "date":
        headers["X-Amz-Date"] = data.draw(DATE_MUTATIONS, label="date")
    elif what == "payload":
        headers["X-Amz-Content-Sha256"] = data.draw(st.sampled_from(["0" * 64, "UNSIGNED-PAYLOAD", ""]),
                                                    label="sha256")
    elif what == "body":
        body = body + b" "
    elif what == "target":
        name = f"{TARGET_PREFIX}.{data.draw(OPERATIONS, label='other operation')}"
        if name == f"{TARGET_PREFIX}.{operation}":
            return
    else:
        headers["X-Amz-Date"] = None
        headers["Date"] = data.draw(st.one_of(st.sampled_from([
            "Thu, 01 Jan 2026 00:00:00 GMT", "Mon, 01 Jan 99999 00:00:00 GMT", "Mon, 32 Foo 2026 25:61:61 GMT",
            "0", ""]), texts()), label="date header")
    framing_ok = all(plain_header_value(v) for v in headers.values())
    answer = keyed_server.post(Request(name, body, headers), framing_ok=framing_ok)
    if must_refuse and "x-amzn-requestid" in answer.headers:
        kind = answer.json()["__type"]  # type: ignore[index]
        assert kind in {*AUTH_ERRORS, "RequestEntityTooLargeException"}, answer.describe()  # size may come first
