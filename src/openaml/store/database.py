"""The Store: entity and tag persistence with compare-and-set status changes.

Writes that read before they write (tag changes, info merges) never interleave. On SQLite every
write transaction begins IMMEDIATE, holding the database's write lock before it reads (a writer
of another process waits for it up to the busy timeout); the writers of one process queue on a
lock before that, where the busy timeout would make them poll. On PostgreSQL such a write locks
the entity's row (SELECT ... FOR UPDATE) before it reads. Reads take no lock and never wait.

A front end frozen or cut off inside a transaction must not hold its locks for long: on
PostgreSQL a session idle in a transaction for IDLE_IN_TRANSACTION_MS is ended by the server
(its locks go with it), and a statement waits at most LOCK_WAIT_MS for a lock, so that neither
a request nor another front end's heartbeat waits without end. Front ends started together on
an empty database create its tables one at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, create_engine, event, exists, func, insert, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.elements import ColumnElement

from openaml.store import queries
from openaml.store.queries import Query
from openaml.store.records import EndpointStatus, EntityKind, EntityRecord, Status, allowed_sources
from openaml.store.tables import entities, job_leases, meta, metadata, tags

log = logging.getLogger(__name__)

_FIELDS = [f.name for f in fields(EntityRecord)]
BUSY_TIMEOUT_S = 30
# Connections kept open, and the most open at once: one for each thread that may query at the
# same time (the HTTP thread pool's 40, the job, scheduler and endpoint threads), so that none
# waits for a connection. A waiter is not served in turn and could time out (a 500).
POOL_SIZE = 10
MAX_CONNECTIONS = 64
# PostgreSQL: well under a job lease (30 s), whose heartbeat may wait on a lock in between
IDLE_IN_TRANSACTION_MS = 10_000
LOCK_WAIT_MS = 5_000
SCHEMA_LOCK = 0x6F70656E616D6C  # the advisory lock held while the tables are created ("openaml")
# SQLSTATEs of a store that did not answer: the connection (08), the server shutting down or
# restarting (57P), a lock waited for too long (55P03), a transaction that lost to another
# (40001, 40P01), too many connections (53300), a session idle in a transaction too long (25P03)
TRANSIENT_STATES = ("08", "57P", "55P03", "40001", "40P01", "53300", "25P03")


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says that the store did not answer (its server down or restarting, the
    connection lost, a lock or the writers waited for too long), not that a statement was
    wrong or cannot be done (a missing table, a program limit): the same call may succeed a
    moment later. By the error's code where it has one (PostgreSQL's SQLSTATE, SQLite's
    name); one without a code is the driver's own failure to reach the server."""
    if isinstance(exc, PoolTimeout | StoreBusy):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state:
        return str(state).startswith(TRANSIENT_STATES)
    name = getattr(exc.orig, "sqlite_errorname", None)
    if name:
        return name in ("SQLITE_BUSY", "SQLITE_LOCKED")
    return isinstance(exc, OperationalError | InterfaceError)


def open_store(url: str) -> Store:
    """Connect, create tables if needed, and return a Store (SQLite gets WAL and a busy timeout)."""
    is_sqlite = url.startswith("sqlite")
    if is_sqlite and make_url(url).database in (None, "", ":memory:"):
        raise ValueError(f"{url!r} is an in-memory SQLite database, which the server's threads "
                         "cannot share: give a file (sqlite:///PATH) or leave the default")
    kwargs: dict[str, Any] = {
        "future": True, "pool_size": POOL_SIZE, "max_overflow": MAX_CONNECTIONS - POOL_SIZE}
    if is_sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_connect)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgresql_connect)
    _create_tables(engine)
    return Store(engine)


def _create_tables(engine: Engine) -> None:
    """Create the missing tables, one process at a time: SQLite's write lock, or a PostgreSQL
    advisory lock, is held meanwhile (two front ends starting on an empty PostgreSQL database
    both created the tables, and one failed on the catalog's unique keys)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":  # another front end's creation may take a while
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        metadata.create_all(conn)


def _postgresql_connect(dbapi_connection: Any, _record: Any) -> None:
    """Bound the time a session holds locks while idle in a transaction, and waits for one."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
        cursor.execute(f"SET lock_timeout = {LOCK_WAIT_MS}")
    dbapi_connection.commit()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never wait for the writer), a busy timeout, and no BEGIN of the driver's
    own: it would come only before the first write statement, after the reads that decide it,
    so Store._write begins each write transaction itself."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _file_identity(path: Path) -> tuple[int, int] | None:
    """The file at `path` (device and inode), or None where there is none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _plain(value: Any) -> Any:
    """An enum member (status, kind, endpoint status) as the string the tables hold."""
    return value.value if isinstance(value, StrEnum) else value


def _record(row: Any) -> EntityRecord:
    values = {name: row[name] for name in _FIELDS}
    values["kind"] = EntityKind(values["kind"])
    values["status"] = Status(values["status"])
    if values["endpoint_status"] is not None:
        values["endpoint_status"] = EndpointStatus(values["endpoint_status"])
    return EntityRecord(**values)


class StoreBusy(TimeoutError):
    """A write waited for the store's other writers longer than the busy timeout."""


