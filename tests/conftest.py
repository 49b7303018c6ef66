"""Fixtures shared by every test layer."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO / "examples" / "mnist" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return MNIST_DIR


@contextlib.contextmanager
def fresh_postgres_database(server_url: str, prefix: str, options: str = "") -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of `server_url` (its URL), dropped after;
    `options` follow CREATE DATABASE (a collation, say)."""
    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}" {options}'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{database}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
