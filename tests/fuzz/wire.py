"""Raw HTTP/1.1 over a socket: requests exactly as written (odd headers, chunked bodies, a
wrong Content-Length, a half-closed connection), answers read with http.client."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openaml.errors import ServiceError

TARGET_PREFIX = "AmazonML_20141212"
CONTENT_TYPE = "application/x-amz-json-1.1"
TIMEOUT = 10.0  # seconds a request may take before it counts as a hang
# A well-formed Authorization header: accepted unverified by a server without access keys.
FAKE_AUTHORIZATION = ("AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20260101/us-east-1/machinelearning/"
                      "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
ODD_HOSTS = (
    "", " ", "evil.example", "evil.example:80", "localhost", "localhost:1", "LOCALHOST", "localhost.", "127.0.0.1",
    "127.1", "127.0.0.1:99999", "127.0.0.1:abc", "127.example.com", "[::1]", "[::1", "::1", "[", "]", "[]",
    "[::1]:x", "[v1.x]", "[::1%25lo]", "[::ffff:127.0.0.1]", "0x7f000001", "2130706433", "%31%32%37.0.0.1",
    "127.0.0.1@evil", "evil@127.0.0.1", "x" * 9000)


def _error_classes(base: type[ServiceError]) -> Iterator[type[ServiceError]]:
    for cls in base.__subclasses__():
        yield cls
        yield from _error_classes(cls)


# The HTTP status of each AWS error type the server answers with.
ERROR_STATUS = {cls.error_type: cls.http_status for cls in _error_classes(ServiceError)}


class Hang(AssertionError):
    """The server neither answered nor closed the connection within the timeout."""


@dataclass(frozen=True)
class Answer:
    """What came back: status None means the server closed the connection without an answer."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    seconds: float

    def json(self) -> object:
        return json.loads(self.body)

    def describe(self) -> str:
        shown = self.body[:600].decode("utf-8", "replace")
        return f"HTTP {self.status} {dict(self.headers)} {shown!r}"


@dataclass
class Request:
    """One POST / as bytes: headers in order (a None value drops a default), body in parts."""

    target: str | None
    body: bytes
    headers: dict[str, str | None] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # send Transfer-Encoding: chunked with these chunks
    content_length: str | None = None  # sent instead of the true length when set
    half_close: bool = False  # shut the write side after sending (EOF to the server)
    keep_alive: bool = False  # ask to keep the connection open for a next request

    def head(self, host: str) -> dict[str, str]:
        base: dict[str, str | None] = {
            "Host": host, "Content-Type": CONTENT_TYPE, "X-Amz-Target": self.target,
            "X-Amz-Date": "20260101T000000Z", "Authorization": FAKE_AUTHORIZATION,
        }
        if self.chunks is not None:
            base["Transfer-Encoding"] = "chunked"
        else:
            given = self.content_length
            base["Content-Length"] = str(len(self.body)) if given is None else given
        base.update(self.headers)
        base["Connection"] = "keep-alive" if self.keep_alive else "close"
        return {k: v for k, v in base.items() if v is not None}

    def encode(self, host: str) -> list[bytes]:
        lines = [b"POST / HTTP/1.1"]
        lines += [f"{k}: {v}".encode("latin-1", "replace") for k, v in self.head(host).items()]
        parts = [b"\r\n".join(lines) + b"\r\n\r\n"]
        if self.chunks is None:
            parts.append(self.body)
        else:
            parts += [b"%x\r\n%s\r\n" % (len(c), c) for c in self.chunks if c]
            parts.append(b"0\r\n\r\n")
        return parts

    def summary(self) -> str:
        head = {k: (v if len(v) < 200 else v[:200] + "...") for k, v in self.head("HOST").items()}
        body = self.body if len(self.body) <= 600 else self.body[:600] + b"...(%d bytes)" % len(self.body)
        extra = f" chunks={len(self.chunks)}" if self.chunks is not None else ""
        return f"target={self.target!r} headers={head}{extra} body={body!r}"


def plain_header_value(value: str | None) -> bool:
    """Whether an HTTP server must pass a header value on: no control characters but tabs
    (characters beyond latin-1 are sent as '?')."""
    return value is None or all(ch == "\t" or (ord(ch) >= 32 and ord(ch) != 127) for ch in value)


def exchange(address: tuple[str, int], parts: Iterable[bytes], timeout: float = TIMEOUT,
             half_close: bool = False) -> Answer:
    """Send the parts on a fresh connection and read one answer (Hang after `timeout`)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=timeout) as sock:
        try:
            for part in parts:
                sock.sendall(part)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read()
        except TimeoutError:
            raise Hang(f"no answer within {timeout} s") from None
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead):
            return Answer(None, {}, b"", time.monotonic() - started)
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, body, time.monotonic() - started)


def read_answer(stream: BinaryIO) -> Answer:
    """One answer read from a kept-alive connection (the answers here carry a Content-Length);
    status None when the connection ends first."""
    started = time.monotonic()
    status_line = stream.readline()
    if not status_line:
        return Answer(None, {}, b"", 0.0)
    headers: dict[str, str] = {}
    while (line := stream.readline().rstrip(b"\r\n")):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", "0")))
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)


def send(address: tuple[str, int], request: Request, timeout: float = TIMEOUT) -> Answer:
    host = f"{address[0]}:{address[1]}"
    return exchange(address, request.encode(host), timeout, request.half_close)


def signed_headers(address: tuple[str, int], target: str, body: bytes, key: str,
                   secret: str) -> dict[str, str | None]:
    """X-Amz-Date and Authorization of a request signed now by botocore's SigV4Auth."""
    request = AWSRequest(method="POST", url=f"http://{address[0]}:{address[1]}/", data=body,
                         headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": target})
    SigV4Auth(Credentials(key, secret), "machinelearning", "us-east-1").add_auth(request)
    return {"X-Amz-Date": request.headers["X-Amz-Date"],
            "Authorization": request.headers["Authorization"]}
