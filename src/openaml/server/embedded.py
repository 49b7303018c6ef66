"""Run the server inside this process, on a free loopback port (tests, notebooks, the demo)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

from openaml.app import Application, build_app
from openaml.server.connections import server_config
from openaml.settings import Settings


@contextlib.contextmanager
def running_server(settings: Settings | None = None, **overrides: Any) -> Iterator[Application]:
    """Start OpenAML on 127.0.0.1 and a free port; yield the Application (its base URL is
    `app.settings.base_url`). Without a data dir, a temporary one is used and removed after."""
    with contextlib.ExitStack() as stack:
        if settings is None:
            if "data_dir" not in overrides:
                overrides["data_dir"] = Path(stack.enter_context(tempfile.TemporaryDirectory(
                    prefix="openaml-")))
            overrides.setdefault("port", 0)
            settings = Settings(**overrides)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        stack.callback(sock.close)
        settings = replace(settings, port=sock.getsockname()[1]).resolved()
        app = build_app(settings)
        stack.callback(app.close)
        server = uvicorn.Server(server_config(app.asgi, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded OpenAML server did not start")
            time.sleep(0.02)
        try:
            yield app
        finally:
            server.should_exit = True
            thread.join(timeout=15)
