"""Several front ends on one PostgreSQL store: starting together on an empty database, a
front end frozen inside a transaction, and the database gone while a server runs."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from botocore.exceptions import ClientError
from sqlalchemy.exc import DBAPIError, OperationalError

from openaml.server.embedded import running_server
from openaml.service.migration import LAYOUT_FACT, migrate
from openaml.store import EntityKind, EntityRecord, Status, database, open_store
from tests.api.conftest import error_code, make_client
from tests.conftest import fresh_postgres_database

POSTGRES_URL = os.environ.get("OPENAML_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="OPENAML_TEST_POSTGRES_URL is not set "
                                "(scripts/test.sh starts a PostgreSQL server and sets it)")


@pytest.fixture
def empty_database() -> Iterator[str]:
    with fresh_postgres_database(POSTGRES_URL or "", "openaml_pg") as url:
        yield url


def test_front_ends_starting_together_on_an_empty_database_all_start(empty_database: str) -> None:
    """Each creates the tables and writes the layout fact: one at a time (they failed on the
    catalog's or the fact's unique keys)."""
    together = threading.Barrier(6, timeout=30)

    def start() -> str | None:
        together.wait()
        store = open_store(empty_database)
        try:
            migrate(store)
            return store.get_fact(LAYOUT_FACT)
        finally:
            store.close()

    with ThreadPoolExecutor(6) as pool:
        layouts = [future.result() for future in [pool.submit(start) for _ in range(6)]]
    assert len(set(layouts)) == 1 and layouts[0] is not None


def test_a_front_end_waits_for_another_creating_the_tables_past_the_lock_wait(
        empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound on lock waits (LOCK_WAIT_MS) is not for the tables' creation, which another
    front end may hold for longer: the second one failed to start (lock timeout)."""
    monkeypatch.setattr(database, "LOCK_WAIT_MS", 200)
    holder = sqlalchemy.create_engine(empty_database)
    with holder.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": database.SCHEMA_LOCK})
        with ThreadPoolExecutor(1) as pool:
            opened = pool.submit(open_store, empty_database)
            time.sleep(1.0)  # five lock waits
            assert not opened.done()
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": database.SCHEMA_LOCK})
            opened.result(timeout=30).close()
    holder.dispose()


def test_a_front_end_frozen_inside_a_transaction_holds_its_locks_for_a_bounded_time(
        empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another front end's write waits for its lock up to LOCK_WAIT_MS and fails (it waited
    without end), and the server ends the frozen session after IDLE_IN_TRANSACTION_MS, its
    locks with it (they lasted until TCP gave up, hours after a network partition)."""
    monkeypatch.setattr(database, "IDLE_IN_TRANSACTION_MS", 1500)
    monkeypatch.setattr(database, "LOCK_WAIT_MS", 300)
    frozen, other = open_store(empty_database), open_store(empty_database)
    frozen.insert(EntityRecord(kind=EntityKind.MLMODEL, id="m", status=Status.INPROGRESS, created_at=1,
                               last_updated_at=1, created_by="test", request={}, info={}))
    try:
        with frozen.engine.connect() as conn:
            conn.begin()
            frozen.lock_entity(conn, EntityKind.MLMODEL, "m")  # ... and the front end stops here
            started = time.monotonic()
            with pytest.raises(OperationalError, match="lock timeout"):
                other.update(EntityKind.MLMODEL, "m", {"name": "waited"})
            assert time.monotonic() - started < 1.5
            time.sleep(2.0)  # past the frozen session's idle time: its locks are gone
            assert other.update(EntityKind.MLMODEL, "m", {"name": "written"})
            with pytest.raises(DBAPIError) as ended:  # the frozen front end, woken
                conn.execute(sqlalchemy.text("SELECT 1"))
            assert database.unavailable(ended.value)  # its job or request is tried again
    finally:
        frozen.close()
        other.close()
    assert open_store(empty_database).get(EntityKind.MLMODEL, "m").name == "written"


def test_while_the_database_is_gone_health_and_calls_say_so(tmp_path: Path) -> None:
    """/health reports the store down (it answered a bare 500), /health/live still answers,
    and an API call's InternalServerException names the store."""
    with fresh_postgres_database(POSTGRES_URL or "", "openaml_gone") as url, \
            running_server(data_dir=tmp_path, database_url=url) as app:
        admin = sqlalchemy.create_engine(POSTGRES_URL or "", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()
        health = httpx.get(app.settings.base_url + "/health", timeout=30)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["store"]["ok"] is False
        assert httpx.get(app.settings.base_url + "/health/live", timeout=30).json()["status"] == "live"
        ml = make_client(app.settings.base_url)
        with pytest.raises(ClientError) as refused:
            ml.get_ml_model(MLModelId="any")
        assert error_code(refused) == "InternalServerException"
        assert "The service's store did not answer" in refused.value.response["Error"]["Message"]
