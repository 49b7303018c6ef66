"""FaultProxy: an HTTP proxy in front of an S3 server that can be told to misbehave.

It relays each request of a kept-alive connection on its own, so a fault starts at a request,
not at a connection. A fault is armed with `fail(mode, seconds, methods)`: it begins at the
next request whose method is in `methods` and lasts `seconds`, for at most `times` requests
(or until `heal()`). Modes:
`503` answers with S3's ServiceUnavailable error, `drop` closes the connection without an
answer (what a stopped S3 server looks like to a client), `cut` relays the response but closes
the connection halfway through its body. An upstream that cannot be reached is a `drop` too.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

UNAVAILABLE = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
               b"<Message>Service is unable to handle request.</Message></Error>")
ALL_METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class _Fault:
    mode: str
    seconds: float
    methods: frozenset[str]
    times: int | None = None
    on_cut: Callable[[], None] | None = None
    started: float | None = None
    hits: int = 0


@dataclass
class _State:
    fault: _Fault | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, outcome
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to `upstream` (an http:// URL)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.state = _State()
        handler = type("Handler", (_Relay,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, mode: str, seconds: float, methods: Iterable[str] = ALL_METHODS,
             times: int | None = None, on_cut: Callable[[], None] | None = None) -> None:
        """Arm a fault: from the next request with one of `methods`, for `seconds` (and at most
        `times` requests); `on_cut` runs after a `cut` answer, before the connection closes."""
        assert mode in ("503", "drop", "cut"), mode
        with self.state.lock:
            self.state.fault = _Fault(mode, seconds, frozenset(methods), times, on_cut)

    def heal(self) -> None:
        with self.state.lock:
            self.state.fault = None

    def outcomes(self) -> Counter[str]:
        with self.state.lock:
            return Counter(self.state.outcomes)

    def requests(self) -> list[tuple[str, str, str]]:
        with self.state.lock:
            return list(self.state.requests)

    def fault_started(self) -> bool:
        with self.state.lock:
            return self.state.fault is not None and self.state.fault.started is not None

    def decide(self, method: str, path: str) -> tuple[str, Callable[[], None] | None]:
        """The outcome for one request: `pass` or the armed fault's mode (and its hook)."""
        with self.state.lock:
            fault = self.state.fault
            outcome, hook = "pass", None
            if fault is not None:
                now = time.monotonic()
                if fault.started is None and method in fault.methods:
                    fault.started = now
                if fault.started is not None:
                    if now - fault.started < fault.seconds and fault.times != fault.hits:
                        outcome, hook = fault.mode, fault.on_cut
                        fault.hits += 1
                    else:
                        self.state.fault = None
            self.state.outcomes[outcome] += 1
            self.state.requests.append((method, path, outcome))
            return outcome, hook


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy
    upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Quiet: the proxy's record is FaultProxy.requests()."""

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's names
        self._relay()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    def finish(self) -> None:
        super().finish()
        if self.upstream is not None:
            self.upstream.close()

    def _relay(self) -> None:
        body = self._request_body()
        outcome, on_cut = self.proxy.decide(self.command, self.path)
        if outcome == "drop":
            self.close_connection = True
            return
        if outcome == "503":
            self._answer(503, [("Content-Type", "application/xml")], UNAVAILABLE)
            return
        try:
            status, headers, answer = self._forward(body)
        except OSError:  # the S3 server is down: the client sees its connection dropped
            self.close_connection = True
            return
        if outcome == "cut" and len(answer) > 1:
            self._answer(status, headers, answer, cut_at=len(answer) // 2)
            if on_cut is not None:
                on_cut()
            self.close_connection = True
            return
        self._answer(status, headers, answer)

    def _request_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = b""
            while True:
                size_line = self.rfile.readline()
                raw += size_line
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size + 2)
                raw += chunk
                if size == 0:
                    while chunk not in (b"\r\n", b""):  # trailers, then the empty line
                        chunk = self.rfile.readline()
                        raw += chunk
                    return raw
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.upstream is None:
            self.upstream = http.client.HTTPConnection(*self.proxy.upstream, timeout=30)
        try:
            self.upstream.putrequest(self.command, self.path, skip_host=True,
                                     skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_HEADERS or name.lower() == "transfer-encoding":
                    self.upstream.putheader(name, value)
            self.upstream.endheaders(body or None)
            response = self.upstream.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as err:
            self.upstream.close()
            self.upstream = None
            raise OSError(str(err)) from err
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_HEADERS]
        return response.status, headers, answer

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes,
                cut_at: int | None = None) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() != "content-length" or self.command == "HEAD":
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body if cut_at is None else body[:cut_at])
        self.wfile.flush()
