"""The pluggable parts: a real S3-compatible server (moto) and a real PostgreSQL store."""

from __future__ import annotations

import gzip
import os
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest

from openaml.server.embedded import running_server
from tests.api.conftest import make_client, wait_for
from tests.api.test_entities import CSV, SCHEMA

POSTGRES_URL = os.environ.get("OPENAML_TEST_POSTGRES_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_datasource_on_real_s3_endpoint(moto_url: str, s3_env: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket="openaml-input")
    s3.put_object(Bucket="openaml-input", Key="parts/a.csv", Body=CSV)
    s3.put_object(Bucket="openaml-input", Key="parts/b.csv", Body=CSV)
    s3.put_object(Bucket="openaml-input", Key="schema.json", Body=SCHEMA.encode())
    with running_server(data_dir=tmp_path, s3_endpoint_url=moto_url) as app:
        assert not (tmp_path / "s3").exists() or not any((tmp_path / "s3").iterdir())
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(
            DataSourceId="on-s3", ComputeStatistics=True,
            DataSpec={"DataLocationS3": "s3://openaml-input/parts/",
                      "DataSchemaLocationS3": "s3://openaml-input/schema.json"})
        done = wait_for(lambda: ml.get_data_source(DataSourceId="on-s3"))
        assert done["Status"] == "COMPLETED", done.get("Message")
        assert done["NumberOfFiles"] == 2
        assert done["DataSizeInBytes"] == 2 * len(CSV)
        ml.create_ml_model(MLModelId="m-s3", MLModelType="BINARY", TrainingDataSourceId="on-s3")
        ml.create_batch_prediction(BatchPredictionId="bp-s3", MLModelId="m-s3",
                                   BatchPredictionDataSourceId="on-s3",
                                   OutputUri="s3://openaml-input/out")
        batch = wait_for(lambda: ml.get_batch_prediction(BatchPredictionId="bp-s3"))
        assert batch["Status"] == "COMPLETED", batch.get("Message")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="openaml-input",
                                                       Prefix="out/")["Contents"])
    assert keys == ["out/batch-prediction/bp-s3.manifest",
                    "out/batch-prediction/result/bp-s3-a.csv.gz",
                    "out/batch-prediction/result/bp-s3-b.csv.gz"]
    body = s3.get_object(Bucket="openaml-input", Key="out/batch-prediction/result/bp-s3-a.csv.gz")
    lines = gzip.decompress(body["Body"].read()).decode().splitlines()
    assert lines[0] == "trueLabel,bestAnswer,score" and len(lines) == 61


@pytest.mark.skipif(not POSTGRES_URL, reason="OPENAML_TEST_POSTGRES_URL is not set "
                    "(scripts/test.sh starts a PostgreSQL server and sets it)")
def test_postgres_store_persists(tmp_path: Path) -> None:
    import sqlalchemy

    database = f"openaml_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL or "", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    url = (POSTGRES_URL or "").rsplit("/", 1)[0] + f"/{database}"
    try:
        with running_server(data_dir=tmp_path, database_url=url) as app:
            assert app.context.store.engine.dialect.name == "postgresql"
            app.context.objects.write_bytes("s3://pgtest/data.csv", CSV)
            ml = make_client(app.settings.base_url)
            ml.create_data_source_from_s3(DataSourceId="pg-ds", DataSourceName="in postgres",
                                          DataSpec={"DataLocationS3": "s3://pgtest/data.csv",
                                                    "DataSchema": SCHEMA})
            ml.add_tags(ResourceId="pg-ds", ResourceType="DataSource",
                        Tags=[{"Key": "db", "Value": "pg"}])
            assert wait_for(lambda: ml.get_data_source(DataSourceId="pg-ds"))["Status"] == "COMPLETED"
            page = ml.describe_data_sources(FilterVariable="Name", Prefix="in ", Limit=1)
            assert [r["DataSourceId"] for r in page["Results"]] == ["pg-ds"]
        with running_server(data_dir=tmp_path, database_url=url) as app:
            ml = make_client(app.settings.base_url)
            assert ml.get_data_source(DataSourceId="pg-ds")["Name"] == "in postgres"
            assert ml.describe_tags(ResourceId="pg-ds", ResourceType="DataSource")["Tags"] == [
                {"Key": "db", "Value": "pg"}]
    finally:
        admin.dispose()


def test_the_console_browses_and_uploads_into_a_real_s3_endpoint(moto_url: str, s3_env: None, tmp_path: Path) -> None:
    """The console's object-store browser and upload on S3: buckets come from ListBuckets, an
    upload lands in an existing bucket, and one into a bucket that does not exist is refused
    before the file is read (the store's error, not a 500 after the whole file)."""
    import re

    import httpx

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket="console-up")
    with running_server(data_dir=tmp_path, s3_endpoint_url=moto_url) as app, \
            httpx.Client(base_url=f"{app.settings.base_url}/console") as browser:
        page = browser.get("/create/datasource").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert "s3://console-up/" in browser.get("/browse").text
        made = browser.put("/upload", params={"uri": "s3://console-up/in/data.csv"}, content=CSV,
                           headers={"X-CSRF-Token": token})
        assert made.status_code == 200
        assert s3.get_object(Bucket="console-up", Key="in/data.csv")["Body"].read() == CSV
        missing = browser.put("/upload", params={"uri": "s3://no-such-bucket-x/data.csv"}, content=CSV,
                              headers={"X-CSRF-Token": token})
        assert missing.status_code == 400 and "does not exist" in missing.json()["error"]


def test_health_is_degraded_while_the_s3_endpoint_does_not_answer(s3_env: None, tmp_path: Path) -> None:
    with running_server(data_dir=tmp_path, s3_endpoint_url=f"http://127.0.0.1:{free_port()}") as app:
        document = httpx.get(app.settings.base_url + "/health", timeout=60).json()
    assert document["objects"] == {"kind": "s3", "reachable": False}
    assert document["status"] == "degraded"


def test_liveness_answers_while_the_s3_endpoint_hangs(s3_env: None, tmp_path: Path) -> None:
    """/health waits for the endpoint (a probe with its own timeouts); /health/live, which
    Kubernetes probes read, asks nothing of it."""
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        with running_server(data_dir=tmp_path, s3_endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}") as app, \
                ThreadPoolExecutor(1) as pool:
            health = pool.submit(httpx.get, app.settings.base_url + "/health", timeout=60)
            time.sleep(0.5)
            assert not health.done()
            assert httpx.get(app.settings.base_url + "/health/live", timeout=10).json()["status"] == "live"
            assert not health.done()
            assert health.result().json()["status"] == "degraded"
