"""What one client may hold of the server (server/connections.py, aws_json's body budget):
connections that send no request, or stop within one, are closed; connections past the
process's share of file descriptors are closed at once; request bodies held at once are
bounded. Deadlines are shortened here; the others' requests are served meanwhile."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from openaml.app import Application
from openaml.server import connections
from openaml.server.connections import GuardedProtocol
from openaml.server.embedded import running_server
from tests.api.test_wire import HEADERS

TARGET = "AmazonML_20141212.DescribeMLModels"
SHORT = 1.0  # seconds: the deadlines of these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connections, "HEAD_SECONDS", SHORT)
        patch.setattr(connections, "BODY_IDLE_SECONDS", SHORT)
        with running_server(data_dir=tmp_path_factory.mktemp("connections"), max_body_bytes=10_000) as app:
            yield app


def address(app: Application) -> tuple[str, int]:
    host, port = app.settings.base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def head(app: Application, length: int) -> bytes:
    host, port = address(app)
    lines = [f"Host: {host}:{port}", f"X-Amz-Target: {TARGET}", f"Content-Length: {length}",
             *(f"{name}: {value}" for name, value in HEADERS.items())]
    return ("POST / HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()


def post(app: Application, body: bytes, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).post(app.settings.base_url + "/", content=body, timeout=10,
                                  headers={**HEADERS, "X-Amz-Target": TARGET})


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection (reading its answer, if any) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def served(app: Application) -> bool:
    return post(app, b"{}").status_code == 200


def test_a_connection_that_sends_nothing_is_closed(server: Application) -> None:
    with socket.create_connection(address(server)) as idle:
        assert served(server)
        assert closed_within(idle, 5)


def test_a_head_sent_a_byte_at_a_time_is_closed_at_its_deadline(server: Application) -> None:
    start = time.monotonic()
    with socket.create_connection(address(server)) as slow:
        text = head(server, 2)
        try:
            for byte in text[:-4]:  # never the blank line that ends the head
                slow.sendall(bytes([byte]))
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_within(slow, 5)
    assert time.monotonic() - start < SHORT + 3


def test_a_body_that_stops_midway_is_closed_and_a_steady_one_served(server: Application) -> None:
    body = b"{}" + b" " * 98
    with socket.create_connection(address(server)) as stopped:
        stopped.sendall(head(server, len(body)) + body[:50])
        assert served(server)
        assert closed_within(stopped, 5)
    with socket.create_connection(address(server)) as steady:  # pieces closer than the deadline
        steady.sendall(head(server, len(body)))
        for start in range(0, len(body), 20):
            time.sleep(SHORT / 10)
            steady.sendall(body[start:start + 20])
        steady.settimeout(5)
        assert steady.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_kept_alive_connection_serves_requests_after_its_first(server: Application) -> None:
    with httpx.Client() as client:
        for _ in range(3):
            assert post(server, b"{}", client).status_code == 200
            time.sleep(SHORT * 1.5)  # idle between requests: uvicorn's keep-alive deadline


def test_connections_past_the_limit_are_closed_at_once(server: Application,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 idle connections took every file descriptor: every client was then dropped."""
    monkeypatch.setattr(GuardedProtocol, "limit", 3)
    held = [socket.create_connection(address(server)) for _ in range(3)]
    try:
        time.sleep(0.1)
        with socket.create_connection(address(server)) as extra:
            assert closed_within(extra, 2)
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert served(server)


def test_request_bodies_held_at_once_are_bounded(server: Application) -> None:
    """Each connection could keep a body of 63 MiB as long as it liked: with a body limit of
    10,000 bytes, the process holds 4 such bodies, and a fifth is refused with a retryable
    error while the others are held; once they end, it is served."""
    partial = [socket.create_connection(address(server)) for _ in range(4)]
    try:
        for sock in partial:
            sock.sendall(head(server, 9_000) + b"{" + b" " * 8_990)
        time.sleep(0.1)
        answer = post(server, b"{}" + b" " * 8_000)
        assert answer.status_code == 400 and answer.json()["__type"] == "ThrottlingException"
    finally:
        for sock in partial:
            sock.close()
    time.sleep(0.2)
    answer = post(server, b"{}" + b" " * 8_000)
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.text)["Results"] == []
