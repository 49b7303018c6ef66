"""What one HTTP client may hold of the server: connections, and time between a request's parts.

uvicorn closes a connection idle after a response (its keep-alive timeout), but not one that
never sends a complete request: 20,000 idle connections took every file descriptor of the
process, after which every client, health checks too, was dropped without a word; and a body
that stops midway held its memory as long as its client liked. Every uvicorn server of
OpenAML (`serve`, its HTTP helpers, the embedded server) uses `server_config`, whose protocol
closes a connection whose request line and headers have not all come within HEAD_SECONDS, or
whose body pauses for BODY_IDLE_SECONDS, and refuses connections past `max_connections()`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

HEAD_SECONDS = 10.0  # from a connection's start, or a request's first byte, to its last header
BODY_IDLE_SECONDS = 30.0  # the longest pause within a body (while the server reads it)
KEEP_ALIVE_SECONDS = 5  # an idle connection after a response (uvicorn's default)
SPARE_DESCRIPTORS = 256  # kept for the store, the artifacts and the jobs' files
REFUSALS_LOGGED_EVERY = 10.0  # seconds between two warnings of refused connections


def max_connections() -> int:
    """Connections a process serves at once: its open-file limit less SPARE_DESCRIPTORS, at
    least 64 (a 1,024-descriptor limit serves 768)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65_536
    return max(64, soft - SPARE_DESCRIPTORS)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for a request's head and pauses within its
    body, and a cap on the connections of the process."""

    limit = max_connections()
    _last_warning = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._in_body = self._upgraded = self._continuing = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limit:
            self._warn(f"more than {self.limit:,} connections: a new one was closed at once")
            transport.close()
            return
        self._arm(HEAD_SECONDS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_body:
            self._arm(BODY_IDLE_SECONDS)  # the body goes on
        super().data_received(data)
        # bytes that begin no request (a bare line break after a response) stopped uvicorn's
        # keep-alive deadline and armed none: the connection stayed open for ever
        if self._timer is None and self.timeout_keep_alive_task is None and not self.transport.is_closing():
            self._arm(HEAD_SECONDS)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(HEAD_SECONDS)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._in_body, self._continuing = True, False
        self._arm(BODY_IDLE_SECONDS)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._in_body:  # uvicorn's keep-alive deadline, or the next pipelined request's
            self._disarm()

    def handle_websocket_upgrade(self) -> None:
        self._upgraded = True  # another protocol takes the connection: no deadline of ours
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if not self._upgraded:
            self._timer = self.loop.call_later(seconds, self._late)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _late(self) -> None:
        """A head or a body took too long: the connection is closed (its request, if begun,
        sees its client disconnect). Not while the server is what waits: it has stopped
        reading (busy with what came, a pipelined request for one), it answers a request, or
        it has yet to ask for a body sent after `100 Continue`."""
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_body:
            asked_late = self._continuing  # a deadline began before `100 Continue` went: one more
            self._continuing = cycle is not None and cycle.waiting_for_100_continue
            waiting = self._continuing or asked_late
        else:
            waiting = cycle is not None and not cycle.response_complete
        if waiting or (self.flow is not None and self.flow.read_paused):
            self._arm(BODY_IDLE_SECONDS if self._in_body else HEAD_SECONDS)
            return
        self._warn(f"a connection whose request {'body paused' if self._in_body else 'head took'} over "
                   f"{BODY_IDLE_SECONDS if self._in_body else HEAD_SECONDS:g} s was closed")
        self.transport.close()

    @classmethod
    def _warn(cls, message: str) -> None:
        now = time.monotonic()
        if now - cls._last_warning >= REFUSALS_LOGGED_EVERY:
            cls._last_warning = now
            log.warning("%s (such lines are logged at most every %g s)", message, REFUSALS_LOGGED_EVERY)


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration of an OpenAML server: GuardedProtocol, and `options`."""
    return uvicorn.Config(app, http=GuardedProtocol, timeout_keep_alive=KEEP_ALIVE_SECONDS, **options)
