"""Fixtures for the storage tests: both object stores, a real moto S3 server, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from openaml.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.conftest import fresh_postgres_database

POSTGRES_ENV = "OPENAML_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 server (moto) on 127.0.0.1 with an OS-chosen port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_session() -> boto3.session.Session:
    """Explicit fake credentials, so nothing reads the environment or the metadata service."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


@pytest.fixture(scope="session")
def s3_store(moto_endpoint: str, aws_session: boto3.session.Session) -> S3ObjectStore:
    return S3ObjectStore(endpoint_url=moto_endpoint, session=aws_session)


@pytest.fixture
def s3_bucket(moto_endpoint: str, aws_session: boto3.session.Session) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    aws_session.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store_and_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ObjectStore, str]:
    """Each behaviour test runs against the local folder store and against S3 (moto)."""
    if request.param == "local":
        (tmp_path / "s3" / "data-bucket").mkdir(parents=True)
        return LocalObjectStore(tmp_path / "s3"), "data-bucket"
    return request.getfixturevalue("s3_store"), request.getfixturevalue("s3_bucket")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL server's SQLAlchemy URL from OPENAML_TEST_POSTGRES_URL (superuser)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"{POSTGRES_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:15432/postgres)"
        )
    return url


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, dropped after it."""
    with fresh_postgres_database(postgres_url, f"openaml_{request.module.__name__.rsplit('.', 1)[-1]}") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store's URL: a SQLite file, and a module's PostgreSQL database (skipped without one)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_database"))
