"""A database password erased from a record leaves no copy in a stopped server's SQLite files:
the earlier row versions stayed in the write-ahead log (and in the database file's free
space) after the server stopped, so a copy of the data folder (the README's backup) held
every password given to CreateDataSourceFromRDS."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from openaml.jobs.record_info import secret_info
from openaml.store import EntityKind, EntityRecord, Status
from openaml.store.database import open_store

PASSWORD = "erase-me-4f1c9"


def test_an_erased_secret_is_in_no_file_of_a_closed_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'openaml.db'}")
    # another process on the same data folder (an HTTP worker, a second server): SQLite then
    # leaves the log as it is when this one closes
    other = sqlite3.connect(tmp_path / "openaml.db")
    other.execute("SELECT count(*) FROM entities").fetchall()
    for k in range(20):  # several pages of rows, as a store in use holds
        store.insert(EntityRecord(kind=EntityKind.DATASOURCE, id=f"ds-{k}", status=Status.PENDING, created_at=1,
                                  last_updated_at=1, created_by="test", request={},
                                  info=secret_info(PASSWORD) | {"padding": "x" * 3000}))
    for k in range(20):  # as the engine erases it when the job ends
        assert store.update(EntityKind.DATASOURCE, f"ds-{k}", {"status": Status.INPROGRESS})
        assert store.update(EntityKind.DATASOURCE, f"ds-{k}", {"status": Status.COMPLETED}, info=secret_info(None))
    store.close()
    holding = [f.name for f in sorted(tmp_path.iterdir()) if PASSWORD.encode() in f.read_bytes()]
    other.close()
    assert holding == []
