"""Server settings: one frozen object, built once from the command line or the environment."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
ENV_PREFIX = "OPENAML_"


class ConfigurationError(Exception):
    """Settings that the server refuses to start with."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Paths are resolved; nothing else in the code reads env."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("openaml-data")
    database_url: str | None = None
    s3_endpoint_url: str | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # threads of one job (ML core: 1 or 2); by default 2 where the process may use two CPUs
    job_threads: int = field(default_factory=lambda: min(2, usable_cpus()))
    # false: every CSV block is read by the general path (to compare with, or rule out, the fast ones)
    csv_fast_paths: bool = True
    # bytes of records and features one training job keeps in memory; 0: a share of the
    # process's memory limit (jobs/memory.training_budget)
    training_memory: int = 0
    # the largest file the console uploads into the object store (bytes)
    console_upload_bytes: int = 2 << 30
    advertise_url: str | None = None
    credentials_file: Path | None = None
    access_keys: Mapping[str, str] = field(default_factory=dict)
    databases_file: Path | None = None
    account_id: str = "000000000000"
    max_body_bytes: int = 64 * 1024 * 1024
    predict_rate_limit: int = 200
    tag_limit: int = 50
    endpoint_delay_seconds: float = 0.0
    http_workers: int = 1
    # a claimed job's lease: a job of a front end that died runs again on another after it
    job_lease_seconds: float = 30.0
    # where the service's own files live (an s3:// folder URI of the object store); default the data dir
    artifacts_uri: str | None = None
    # where jobs run: "local" (this process's threads) or "dask" (the cluster of dask_scheduler)
    executor: str = "local"
    dask_scheduler: str | None = None
    # on Dask, a datasource's files are read in byte ranges of about this size, one task each
    partition_bytes: int = 128 << 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read OPENAML_* variables (e.g. OPENAML_DATA_DIR), then apply explicit overrides."""
        values: dict[str, Any] = {}
        for name, default in cls.__dataclass_fields__.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name == "access_keys":
                values[name] = parse_access_keys(raw)
                continue
            kind = type(getattr(cls(), name)) if default.default is not None else str
            values[name] = _convert(name, raw, kind)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        data_dir = Path(self.data_dir).expanduser().resolve()
        return replace(
            self,
            data_dir=data_dir,
            database_url=self.database_url or f"sqlite:///{data_dir / 'openaml.db'}",
        )

    @property
    def is_loopback(self) -> bool:
        """Whether the bound address is reachable from this machine only."""
        return is_loopback_host(self.host)

    @property
    def base_url(self) -> str:
        """The URL clients reach this server at (EndpointUrl, log links)."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def objects_root(self) -> Path:
        return self.data_dir / "s3"

    @property
    def artifacts_root(self) -> Path:
        return self.data_dir / "artifacts"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it, e.g. Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.lru_cache(maxsize=1024)  # asked on every request of a keyless server
def is_loopback_host(host: str) -> bool:
    """Whether a host name or address (no port) always means this machine: `localhost` or a
    loopback IP literal. A name that merely starts with 127 (`127.example.com`) is not."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_access_keys(raw: str) -> dict[str, str]:
    """`OPENAML_ACCESS_KEYS`: `KEY_ID:SECRET` pairs separated by commas or white space."""
    keys: dict[str, str] = {}
    for number, entry in enumerate(raw.replace(",", " ").split(), 1):
        key, sep, secret = entry.partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"{ENV_PREFIX}ACCESS_KEYS: entry {number} is not KEY_ID:SECRET "
                             "(pairs are separated by commas)")
        keys[key] = secret
    return keys


def _convert(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.lower() in ("1", "true", "yes")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a number, not {raw!r}") from None
    if kind is type(Path()) or name.endswith(("_dir", "_file")):
        return Path(raw)
    return raw
