"""The container image and Kubernetes example (deploy/) hold to the commands, options and
settings that exist: a renamed option or variable, or a worker given more memory than its
container, fails here rather than in a user's cluster."""

import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest
import yaml
from distributed.cli import dask_scheduler, dask_worker

from openaml.cli.main import main
from openaml.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kubernetes" / "openaml.yaml"
COMMANDS: dict[tuple[str, ...], click.Command] = {
    ("openaml", "serve"): main.commands["serve"],
    ("dask", "worker"): dask_worker.main,
    ("dask", "scheduler"): dask_scheduler.main,
}
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def _documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _containers() -> list[dict]:
    return [c for d in _documents() if d["kind"] == "Deployment"
            for c in d["spec"]["template"]["spec"]["containers"]]


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]iB?)", quantity).groups()
    return int(number) * UNITS[unit]


def _check_command(argv: list[str]) -> dict[str, str]:
    """The options of a command line (one of COMMANDS), each checked against the command's
    own: an unknown option or a value outside its choices fails."""
    command = COMMANDS[tuple(argv[:2])]
    context = command.make_context("-".join(argv[:2]), list(argv[2:]), resilient_parsing=False)
    return {name: value for name, value in context.params.items() if value is not None}


@pytest.mark.parametrize("container", _containers(), ids=lambda c: c["name"])
def test_every_container_command_parses(container):
    _check_command(container["command"])


def test_the_images_command_parses_and_its_extras_exist():
    text = DOCKERFILE.read_text()
    cmd = re.search(r'^CMD (\[.*\])$', text, re.M).group(1)
    _check_command(yaml.safe_load(cmd))
    extras = re.search(r"pip install '\.\[([a-z,]+)\]'", text).group(1).split(",")
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(defined)
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in shlex.split(source):
            assert (ROOT / path).exists(), path


def test_every_openaml_variable_is_a_setting():
    names = {ENV_PREFIX + name.upper() for name in Settings.__dataclass_fields__}
    secret = next(d for d in _documents() if d["kind"] == "Secret")
    given = list(secret["stringData"]) + [e["name"] for c in _containers() for e in c.get("env", [])]
    openaml = [name for name in given if name.startswith(ENV_PREFIX)]
    assert openaml and set(openaml) <= names


def test_front_ends_find_the_scheduler_and_workers_fit_their_containers():
    containers = {c["name"]: c for c in _containers()}
    services = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Service"}
    scheduler = _check_command(containers["openaml"]["command"])["dask_scheduler"]
    host, port = re.fullmatch(r"tcp://([\w-]+):(\d+)", scheduler).groups()
    assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]]
    assert _check_command(containers["worker"]["command"])["scheduler"] == scheduler
    worker = _check_command(containers["worker"]["command"])
    limit = _bytes(containers["worker"]["resources"]["limits"]["memory"])
    assert 2**30 <= _bytes(worker["memory_limit"]) <= limit
    serve = _check_command(containers["openaml"]["command"])
    assert serve["executor"] == "dask" and serve["host"] == "0.0.0.0"
    ports = [p["containerPort"] for p in containers["openaml"]["ports"]]
    assert serve["port"] in ports


def test_the_front_ends_probes_ask_nothing_of_the_stores():
    """Liveness and readiness read /health/live, which answers while PostgreSQL, S3 or the
    Dask scheduler does not (/health asks each of them, and may take seconds)."""
    from openaml.server.guard import HEALTH_PATHS

    front_end = {c["name"]: c for c in _containers()}["openaml"]
    probes = [front_end[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")]
    assert probes == ["/health/live", "/health/live"] and "/health/live" in HEALTH_PATHS
