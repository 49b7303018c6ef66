"""GuardedProtocol's deadlines (server/connections.py) on a bare ASGI app over uvicorn: what
closes a connection, and what must not (a request being answered, a pipelined request the
server has stopped reading, a body asked for after `100 Continue`, a websocket)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from openaml.server import connections
from tests.api.test_connections import closed_within

SHORT = 0.5


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "text": "echo"})
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(4 * SHORT)
    if scope["path"] == "/slow-read":  # works before it reads the body
        await asyncio.sleep(4 * SHORT)
        await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connections, "HEAD_SECONDS", SHORT)
        patch.setattr(connections, "BODY_IDLE_SECONDS", SHORT)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, http=connections.GuardedProtocol, timeout_keep_alive=1,
                                               log_level="error", ws="websockets-sansio"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        yield sock.getsockname()
        server.should_exit = True
        thread.join(10)


def answers(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends within `seconds` (or until it closes)."""
    sock.settimeout(seconds)
    got = b""
    try:
        while data := sock.recv(65536):
            got += data
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def test_a_bare_line_break_after_a_response_does_not_keep_the_connection(address: tuple[str, int]) -> None:
    """It stopped uvicorn's keep-alive deadline and began no request: no deadline was left."""
    with socket.create_connection(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        assert sock.recv(200).startswith(b"HTTP/1.1 200")
        sock.sendall(b"\r\n")
        assert closed_within(sock, 5)


def test_pipelined_requests_are_all_answered_while_the_first_is_slow(address: tuple[str, int]) -> None:
    """The server stops reading after the second head: the third's, cut short, waits on the
    server, not on its client."""
    with socket.create_connection(address) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo")
        time.sleep(0.1)
        sock.sendall(b"st: x\r\n\r\n")
        assert answers(sock, 8 * SHORT).count(b"200 OK") == 3


def test_a_body_sent_after_100_continue_may_be_asked_for_late(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(b"POST /slow-read HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        sock.settimeout(10 * SHORT)
        assert sock.recv(200).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"abc")
        assert sock.recv(200).startswith(b"HTTP/1.1 200")


def test_a_websocket_is_not_closed_by_the_http_deadlines(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        time.sleep(0.2)
        assert sock.recv(200).startswith(b"HTTP/1.1 101")
        assert not closed_within(sock, 4 * SHORT)
