"""Two `openaml serve` processes (front ends) on one store: the MNIST sample workflow is created
through both, the front end that trains the model is killed (SIGKILL) mid-training, and the
other re-runs and finishes the job; then both serve Predict on the model's endpoint and share
its rate limit.

The front ends share a data folder with its SQLite database, or a data folder and PostgreSQL
(a fresh database; skipped without OPENAML_TEST_POSTGRES_URL), or no folder at all: data and
artifacts in S3 (a moto server) and PostgreSQL (a SQLite file without it).
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, select

from openaml.app import SERVING_MS
from openaml.jobs.engine import RERUN_NOTE
from openaml.service.context import wall_clock_ms
from openaml.store.tables import front_ends, job_leases
from tests.api.conftest import make_client
from tests.conftest import MNIST_DIR, REPO, fresh_postgres_database
from tests.faults.conftest import AWS_ENV
from tests.faults.server import ServerProcess

LEASE_SECONDS = 2
RATE_LIMIT = 10  # Predict requests per second per endpoint, over both front ends
SETTLE_SECONDS = 240
BUCKET = "mnist"
POSTGRES_URL = os.environ.get("OPENAML_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql", "s3"])
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(what the front ends share, the database URL): one data folder with its SQLite database
    or with PostgreSQL, or ("s3") nothing on disk: data and artifacts in S3 (moto), each front
    end its own data folder, and PostgreSQL (or, without one, a SQLite file beside them)."""
    if request.param == "sqlite":
        yield "folder", f"sqlite:///{tmp_path / 'data' / 'openaml.db'}"
        return
    if not POSTGRES_URL:
        if request.param == "s3":
            yield "s3", f"sqlite:///{tmp_path / 'openaml.db'}"
            return
        pytest.skip("OPENAML_TEST_POSTGRES_URL is not set (scripts/test.sh starts a PostgreSQL server and sets it)")
    with fresh_postgres_database(POSTGRES_URL, "openaml_front_ends") as url:
        yield ("s3" if request.param == "s3" else "folder"), url


@pytest.fixture
def front_ends_pair(tmp_path: Path, layout: tuple[str, str],
                    request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    shared, database_url = layout
    env = {"OPENAML_DATABASE_URL": database_url, "OPENAML_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
           "OPENAML_PREDICT_RATE_LIMIT": str(RATE_LIMIT)}
    data = (MNIST_DIR / "train.csv.gz").read_bytes()
    if shared == "s3":
        moto_url = request.getfixturevalue("moto_url")
        s3 = request.getfixturevalue("s3")
        for bucket in (BUCKET, "openaml"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=BUCKET, Key="train.csv.gz", Body=data)
        env |= {**AWS_ENV, "OPENAML_S3_ENDPOINT_URL": moto_url, "OPENAML_ARTIFACTS_URI": "s3://openaml/artifacts/"}
    else:
        (tmp_path / "data" / "s3" / BUCKET).mkdir(parents=True)
        (tmp_path / "data" / "s3" / BUCKET / "train.csv.gz").write_bytes(data)
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        data_dir = tmp_path / name / "data" if shared == "s3" else tmp_path / "data"
        servers.append(ServerProcess(data_dir, tmp_path / name, env=env))
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.kill()


def wait_status(get: Any, key: str, entity_id: str, wanted: set[str], seconds: float = SETTLE_SECONDS) -> str:
    deadline = time.monotonic() + seconds
    while True:
        status = str(get(**{key: entity_id})["Status"])
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def lease_holder_pid(database_url: str, kind: str, entity_id: str) -> int | None:
    """The process id of the front end holding the job's lease, if one does."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(front_ends.c.pid).select_from(
                job_leases.join(front_ends, front_ends.c.id == job_leases.c.owner)).where(
                job_leases.c.kind == kind, job_leases.c.id == entity_id)).scalar()
    finally:
        engine.dispose()


def serving_pids(database_url: str) -> set[int]:
    """The process ids of the front ends that share endpoints' rate limits now (seen within
    SERVING_MS)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(front_ends.c.pid).where(
                front_ends.c.seen_at >= wall_clock_ms() - SERVING_MS)).scalars())
    finally:
        engine.dispose()


