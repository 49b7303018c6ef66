"""The HTTP layer: odd X-Amz-Target, Content-Type, Authorization and other headers; bodies sent
chunked, with a wrong Content-Length, or larger than the server's limit."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openaml.protocol.spec import ServiceSpec
from tests.fuzz.conftest import SMALL_BODY_LIMIT
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.shapes import World, bodies, texts
from tests.fuzz.target import Target
from tests.fuzz.wire import (
    CONTENT_TYPE,
    FAKE_AUTHORIZATION,
    ODD_HOSTS,
    TARGET_PREFIX,
    Request,
    plain_header_value,
    read_answer,
)

SPEC = ServiceSpec.load()
OPERATIONS = st.sampled_from(SPEC.operation_names)
STALL_SECONDS = 5.0


def _target_variants(operation: str) -> st.SearchStrategy[str | None]:
    right = f"{TARGET_PREFIX}.{operation}"
    return st.one_of(
        st.just(right), st.none(),
        st.sampled_from([right.lower(), right.upper(), f" {right} ", f"{right}.", f".{right}", operation,
                         f"{TARGET_PREFIX}.", TARGET_PREFIX, f"AmazonML_20141213.{operation}",
                         f"{TARGET_PREFIX}.{operation}\t", f"{TARGET_PREFIX}..{operation}", "", "." * 1000,
                         f"{TARGET_PREFIX}.__init__", f"{TARGET_PREFIX}.create_ml_model",
                         f"{TARGET_PREFIX}.{operation}é", right + "x" * 10_000]),
        texts(),
    )


CONTENT_TYPES = st.one_of(st.sampled_from([
    CONTENT_TYPE, "application/json", "application/x-amz-json-1.0", f"{CONTENT_TYPE}; charset=utf-8",
    f"{CONTENT_TYPE.upper()}", "application/json;charset=latin-1", "text/plain", "", ";", "*/*",
    "application/x-amz-json-1.1 ; x=" + "y" * 5000, "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded", "application/json, text/plain", None]), texts())
AUTHORIZATIONS = st.one_of(st.sampled_from([
    FAKE_AUTHORIZATION, None, "", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "Bearer x", "AWS AKID:sig",
    FAKE_AUTHORIZATION.replace("aws4_request", "aws5_request"), FAKE_AUTHORIZATION + ", Signature=" + "1" * 64,
    FAKE_AUTHORIZATION.replace(", ", ","), FAKE_AUTHORIZATION.replace("0" * 64, "0" * 63),
    FAKE_AUTHORIZATION.replace("host;x-amz-date", ";"), FAKE_AUTHORIZATION.replace("20260101", "2026"),
    FAKE_AUTHORIZATION.replace("AKIDFUZZ", "AKID/FUZZ"), "AWS4-HMAC-SHA256 " + "Credential=," * 2000,
    FAKE_AUTHORIZATION.replace("Credential=", "Credential=" + "k" * 10_000)]), texts())
HOSTS = st.one_of(st.none(), st.sampled_from(ODD_HOSTS), texts())
EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["X-Amz-Date", "Date", "X-Amz-Content-Sha256", "Accept-Encoding", "Content-Encoding",
                     "Expect", "X-Forwarded-For", "X-Amz-Security-Token", "Origin", "Cookie", "User-Agent",
                     "X-Amzn-RequestId", "Accept"]),
    st.one_of(st.sampled_from(["", "gzip", "100-continue", "20260101T000000Z", "not a date", "0" * 64,
                               "Mon, 01 Jan 99999 00:00:00 GMT", "x" * 9000, "null", "http://evil.example",
                               "http://localhost", "http://127.0.0.1", "file://", "http://[::1"]), texts()),
    max_size=3)


@fuzz_settings(6)
@given(data=st.data())
def test_odd_headers(server: Target, world: World, data: st.DataObject) -> None:
    operation = data.draw(OPERATIONS, label="operation")
    body = data.draw(bodies(SPEC.operation(operation), world), label="body")
    headers = {
        "Content-Type": data.draw(CONTENT_TYPES, label="content type"),
        "Authorization": data.draw(AUTHORIZATIONS, label="authorization"),
        **data.draw(EXTRA_HEADERS, label="extra headers"),
    }
    if data.draw(st.booleans(), label="odd host"):
        headers["Host"] = data.draw(HOSTS, label="host")
    target = data.draw(_target_variants(operation), label="target")
    plain = all(plain_header_value(v) for v in [*headers.values(), target])
    server.post(Request(target, body, headers), framing_ok=plain)


def _chunks(body: bytes, cuts: list[int]) -> list[bytes]:
    edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return [body[a:b] for a, b in zip(edges, edges[1:])]


@fuzz_settings(4)
@given(data=st.data())
def test_odd_framing(server: Target, world: World, data: st.DataObject) -> None:
    """Chunked bodies are read like any other; a wrong Content-Length never costs a 5xx."""
    operation = data.draw(OPERATIONS, label="operation")
    body = data.draw(bodies(SPEC.operation(operation), world), label="body")
    how = data.draw(st.sampled_from(["chunked", "longer", "shorter", "garbage", "twice", "both"]), label="framing")
    request = Request(f"{TARGET_PREFIX}.{operation}", body)
    if how == "chunked":
        request.chunks = _chunks(body, data.draw(st.lists(st.integers(0, 10**6), max_size=20), label="cuts"))
        server.post(request)
        return
    if how == "longer":  # the body ends early and the client closes its side
        request.content_length = str(len(body) + data.draw(st.integers(1, 10**6), label="missing"))
        request.half_close = True
    elif how == "shorter":  # the rest looks like a second, pipelined request
        request.content_length = str(data.draw(st.integers(0, max(0, len(body) - 1)), label="length"))
    elif how == "garbage":
        request.content_length = data.draw(st.sampled_from(
            ["-1", "abc", "1e3", " 5", "0x10", "+5", "99999999999999999999999", "", "1,1", "5 5"]), label="length")
        request.half_close = True
    elif how == "twice":
        request.headers["content-length"] = str(len(body) + 1)
        request.half_close = True
    else:
        request.headers["Transfer-Encoding"] = "chunked"
    server.post(request, framing_ok=False)


@fuzz_settings(2)
@given(data=st.data())
def test_bodies_over_the_limit_are_refused(small_server: Target, data: st.DataObject) -> None:
    """Over max_body_bytes: 413 RequestEntityTooLargeException, declared or chunked."""
    size = SMALL_BODY_LIMIT + data.draw(st.integers(1, 3 * SMALL_BODY_LIMIT), label="excess")
    body = b'{"MLModelId":"' + b"a" * (size - 16) + b'"}'
    request = Request(f"{TARGET_PREFIX}.GetMLModel", body)
    if data.draw(st.booleans(), label="chunked"):
        request.chunks = _chunks(body, data.draw(st.lists(st.integers(0, size), max_size=30), label="cuts"))
    answer = small_server.post(request)
    assert answer.status == 413, answer.describe()
    assert answer.json()["__type"] == "RequestEntityTooLargeException"  # type: ignore[index]


def _stalled_answer(target: Target, head: bytes, sent: bytes) -> tuple[int | None, bytes]:
    """Send a request head and part of its body, keep the connection open, and return the status
    and the bytes the server sent within STALL_SECONDS (status None: no answer)."""
    received, ended = b"", False
    with socket.create_connection(target.address, timeout=STALL_SECONDS) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(head)
            sock.sendall(sent)
        deadline = time.monotonic() + STALL_SECONDS
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in received and not ended and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                received, ended = received + chunk, not chunk
    status = int(received[9:12]) if received.startswith(b"HTTP/1.1 ") else None
    target.tally.count(status if status is not None or ended else "hang")
    return status, received


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_an_oversized_body_is_refused_before_it_ends(small_server: Target, framing: str) -> None:
    """A body over the limit whose sender stalls is answered 413 at once, not read to its end:
    chunked, once the chunks read pass the limit; with a Content-Length, from the header."""
    excess = b"a" * (2 * SMALL_BODY_LIMIT)
    if framing == "chunked":
        request, sent = Request(f"{TARGET_PREFIX}.GetMLModel", b"", chunks=[]), b"%x\r\n%s\r\n" % (len(excess), excess)
    else:
        request, sent = Request(f"{TARGET_PREFIX}.GetMLModel", b"", content_length=str(100 * SMALL_BODY_LIMIT)), excess
    head = request.encode(f"{small_server.address[0]}:{small_server.address[1]}")[0]
    status, received = _stalled_answer(small_server, head, sent)
    assert status == 413, f"{framing} body over the limit, sender stalled: answer {received[:300]!r} " \
                          f"within {STALL_SECONDS} s"


@pytest.mark.parametrize("sent", [b"", b'{"Limit":'])
def test_a_client_that_leaves_mid_body_is_no_server_error(server: Target, sent: bytes) -> None:
    """Content-Length promises more than comes before the client closes its side: the server
    drops the request quietly (no InternalServerException logged for it)."""
    request = Request(f"{TARGET_PREFIX}.DescribeDataSources", sent, content_length="100", half_close=True)
    server.post(request, framing_ok=False)


@pytest.mark.parametrize("first", ["over the limit", "broken JSON", "unknown operation", "no signature"])
def test_a_kept_alive_connection_after_a_refusal(small_server: Target, first: str) -> None:
    """After a refused request on a kept-alive connection, the next request on it gets its own
    answer: a request hidden in the refused body is never run."""
    hidden = (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {TARGET_PREFIX}.DescribeTags\r\n"
              "Content-Length: 2\r\n\r\n{}").encode()
    body = hidden + b"a" * (2 * SMALL_BODY_LIMIT if first == "over the limit" else 10)
    refused = Request({"unknown operation": f"{TARGET_PREFIX}.Nope"}.get(first, f"{TARGET_PREFIX}.GetMLModel"),
                      body, {"Authorization": None} if first == "no signature" else {}, keep_alive=True)
    listing = Request(f"{TARGET_PREFIX}.DescribeDataSources", b"{}")
    host = f"{small_server.address[0]}:{small_server.address[1]}"
    with socket.create_connection(small_server.address, timeout=STALL_SECONDS) as sock:
        for part in [*refused.encode(host), *listing.encode(host)]:
            with contextlib.suppress(OSError):
                sock.sendall(part)
        stream = sock.makefile("rb")
        answers = [read_answer(stream) for _ in range(2)]
    for answer in answers:
        small_server.tally.count(answer.status)
    assert answers[0].status is not None and 400 <= answers[0].status < 500, answers[0].describe()
    second = answers[1]
    if second.status is not None:  # the server may close the connection after a refusal
        assert second.status == 200 and "Results" in second.json(), second.describe()  # type: ignore[operator]
