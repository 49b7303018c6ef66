"""Server settings: one frozen object, built once from the command line or the environment."""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
ENV_PREFIX = "OPENAML_"
# settings that `openaml serve` also takes as an option (--data-dir for data_dir)
OPTIONS = frozenset({"host", "port", "data_dir", "database_url", "s3_endpoint_url", "artifacts_uri",
                     "workers", "advertise_url", "credentials_file", "databases_file",
                     "predict_rate_limit", "http_workers", "executor", "dask_scheduler", "cors_origins"})
# numeric settings: (least, largest or None); training_memory may also be 0 (checked apart)
RANGES: dict[str, tuple[float, float | None]] = {
    "port": (0, 65535),  # 0: a free port the OS picks
    "workers": (1, 4096),
    "job_threads": (1, 2),
    "training_memory": (64 << 20, None),  # jobs.memory.MIN_BUDGET
    "console_upload_bytes": (1, None),
    "max_body_bytes": (1, None),
    "predict_rate_limit": (0, None),
    "tag_limit": (0, None),
    "endpoint_delay_seconds": (0, 3600),
    "http_workers": (1, 64),
    "job_lease_seconds": (1, 86_400),
    "partition_bytes": (1 << 20, None),
}
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
EXECUTORS = ("local", "dask")


class ConfigurationError(ValueError):
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
    # origins (scheme://host[:port], or "*" with access keys) whose web pages may call the API
    cors_origins: tuple[str, ...] = ()
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
            if raw is None or overrides.get(name) is not None:  # the command line wins, unread
                continue
            if name == "access_keys":
                values[name] = parse_access_keys(raw)
                continue
            if name == "cors_origins":
                values[name] = parse_origins(raw)
                continue
            kind = type(getattr(cls(), name)) if default.default is not None else str
            values[name] = _convert(name, raw, kind)
        values.update({k: parse_origins(v) if k == "cors_origins" and isinstance(v, str) else v
                       for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings.resolved()

    def check(self) -> None:
        """ConfigurationError naming the option and its variable for a value out of its range,
        a URL that is not one, or a Dask scheduler without the Dask executor."""
        for name, (least, largest) in RANGES.items():
            value = getattr(self, name)
            if value is None or (name == "training_memory" and value == 0):  # None: not resolved yet
                continue
            if not math.isfinite(value) or value < least or (largest is not None and value > largest):
                raise ConfigurationError(f"{setting_label(name)} must be {_range_text(name)}, not {value:g}")
        if self.executor not in EXECUTORS:
            raise ConfigurationError(f"{setting_label('executor')} must be one of {', '.join(EXECUTORS)}, "
                                     f"not {self.executor!r}")
        if self.dask_scheduler and self.executor != "dask":
            raise ConfigurationError(f"{setting_label('dask_scheduler')} is only used with --executor dask "
                                     f"({ENV_PREFIX}EXECUTOR=dask): add that, or leave the scheduler out")
        if self.advertise_url is not None:
            check_http_url(self.advertise_url, setting_label("advertise_url"))
        self._check_cors_origins()
        if self.s3_endpoint_url and self.s3_endpoint_url != "aws":
            check_http_url(self.s3_endpoint_url, setting_label("s3_endpoint_url"))
        if self.artifacts_uri is not None:
            self._check_artifacts_uri()

    def _check_cors_origins(self) -> None:
        label = setting_label("cors_origins")
        for origin in self.cors_origins:
            if origin == "*":
                if not (self.credentials_file or self.access_keys):
                    raise ConfigurationError(f"{label} * would let every web page a user opens drive this "
                                             "server, which has no access keys: list the origins, or give "
                                             "--credentials-file too")
                continue
            parts = urllib.parse.urlsplit(origin)
            if (parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts)
                    or parts.path or parts.query or parts.fragment or "@" in parts.netloc):
                raise ConfigurationError(f"{label}: an origin is scheme://host[:port], as a browser sends it "
                                         f"(https://app.example.com), or *; not {origin!r}")

    def _check_artifacts_uri(self) -> None:
        from openaml.storage.uris import parse_s3_uri

        label = setting_label("artifacts_uri")
        try:
            folder = parse_s3_uri(self.artifacts_uri or "").is_prefix
        except ValueError as exc:
            raise ConfigurationError(f"{label}: {exc}") from None
        if not folder:
            raise ConfigurationError(f"{label} must be an s3:// folder: end it with '/', "
                                     f"as in {self.artifacts_uri}/")

    def resolved(self) -> Settings:
        return replace(self, data_dir=Path(self.data_dir).expanduser().resolve(),
                       database_url=self.database_url or self.default_database_url)

    @property
    def default_database_url(self) -> str:
        """The store where no --database-url is given: SQLite's file openaml.db in the data folder."""
        return f"sqlite:///{Path(self.data_dir).expanduser().resolve() / 'openaml.db'}"

    @property
    def is_loopback(self) -> bool:
        """Whether the bound address is reachable from this machine only."""
        return is_loopback_host(self.host)

    @property
    def api_paths(self) -> frozenset[str]:
        """The paths the API answers at: "/", and the --advertise-url's path, to which AWS's
        JavaScript SDK posts Predict (its endpoint is EndpointUrl, path included)."""
        path = urllib.parse.urlsplit(self.advertise_url or "").path.rstrip("/")
        return frozenset({"/", path} if path else {"/"})

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


def parse_origins(raw: str) -> tuple[str, ...]:
    """Origins separated by commas or white space, as a browser writes them: lower-case, without
    a trailing slash."""
    return tuple(dict.fromkeys(o.strip().rstrip("/").lower() for o in raw.replace(",", " ").split()))


def setting_label(name: str) -> str:
    """How messages name a setting: `--port (OPENAML_PORT)`, or the variable alone."""
    variable = ENV_PREFIX + name.upper()
    return f"--{name.replace('_', '-')} ({variable})" if name in OPTIONS else variable


def check_http_url(url: str, label: str) -> None:
    """ConfigurationError unless `url` is an http(s)://HOST[:PORT][/PATH] URL."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts) or parts.query \
            or parts.fragment:
        raise ConfigurationError(f"{label} must be an http(s) URL with a host, such as "
                                 f"http://ml.example.com:8080, not {url!r}")


def _port_ok(parts: urllib.parse.SplitResult) -> bool:
    """Whether a URL's port is absent or a port (1-65535)."""
    try:
        return parts.port is None or parts.port > 0
    except ValueError:  # not a number, or past 65535
        return False


def _range_text(name: str) -> str:
    least, largest = RANGES[name]
    if name == "training_memory":
        return f"0 (a share of the memory limit) or at least {_number(least)} bytes"
    if largest is None:
        return f"a number of at least {_number(least)}"
    return f"from {_number(least)} to {_number(largest)}"


def _number(value: float) -> str:
    """1,048,576 for byte counts; 65535 for ports and seconds."""
    return f"{value:,}" if value >= 100_000 else f"{value:g}"


def _convert(name: str, raw: str, kind: type) -> Any:
    label = setting_label(name)
    if kind is bool:
        if raw.strip().lower() not in BOOLEANS:
            raise ConfigurationError(f"{label} must be true or false (or 1/0, yes/no), not {raw!r}")
        return BOOLEANS[raw.strip().lower()]
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            whole = "a whole number" if kind is int else "a number"
            raise ConfigurationError(f"{label} must be {whole}, not {raw!r}") from None
    if kind is type(Path()) or name.endswith(("_dir", "_file")):
        if not raw.strip():
            raise ConfigurationError(f"{label} is empty: give it a path, or unset it for the default")
        return Path(raw)
    return raw