def test_a_front_end_killed_mid_training_is_replaced_and_both_serve_predict(
        front_ends_pair: tuple[ServerProcess, ServerProcess], layout: tuple[str, str]) -> None:
    a, b = front_ends_pair
    database_url = layout[1]
    ml_a, ml_b = make_client(a.url), make_client(b.url)
    schema = (REPO / "examples" / "mnist" / "train.schema.json").read_text()
    recipe = (REPO / "examples" / "mnist" / "recipe.json").read_text()
    for client, name, begin, end in ((ml_a, "train", 0, 70), (ml_b, "eval", 70, 100)):
        client.create_data_source_from_s3(
            DataSourceId=name, DataSpec={
                "DataLocationS3": f"s3://{BUCKET}/train.csv.gz", "DataSchema": schema,
                "DataRearrangement": f'{{"splitting":{{"percentBegin":{begin},"percentEnd":{end}}}}}'},
            ComputeStatistics=True)
    ml_b.create_ml_model(MLModelId="model", MLModelType="MULTICLASS", TrainingDataSourceId="train",
                         Recipe=recipe, Parameters={"sgd.maxPasses": "60"})  # training lasts seconds
    ml_a.create_evaluation(EvaluationId="evaluation", MLModelId="model", EvaluationDataSourceId="eval")

    assert wait_status(ml_a.get_ml_model, "MLModelId", "model", {"INPROGRESS", "COMPLETED", "FAILED"}) == "INPROGRESS"
    holder = None
    while holder is None and ml_a.get_ml_model(MLModelId="model")["Status"] == "INPROGRESS":
        holder = lease_holder_pid(database_url, "MLModel", "model")
    killed, survivor = (a, b) if a.process is not None and holder == a.process.pid else (b, a)
    assert killed.process is not None and holder == killed.process.pid
    killed.kill()

    ml = make_client(survivor.url)
    ended = wait_status(ml.get_evaluation, "EvaluationId", "evaluation", {"COMPLETED", "FAILED"})
    assert ended == "COMPLETED", ml.get_evaluation(EvaluationId="evaluation").get("Message")
    evaluation = ml.get_evaluation(EvaluationId="evaluation")
    assert float(evaluation["PerformanceMetrics"]["Properties"]["MulticlassAvgFScore"]) > 0.85
    assert ml.get_ml_model(MLModelId="model")["Status"] == "COMPLETED"
    with urllib.request.urlopen(f"{survivor.url}/logs/MLModel/model", timeout=30) as answer:
        log = answer.read().decode()
    assert RERUN_NOTE in log
    assert survivor.logged_errors() == []

    killed.start()  # both serve again; the endpoint made through one serves on both
    ml.create_realtime_endpoint(MLModelId="model")
    deadline = time.monotonic() + 60
    while ml.get_ml_model(MLModelId="model")["EndpointInfo"]["EndpointStatus"] != "READY":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ml.get_ml_model(MLModelId="model")["EndpointInfo"]["EndpointUrl"] == survivor.url
    record = {f"pixel{i}": "0" for i in range(784)}
    clients = [(make_client(server.url), server.url) for server in (a, b)]  # each front end's own
    for client, endpoint in clients:
        assert "predictedLabel" in _predict(client, endpoint, record)["Prediction"]
    # the killed process's old registration counts among those serving for SERVING_MS after
    # its last beat: the share is a half once only the two running ones remain
    deadline = time.monotonic() + 30
    while serving_pids(database_url) != {a.process.pid, b.process.pid}:
        assert time.monotonic() < deadline, serving_pids(database_url)
        time.sleep(0.2)
    time.sleep(2.5)  # each process has counted the other (it beats every second) and refilled
    share = RATE_LIMIT / 2
    for client, endpoint in clients:  # each admits a burst of its half of the limit, then its rate
        started = time.monotonic()
        admitted = sum(_admitted(client, endpoint, record) for _ in range(3 * RATE_LIMIT))
        refilled = share * (time.monotonic() - started)
        assert int(share) - 1 <= admitted <= share + refilled + 1, (admitted, refilled)


def _predict(client: Any, endpoint: str, record: dict[str, str]) -> Any:
    return client.predict(MLModelId="model", Record=record, PredictEndpoint=endpoint)


def _admitted(client: Any, endpoint: str, record: dict[str, str]) -> int:
    try:
        _predict(client, endpoint, record)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "LimitExceededException"
        return 0
    return 1
