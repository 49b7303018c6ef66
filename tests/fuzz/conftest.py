"""Fuzzing fixtures: the servers under fuzz, their fuzz world, the tally of answers.

The summary line "N requests fuzzed: statuses {...}" is printed at the end of the run, and
written as JSON to the path in OPENAML_FUZZ_REPORT if set (profiles: tests/fuzz/profiles.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openaml.server.embedded import running_server
from tests.fuzz.profiles import PROFILE, TIMEOUT_SECONDS
from tests.fuzz.shapes import World
from tests.fuzz.target import ServerLog, Tally, Target

FUZZ_DIR = Path(__file__).parent
TALLY = pytest.StashKey[Tally]()
LOG = pytest.StashKey[ServerLog]()
ACCESS_KEYS = {"AKIDFUZZ": "fuzz-secret-key"}
FEATURES = ("x1", "c", "words")
SCHEMA = json.dumps({
    "version": "1.0", "rowId": "id", "targetAttributeName": "y", "dataFormat": "CSV",
    "dataFileContainsHeader": True,
    "attributes": [{"attributeName": "id", "attributeType": "CATEGORICAL"},
                   {"attributeName": "x1", "attributeType": "NUMERIC"},
                   {"attributeName": "c", "attributeType": "CATEGORICAL"},
                   {"attributeName": "words", "attributeType": "TEXT"},
                   {"attributeName": "y", "attributeType": "BINARY"}]})
RECIPE = '{"groups":{},"assignments":{},"outputs":["ALL_INPUTS"]}'
REARRANGEMENT = '{"splitting":{"percentBegin":0,"percentEnd":70}}'


def training_csv(rows: int = 60) -> bytes:
    """A small learnable BINARY data set (y follows x1 and c)."""
    lines = ["id,x1,c,words,y"]
    for i in range(rows):
        x1 = ((i * 37) % 19 - 9) / 3
        color = ("red", "green", "blue")[i % 3]
        y = int(x1 + {"red": 1, "green": 0, "blue": -1}[color] > 0)
        lines.append(f"r{i},{x1:.3f},{color},{'good great' if y else 'bad poor'},{y}")
    return ("\n".join(lines) + "\n").encode()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY] = Tally()
    config.stash[LOG] = ServerLog()
    logging.getLogger().addHandler(config.stash[LOG])


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in ("", "uvicorn"):
        logging.getLogger(name).removeHandler(config.stash[LOG])


@contextlib.contextmanager
def fuzzed_server(server_log: ServerLog, tally: Tally, keys: dict[str, str] | None = None,
                  **overrides: Any) -> Iterator[Target]:
    """running_server on loopback with one job worker, as a Target whose log is watched."""
    with running_server(workers=1, access_keys=keys or {}, **overrides) as app:
        # uvicorn sets up its loggers (no propagation, its own handlers) for each server.
        uvicorn_log = logging.getLogger("uvicorn")
        if server_log not in uvicorn_log.handlers:
            uvicorn_log.addHandler(server_log)
        yield Target(app, server_log, tally, keys)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(FUZZ_DIR):
            item.add_marker(pytest.mark.timeout(TIMEOUT_SECONDS[PROFILE]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[TALLY].test = item.nodeid.rsplit("/", 1)[-1]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    tally = config.stash[TALLY]
    if not tally.requests:
        return
    elsewhere = [r.cause for r in config.stash[LOG].records if not r.during_request]
    terminalreporter.write_sep("-", "fuzz summary")
    terminalreporter.write_line(tally.summary())
    if elsewhere:
        terminalreporter.write_line(f"errors logged outside requests (jobs): {sorted(set(elsewhere))}")
    path = os.environ.get("OPENAML_FUZZ_REPORT")
    if path:
        report = {**tally.as_json(), "profile": PROFILE,
                  "logged_outside_requests": elsewhere}
        Path(path).write_text(json.dumps(report, indent=2, sort_keys=True))


@pytest.fixture(autouse=True)
def healthy_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every server it fuzzed still answers /health and DescribeDataSources."""
    yield
    for name in ("server", "keyed_server", "small_server", "id_server"):
        if name in request.fixturenames:
            request.getfixturevalue(name).assert_healthy()


@pytest.fixture(scope="session")
def tally(pytestconfig: pytest.Config) -> Tally:
    return pytestconfig.stash[TALLY]


@pytest.fixture(scope="session")
def server_log(pytestconfig: pytest.Config) -> ServerLog:
    return pytestconfig.stash[LOG]


