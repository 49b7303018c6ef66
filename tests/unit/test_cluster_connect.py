"""Starting with --executor dask: a scheduler address that cannot be reached, or read, is
refused at once with a message naming it, before any Dask Client is made (a Client retried a
refusing address for 30 s, and a Ctrl-C meanwhile left one whose clean-up at exit took 60 s)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from openaml.settings import ConfigurationError, Settings

distributed = pytest.importorskip("distributed")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Dask Client was made")

    monkeypatch.setattr(distributed, "Client", refused)


@pytest.mark.parametrize("address, said", [
    ("tcp://127.0.0.1:{port}", "cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "),
    ("127.0.0.1:{port}", "cannot reach the Dask scheduler at 127.0.0.1:{port}: "),
    ("tcp://a:b:c", "--dask-scheduler tcp://a:b:c: invalid address"),
    ("nonsense://x", "--dask-scheduler nonsense://x: unknown address scheme"),
])
def test_a_scheduler_out_of_reach_is_refused_at_once(tmp_path: Path, no_client: None, address: str,
                                                     said: str) -> None:
    from openaml.cluster import connect_cluster

    port = closed_port()
    settings = Settings(data_dir=tmp_path, executor="dask", dask_scheduler=address.format(port=port))
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as refused:
        connect_cluster(settings)
    assert str(refused.value).startswith(said.format(port=port))
    assert time.monotonic() - started < 10  # not Dask's 30 s of retries