class _WriterQueue:
    """A lock whose waiters give up after the busy timeout, as SQLite's own waiters do."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise StoreBusy(f"waited more than {BUSY_TIMEOUT_S} s for the store's other writers")

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


class Store:
    """Entities and tags. Every method is one transaction; status changes are compare-and-set."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._writers: AbstractContextManager[None] = (
            _WriterQueue() if self._sqlite else nullcontext())
        database = engine.url.database if self._sqlite else None
        self._file = Path(database) if database and database != ":memory:" else None
        self._identity = _file_identity(self._file) if self._file is not None else None
        self._replaced_told = False

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def ping(self) -> bool:
        """Whether the store answers, and for SQLite whether its file is still the one opened:
        a server whose file was removed or replaced keeps answering from the file it holds
        open, and all it knows is gone at the next start (logged once)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if self._file is None or _file_identity(self._file) == self._identity:
            return True
        if not self._replaced_told:
            self._replaced_told = True
            log.error("the SQLite database %s was removed or replaced while the server ran: the server "
                      "still uses the file it opened, which is lost when it stops; put the file back "
                      "(or copy the database out) before stopping it", self._file)
        return False

    def close(self) -> None:
        """Release the connections; SQLite's write-ahead log is first copied into the database
        and emptied, so that no copy of a stopped server's data folder holds the earlier
        versions of rows it keeps (an erased database password among them)."""
        self.engine.dispose()  # the pool's connections, idle now
        if self._sqlite:
            with suppress(SQLAlchemyError), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, committed on leaving, rolled back on an exception."""
        with self._writers, self.engine.begin() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def lock_entity(self, conn: Connection, kind: EntityKind, entity_id: str) -> None:
        """Wait for, then hold until the transaction ends, the entity's row lock (PostgreSQL;
        a SQLite write transaction holds the whole database's write lock already)."""
        if not self._sqlite:
            conn.execute(
                select(entities.c.id)
                .where(entities.c.kind == kind.value, entities.c.id == entity_id)
                .with_for_update()
            )

    # -- entities ---------------------------------------------------------------------------

    def insert(self, record: EntityRecord) -> bool:
        """Insert a new entity; False if one with the same kind and id exists."""
        values = {name: _plain(getattr(record, name)) for name in _FIELDS}
        try:
            with self.write() as conn:
                conn.execute(insert(entities).values(**values))
        except IntegrityError:
            return False
        return True

    def get(self, kind: EntityKind, entity_id: str) -> EntityRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(entities).where(entities.c.kind == kind.value, entities.c.id == entity_id)
            ).mappings().first()
        return _record(row) if row else None

    def status(self, kind: EntityKind, entity_id: str) -> tuple[Status, str | None] | None:
        """An entity's status and message alone (the scheduler's frequent question), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(entities.c.status, entities.c.message)
                .where(entities.c.kind == kind.value, entities.c.id == entity_id)
            ).first()
        return (Status(row[0]), row[1]) if row else None

    def update(
        self,
        kind: EntityKind,
        entity_id: str,
        changes: Mapping[str, Any],
        *,
        only_if: Iterable[Status] | None = None,
        info: Mapping[str, Any] | None = None,
        only_if_endpoint: Iterable[EndpointStatus] | None = None,
        held_by: str | None = None,
    ) -> bool:
        """Apply column changes (and merge `info` keys) if the status is in `only_if` (and the
        real-time endpoint's status in `only_if_endpoint`, and the job's lease is the claim
        `held_by`'s: store/leases.py). A change of status happens only
        from a status that TRANSITIONS allows it from; `only_if` naming another is a bug
        (IllegalTransition).

        Returns whether a row changed. The info merge reads the row locked, so concurrent
        merges all keep their keys.
        """
        values = {k: _plain(v) for k, v in changes.items()}
        if "status" in changes:
            only_if = allowed_sources(Status(changes["status"]), only_if)
        with self.write() as conn:
            conditions = self._where(kind, entity_id, only_if)
            if only_if_endpoint is not None:
                conditions.append(entities.c.endpoint_status.in_(list(only_if_endpoint)))
            if held_by is not None:
                conditions.append(exists().where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id,
                                                 job_leases.c.token == held_by))
            if info:
                current = conn.execute(
                    select(entities.c.info).where(*conditions).with_for_update()
                ).scalar()
                if current is None:
                    return False
                values["info"] = {**current, **info}
            result = conn.execute(update(entities).where(*conditions).values(**values))
            return result.rowcount == 1

    def rewrite_info(
        self, kind: EntityKind, entity_id: str, rewrite: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> bool:
        """Replace the entity's info by `rewrite` of it (which answers None to leave it), read
        locked: a change merged meanwhile is never lost. Returns whether it was replaced."""
        with self.write() as conn:
            conditions = self._where(kind, entity_id, None)
            current = conn.execute(select(entities.c.info).where(*conditions).with_for_update()).scalar()
            new = None if current is None else rewrite(current)
            if new is None:
                return False
            conn.execute(update(entities).where(*conditions).values(info=new))
            return True

    @staticmethod
    def _where(
        kind: EntityKind, entity_id: str, only_if: Iterable[Status] | None
    ) -> list[ColumnElement[bool]]:
        conditions = [entities.c.kind == kind.value, entities.c.id == entity_id]
        if only_if is not None:
            conditions.append(entities.c.status.in_([s.value for s in only_if]))
        return conditions

    def find(self, query: Query) -> list[EntityRecord]:
        """The entities `query` asks for, in its order (Describe*'s pages)."""
        return self._select(queries.where(query), queries.order(query), query.limit)

    def _select(
        self, where: Sequence[ColumnElement[bool]], order_by: Sequence[Any], limit: int | None
    ) -> list[EntityRecord]:
        query = select(entities).where(*where).order_by(*order_by)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def updated_since(self, ms: int | None) -> list[EntityRecord]:
        """Every entity, deleted ones too, last updated at `ms` (epoch milliseconds) or later;
        all of them for None."""
        return self._select([] if ms is None else [entities.c.last_updated_at >= ms],
                            [entities.c.kind, entities.c.id], None)

    def with_status(self, kinds: Iterable[EntityKind], status: Status) -> list[EntityRecord]:
        return self._select(
            [entities.c.kind.in_([k.value for k in kinds]), entities.c.status == status.value],
            [entities.c.created_at, entities.c.id],
            None,
        )

    def select_endpoints(self) -> list[EntityRecord]:
        """Models whose real-time endpoint should be serving (mounted again after a restart)."""
        return self._select(
            [entities.c.kind == EntityKind.MLMODEL.value,
             entities.c.status == Status.COMPLETED.value,
             entities.c.endpoint_status.in_([EndpointStatus.READY, EndpointStatus.UPDATING])],
            [entities.c.created_at],
            None,
        )

    def is_empty(self) -> bool:
        """Whether the store holds no entity at all (deleted ones count)."""
        with self.engine.connect() as conn:
            return conn.execute(select(entities.c.id).limit(1)).first() is None

    def count_status(self, status: Status) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(entities).where(entities.c.status == status.value)
                ).scalar_one()
            )

    # -- facts about the store --------------------------------------------------------------

    def get_fact(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_fact(self, key: str, value: str) -> None:
        """Write the fact, whether or not it is there (two processes may write it at once)."""
        with self.write() as conn:
            if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(meta).values(key=key, value=value))
                except IntegrityError:  # another process inserted it meanwhile: its value is the same
                    conn.execute(update(meta).where(meta.c.key == key).values(value=value))

    # -- tags -------------------------------------------------------------------------------

    def get_tags(self, kind: EntityKind, entity_id: str) -> list[tuple[str, str | None]]:
        with self.engine.connect() as conn:
            return self._tags(conn, kind, entity_id)

    @staticmethod
    def _tags(conn: Connection, kind: EntityKind, entity_id: str) -> list[tuple[str, str | None]]:
        rows = conn.execute(
            select(tags.c.key, tags.c.value)
            .where(tags.c.kind == kind.value, tags.c.id == entity_id)
            .order_by(tags.c.position)
        )
        return [(r.key, r.value) for r in rows]

    def put_tags(
        self, kind: EntityKind, entity_id: str, new: Mapping[str, str | None], limit: int
    ) -> bool:
        """Add or replace tags; False (and no change) if the result would exceed `limit`.

        Holds the entity's lock while it counts, so racing adds never pass the limit together.
        """
        owner = (tags.c.kind == kind.value, tags.c.id == entity_id)
        with self.write() as conn:
            self.lock_entity(conn, kind, entity_id)
            rows = conn.execute(select(tags.c.key, tags.c.position).where(*owner))
            positions: dict[str, int] = {key: position for key, position in rows}
            added = [key for key in new if key not in positions]
            if len(positions) + len(added) > limit:
                return False
            replaced = [{"k": key, "v": value} for key, value in new.items() if key in positions]
            if replaced:
                by_key = update(tags).where(*owner, tags.c.key == bindparam("k"))
                conn.execute(by_key.values(value=bindparam("v")), replaced)
            top = max(positions.values(), default=0)
            if added:
                conn.execute(insert(tags), [
                    {"kind": kind.value, "id": entity_id, "key": key, "value": new[key],
                     "position": top + offset}
                    for offset, key in enumerate(added, start=1)
                ])
        return True

    def delete_tags(self, kind: EntityKind, entity_id: str, keys: Iterable[str]) -> None:
        with self.write() as conn:
            self.lock_entity(conn, kind, entity_id)
            conn.execute(
                tags.delete().where(
                    tags.c.kind == kind.value, tags.c.id == entity_id, tags.c.key.in_(list(keys))
                )
            )