def wait_until_settled(target: Target, operation: str, params: dict[str, Any],
                       timeout: float = 60.0) -> dict[str, Any]:
    """Poll a Get* call until the entity is neither PENDING nor INPROGRESS."""
    deadline = time.monotonic() + timeout
    while True:
        answer = target.call(operation, params)
        assert answer.status == 200, answer.describe()
        document: dict[str, Any] = answer.json()  # type: ignore[assignment]
        if document["Status"] not in ("PENDING", "INPROGRESS"):
            return document
        assert time.monotonic() < deadline, f"{operation} {params} still {document['Status']}"
        time.sleep(0.05)


def build_world(target: Target) -> World:
    """Two datasources, a BINARY model with a real-time endpoint, an evaluation and a batch
    prediction, so that fuzzed ids, Get*, Describe* and Predict meet real entities."""
    target.app.context.objects.write_bytes("s3://fuzz/data.csv", training_csv())
    target.app.context.objects.write_bytes("s3://fuzz/schema.json", SCHEMA.encode())
    target.app.context.objects.write_bytes("s3://fuzz/recipe.json", RECIPE.encode())
    creates: list[tuple[str, dict[str, Any]]] = [
        ("CreateDataSourceFromS3", {"DataSourceId": "fuzz-ds-1", "ComputeStatistics": True,
                                    "DataSpec": {"DataLocationS3": "s3://fuzz/data.csv", "DataSchema": SCHEMA}}),
        ("CreateDataSourceFromS3", {"DataSourceId": "fuzz-ds-2", "DataSourceName": "second",
                                    "DataSpec": {"DataLocationS3": "s3://fuzz/data.csv",
                                                 "DataSchemaLocationS3": "s3://fuzz/schema.json"}}),
    ]
    for n in ("1", "2"):
        creates += [
            ("CreateMLModel", {"MLModelId": f"fuzz-ml-{n}", "MLModelType": "BINARY",
                               "TrainingDataSourceId": "fuzz-ds-1"}),
            ("CreateEvaluation", {"EvaluationId": f"fuzz-ev-{n}", "MLModelId": f"fuzz-ml-{n}",
                                  "EvaluationDataSourceId": "fuzz-ds-2"}),
            ("CreateBatchPrediction", {"BatchPredictionId": f"fuzz-bp-{n}", "MLModelId": f"fuzz-ml-{n}",
                                       "BatchPredictionDataSourceId": "fuzz-ds-2",
                                       "OutputUri": f"s3://fuzz/out-{n}/"}),
        ]
    for operation, params in creates:
        answer = target.call(operation, params)
        assert answer.status == 200, answer.describe()
    for operation, params in creates:
        get = operation.replace("Create", "Get").replace("FromS3", "")
        member = next(m for m in params if m.endswith("Id"))
        assert wait_until_settled(target, get, {member: params[member]})["Status"] == "COMPLETED"
    assert target.call("CreateRealtimeEndpoint", {"MLModelId": "fuzz-ml-1"}).status == 200
    return World(
        base_url=target.app.settings.base_url,
        ids=("fuzz-ds-1", "fuzz-ds-2", "fuzz-ml-1", "fuzz-ml-2", "fuzz-ev-1", "fuzz-bp-1", "missing-id"),
        uris=("s3://fuzz/data.csv", "s3://fuzz/schema.json", "s3://fuzz/recipe.json", "s3://fuzz/out/",
              "s3://fuzz/missing.csv"),
        schema=SCHEMA, recipe=RECIPE, rearrangement=REARRANGEMENT, features=FEATURES)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, server_log: ServerLog, tally: Tally) -> Iterator[Target]:
    """A server without access keys (unsigned requests with a well-formed Authorization pass)."""
    with fuzzed_server(server_log, tally, data_dir=tmp_path_factory.mktemp("fuzz"),
                       max_body_bytes=4 * 1024 * 1024) as target:
        yield target


@pytest.fixture(scope="session")
def world(server: Target) -> World:
    return build_world(server)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, server_log: ServerLog,
                 tally: Tally) -> Iterator[Target]:
    """A server with access keys: every request must carry a valid SigV4 signature."""
    with fuzzed_server(server_log, tally, dict(ACCESS_KEYS), data_dir=tmp_path_factory.mktemp("fuzz-keyed"),
                       max_body_bytes=1024 * 1024) as target:
        yield target


SMALL_BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory, server_log: ServerLog,
                 tally: Tally) -> Iterator[Target]:
    """A server whose request bodies are limited to SMALL_BODY_LIMIT bytes."""
    with fuzzed_server(server_log, tally, data_dir=tmp_path_factory.mktemp("fuzz-small"),
                       max_body_bytes=SMALL_BODY_LIMIT) as target:
        yield target
