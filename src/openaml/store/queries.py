"""Filtered, sorted, paged lists of entities (what Describe* asks for), as typed queries that the
store turns into SQL: callers never see a column or an expression."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import String, and_, func, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from openaml.store.records import EndpointStatus, EntityKind, EntityRecord, Status
from openaml.store.tables import entities

SortValue = int | str


class Field(StrEnum):
    """What entities are filtered and sorted by. Absent values compare as "" (NONE for the
    endpoint status); every model's algorithm is "sgd"."""

    CREATED_AT = "created_at"
    LAST_UPDATED_AT = "last_updated_at"
    STATUS = "status"
    NAME = "name"
    CREATED_BY = "created_by"
    DATA_URI = "data_uri"
    DATASOURCE_ID = "datasource_id"
    MODEL_ID = "model_id"
    ENDPOINT_STATUS = "endpoint_status"
    MODEL_TYPE = "model_type"
    ALGORITHM = "algorithm"


TIME_FIELDS = frozenset({Field.CREATED_AT, Field.LAST_UPDATED_AT})  # epoch ms; the rest: text


class Comparator(StrEnum):
    EQ = "EQ"
    NE = "NE"
    GT = "GT"
    GE = "GE"
    LT = "LT"
    LE = "LE"
    PREFIX = "Prefix"  # text fields only


@dataclass(frozen=True)
class Query:
    """Entities of `kind` whose `sort` field meets every condition, in `sort` order (ties by
    creation time, then id), from just after the position `after` (sort value, created_at,
    id) on, at most `limit` of them. DELETED ones only when `include_deleted`."""

    kind: EntityKind
    sort: Field = Field.CREATED_AT
    conditions: tuple[tuple[Comparator, SortValue], ...] = ()
    include_deleted: bool = False
    descending: bool = False
    after: tuple[SortValue, int, str] | None = None
    limit: int | None = None


def sort_value(record: EntityRecord, field: Field) -> SortValue:
    """The record's value of `field`, as the store compares it."""
    if field is Field.ALGORITHM:
        return "sgd"
    value = getattr(record, field.value)
    if field is Field.STATUS:
        return str(value.value)
    if field in TIME_FIELDS:
        return int(value)
    return str(value or (EndpointStatus.NONE if field is Field.ENDPOINT_STATUS else ""))


class CodePoints(ColumnElement[str]):
    """A text expression compared and sorted by Unicode code points, as api-behavior.md §3.2
    has string variables, whatever the database's collation: PostgreSQL's comparisons follow
    the database's (under ICU's en-US, or the en_US.utf8 of the official image, 'a' < 'B' < 'b'
    and GT 'Z' found no lowercase name), so they take the C collation there, whose order is that
    of the UTF-8 bytes, the code points'; SQLite's default BINARY collation compares the bytes
    already."""

    inherit_cache = True
    _traverse_internals = [("text", InternalTraversal.dp_clauseelement)]
    type = String()

    def __init__(self, text: ColumnElement[Any]) -> None:
        self.text = text


@compiles(CodePoints)
def _code_points(element: CodePoints, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.text, **kw)


@compiles(CodePoints, "postgresql")
def _code_points_postgresql(element: CodePoints, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.text, **kw)}) COLLATE "C"'


def _column(field: Field) -> Any:
    if field is Field.ALGORITHM:
        return literal("sgd")
    column = getattr(entities.c, field.value)
    if field in TIME_FIELDS:
        return column
    if field is Field.STATUS:
        return CodePoints(column)
    return CodePoints(func.coalesce(column, EndpointStatus.NONE.value if field is Field.ENDPOINT_STATUS else ""))


def where(query: Query) -> list[ColumnElement[bool]]:
    """The SQL conditions of `query`."""
    column = _column(query.sort)
    conditions = [entities.c.kind == query.kind.value]
    for comparator, value in query.conditions:
        conditions.append(_compare(column, comparator, value, query.sort))
    if not query.include_deleted:
        conditions.append(entities.c.status != Status.DELETED.value)
    if query.after is not None:
        conditions.append(_after(column, *query.after, query.descending))
    return conditions


def order(query: Query) -> list[Any]:
    columns = [_column(query.sort), entities.c.created_at, CodePoints(entities.c.id)]
    return [c.desc() if query.descending else c.asc() for c in columns]


def _compare(column: Any, comparator: Comparator, value: SortValue, field: Field) -> ColumnElement[bool]:
    if comparator is Comparator.PREFIX:
        if field in TIME_FIELDS or not isinstance(value, str):
            raise ValueError(f"a Prefix condition needs a text field, not {field.value}")
        # by substring rather than LIKE, so that % and _ in the prefix are literal
        prefix: ColumnElement[bool] = func.substr(column, 1, len(value)) == value
        return prefix
    comparisons: dict[Comparator, ColumnElement[bool]] = {
        Comparator.EQ: column == value,
        Comparator.NE: column != value,
        Comparator.GT: column > value,
        Comparator.GE: column >= value,
        Comparator.LT: column < value,
        Comparator.LE: column <= value,
    }
    return comparisons[comparator]


def _after(column: Any, value: SortValue, created: int, entity_id: str,
           descending: bool) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after (value, created_at, id) in the sort order."""
    c, ids = entities.c, CodePoints(entities.c.id)
    if descending:
        return or_(column < value, and_(column == value, c.created_at < created),
                   and_(column == value, c.created_at == created, ids < entity_id))
    return or_(column > value, and_(column == value, c.created_at > created),
               and_(column == value, c.created_at == created, ids > entity_id))
