"""ServerProcess: `openaml serve` as a real child process, to be killed with SIGKILL and restarted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

START_SECONDS = 90  # a cold start imports NumPy, Numba, pyarrow and the console: seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One data directory served on one loopback port, by a new process at each `start`."""

    def __init__(self, data_dir: Path, log_dir: Path, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.data_dir, self.log_dir = data_dir, log_dir
        self.port = free_port()
        self.extra_args, self.env = extra_args, env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"server-{self.starts}.log"

    def start(self) -> None:
        """Start a new process and wait until /health answers; fail with its log otherwise."""
        assert self.process is None, "already running"
        self.starts += 1
        command = [sys.executable, "-m", "openaml", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--data-dir", str(self.data_dir), "--workers", "2",
                   "--log-level", "warning", *self.extra_args]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env})
        deadline = time.monotonic() + START_SECONDS
        while self.health() is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the server did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer:
                return dict(json.load(answer))
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown code of the server runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        """A clean stop (SIGTERM), then SIGKILL if it takes too long."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
            self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def logged_errors(self, since_start: int = 1) -> list[str]:
        """Lines reporting an error or a traceback in the logs of start `since_start` and later."""
        found: list[str] = []
        for start in range(since_start, self.starts + 1):
            path = self.log_dir / f"server-{start}.log"
            found += [f"{path.name}: {line}" for line in path.read_text(errors="replace").splitlines()
                      if "Traceback" in line or line.startswith(("ERROR", "CRITICAL"))]
        return found
