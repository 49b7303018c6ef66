"""A fuzzed server: sends requests, counts answers, and checks each one against the property.

Property: every answer is a 2xx with a JSON object, or a 4xx AWS JSON error
`{"__type": ..., "message": ...}` whose HTTP status is the one of its type, with an
x-amzn-RequestId header; never a 5xx, never a hang, and the server logs no unexpected error
for it. Requests whose HTTP framing is broken on purpose may instead be refused by the HTTP
server itself (a plain 4xx) or see the connection closed.

Each kind of violation raises its own AssertionError subclass, and a 5xx or logged error one
named after the server's exception, so that Hypothesis reports distinct causes separately.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import re
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from openaml.app import Application
from tests.fuzz.wire import ERROR_STATUS, TARGET_PREFIX, TIMEOUT, Answer, Hang, Request, exchange, send, signed_headers

_REQUEST_FAILED = re.compile(r"request (\S+) failed")


class Violation(AssertionError):
    """An answer that breaks the property."""


class BadAnswer(Violation):
    """Not a 2xx JSON object nor a 4xx AWS JSON error of the right status."""


class MissingRequestId(Violation):
    """No x-amzn-RequestId header."""


class ServerFault(Violation):
    """A 5xx answer, or an unexpected error in the server log."""


@functools.cache
def fault_class(cause: str) -> type[ServerFault]:
    """One ServerFault subclass per server-side cause (`OverflowError at describe.py:170`)."""
    return type(f"ServerFault[{cause}]", (ServerFault,), {})


class Tally:
    """Answers by status over the whole session ('hang' and 'closed' included), and by test."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[str] = collections.Counter()
        self.by_test: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.test = ""

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def count(self, status: int | str | None) -> None:
        self.statuses["closed" if status is None else str(status)] += 1
        self.by_test[self.test] += 1

    def summary(self) -> str:
        ordered = sorted(self.statuses.items(), key=lambda kv: (not kv[0].isdigit(), kv[0]))
        shown = ", ".join(f"{k}: {v}" for k, v in ordered)
        return f"{self.requests} requests fuzzed: statuses {{{shown}}}"

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "statuses": dict(self.statuses),
                "by_test": dict(self.by_test), "violations_with_shrink_replays": dict(self.faults)}


@dataclass(frozen=True)
class Logged:
    """One ERROR record of the server, kept as text (no frames are held on to)."""

    logger: str
    message: str
    cause: str  # `ExceptionType at file.py:line` of the innermost frame, or the message
    text: str  # message and traceback

    @property
    def during_request(self) -> bool:
        """Logged while answering a request (not by a background job)."""
        return bool(_REQUEST_FAILED.match(self.message)) or self.logger.startswith("uvicorn")


class ServerLog(logging.Handler):
    """ERROR records of the in-process servers (their request failures and job crashes)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[Logged] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        cause, text = f"{record.name}: {message[:80]}", f"{record.name} {record.levelname}: {message}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
            cause = f"{type(exc).__name__}{where}"
            text += "\n" + "".join(traceback.format_exception(exc))[-3000:]
        with self._lock:
            self.records.append(Logged(record.name, message, cause, text))

    def mark(self) -> int:
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> list[Logged]:
        with self._lock:
            return self.records[mark:]


def problems(answer: Answer, framing_ok: bool) -> list[tuple[type[Violation], str]]:
    """Everything wrong with an answer (empty when it satisfies the property)."""
    if answer.status is None:
        return [] if not framing_ok else [(BadAnswer, "connection closed without an answer")]
    if answer.status >= 500:
        return [(ServerFault, f"HTTP {answer.status}")]
    from_app = "x-amzn-requestid" in answer.headers
    if not framing_ok and not from_app:
        ok = 400 <= answer.status < 500
        return [] if ok else [(BadAnswer, "the HTTP server answered neither 4xx nor via the app")]
    found: list[tuple[type[Violation], str]] = []
    if not from_app:
        found.append((MissingRequestId, "no x-amzn-RequestId header"))
    try:
        document = json.loads(answer.body)
    except ValueError:
        return [*found, (BadAnswer, "body is not JSON")]
    if not isinstance(document, dict):
        return [*found, (BadAnswer, "body is not a JSON object")]
    if 200 <= answer.status < 300:
        return found
    if not 400 <= answer.status < 500:
        return [*found, (BadAnswer, f"status {answer.status} is neither 2xx nor 4xx")]
    kind, message = document.get("__type"), document.get("message")
    if not isinstance(kind, str) or not isinstance(message, str):
        found.append((BadAnswer, "error body lacks a string __type and message"))
    elif ERROR_STATUS.get(kind) != answer.status:
        found.append((BadAnswer, f"{kind} answered with HTTP {answer.status}, "
                                 f"its type's status is {ERROR_STATUS.get(kind)}"))
    return found


class Target:
    """A running server under fuzz, its log and the session's tally."""

    def __init__(self, app: Application, log: ServerLog, tally: Tally, keys: dict[str, str] | None = None) -> None:
        self.app, self.log, self.tally, self.keys = app, log, tally, keys or {}

    def __repr__(self) -> str:  # shown in Hypothesis's failing examples
        return f"Target({self.app.settings.base_url}, keys={bool(self.keys)})"

    @property
    def address(self) -> tuple[str, int]:
        return (self.app.settings.host, self.app.settings.port)

    def post(self, request: Request, framing_ok: bool = True, timeout: float = TIMEOUT) -> Answer:
        """Send, count and check one request; a Violation (with a reproducer) if it fails."""
        mark = self.log.mark()
        try:
            answer = send(self.address, request, timeout)
        except Hang as exc:
            self.tally.count("hang")
            raise Hang(f"{exc}\nrequest: {request.summary()}") from None
        self.tally.count(answer.status)
        if request.half_close:
            # The server may still be winding the request up: one more answer from its event
            # loop makes sure whatever it logs for this request is logged by now.
            self.get("/health")
        self.judge(request.summary(), answer, framing_ok, mark)
        return answer

    def judge(self, shown: str, answer: Answer, framing_ok: bool, mark: int) -> None:
        found = problems(answer, framing_ok)
        logged = [r for r in self.log.since(mark) if r.during_request]
        for record in logged:
            found.append((fault_class(record.cause), record.text))
        if found and answer.status is not None and answer.status >= 500 and logged:
            found = [f for f in found if f[0] is not ServerFault]  # named by its logged cause
        if found:
            for cls, _ in found:
                self.tally.faults[cls.__name__] += 1
            detail = "\n".join(text for _, text in found)
            raise found[0][0](f"{detail}\nrequest: {shown}\nanswer: {answer.describe()}")

    def call(self, operation: str, params: dict[str, Any], **headers: str | None) -> Answer:
        body, target = json.dumps(params).encode(), f"{TARGET_PREFIX}.{operation}"
        if self.keys:
            key, secret = next(iter(self.keys.items()))
            headers = {**signed_headers(self.address, target, body, key, secret), **headers}
        return self.post(Request(target, body, dict(headers)))

    def get(self, path: str) -> Answer:
        host = f"{self.address[0]}:{self.address[1]}"
        head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        answer = exchange(self.address, [head])
        self.tally.count(answer.status)
        return answer

    def assert_healthy(self) -> None:
        """GET /health answers 200 and a plain DescribeDataSources works."""
        health = self.get("/health")
        assert health.status == 200, health.describe()
        listed = self.call("DescribeDataSources", {"Limit": 1})
        assert listed.status == 200, listed.describe()
        assert isinstance(listed.json(), dict)

