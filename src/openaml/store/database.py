"""The Store: entity and tag persistence with compare-and-set status changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from openaml.store.records import EntityKind, EntityRecord, Status
from openaml.store.tables import entities, metadata, tags

_FIELDS = [f.name for f in fields(EntityRecord)]


def open_store(url: str) -> Store:
    """Connect, create tables if needed, and return a Store (SQLite gets WAL and a busy timeout)."""
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"future": True}
    if is_sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return Store(engine)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _record(row: Any) -> EntityRecord:
    values = {name: row[name] for name in _FIELDS}
    values["kind"] = EntityKind(values["kind"])
    values["status"] = Status(values["status"])
    return EntityRecord(**values)


class Store:
    """Entities and tags. Every method is one transaction; status changes are compare-and-set."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def close(self) -> None:
        self.engine.dispose()

    # -- entities ---------------------------------------------------------------------------

    def insert(self, record: EntityRecord) -> bool:
        """Insert a new entity; False if one with the same kind and id exists."""
        values = {name: getattr(record, name) for name in _FIELDS}
        values["kind"] = record.kind.value
        values["status"] = record.status.value
        try:
            with self.engine.begin() as conn:
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
    ) -> bool:
        """Apply column changes (and merge `info` keys) if the status is in `only_if`.

        Returns whether a row changed. The info merge reads and writes in one transaction.
        """
        values = {k: (v.value if isinstance(v, Status) else v) for k, v in changes.items()}
        with self.engine.begin() as conn:
            conditions = self._where(kind, entity_id, only_if)
            if info:
                current = conn.execute(select(entities.c.info).where(*conditions)).scalar()
                if current is None:
                    return False
                values["info"] = {**current, **info}
            result = conn.execute(update(entities).where(*conditions).values(**values))
            return result.rowcount == 1

    @staticmethod
    def _where(
        kind: EntityKind, entity_id: str, only_if: Iterable[Status] | None
    ) -> list[ColumnElement[bool]]:
        conditions = [entities.c.kind == kind.value, entities.c.id == entity_id]
        if only_if is not None:
            conditions.append(entities.c.status.in_([s.value for s in only_if]))
        return conditions

    def select(
        self, where: Sequence[ColumnElement[bool]], order_by: Sequence[Any], limit: int | None
    ) -> list[EntityRecord]:
        query = select(entities).where(*where).order_by(*order_by)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def with_status(self, kinds: Iterable[EntityKind], status: Status) -> list[EntityRecord]:
        return self.select(
            [entities.c.kind.in_([k.value for k in kinds]), entities.c.status == status.value],
            [entities.c.created_at, entities.c.id],
            None,
        )

    def select_endpoints(self) -> list[EntityRecord]:
        """Models whose real-time endpoint should be serving (mounted again after a restart)."""
        return self.select(
            [entities.c.kind == EntityKind.MLMODEL.value,
             entities.c.status == Status.COMPLETED.value,
             entities.c.endpoint_status.in_(["READY", "UPDATING"])],
            [entities.c.created_at],
            None,
        )

    def count_status(self, status: Status) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(entities).where(entities.c.status == status.value)
                ).scalar_one()
            )

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
        """Add or replace tags; False (and no change) if the result would exceed `limit`."""
        with self.engine.begin() as conn:
            current = dict(self._tags(conn, kind, entity_id))
            added = [k for k in new if k not in current]
            if len(current) + len(added) > limit:
                return False
            position = conn.execute(
                select(func.coalesce(func.max(tags.c.position), 0)).where(
                    tags.c.kind == kind.value, tags.c.id == entity_id
                )
            ).scalar_one()
            for key, value in new.items():
                if key in current:
                    conn.execute(
                        update(tags)
                        .where(tags.c.kind == kind.value, tags.c.id == entity_id, tags.c.key == key)
                        .values(value=value)
                    )
                else:
                    position += 1
                    conn.execute(
                        insert(tags).values(
                            kind=kind.value, id=entity_id, key=key, value=value, position=position
                        )
                    )
        return True

    def delete_tags(self, kind: EntityKind, entity_id: str, keys: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                tags.delete().where(
                    tags.c.kind == kind.value, tags.c.id == entity_id, tags.c.key.in_(list(keys))
                )
            )
