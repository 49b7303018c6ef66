"""Describe*: filtering, sorting and paging of entities (api-behavior.md §3)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from openaml.errors import InvalidInputException
from openaml.store import EntityKind, EntityRecord, Status
from openaml.store.tables import entities

COMPARATORS = ("EQ", "GT", "LT", "GE", "LE", "NE", "Prefix")
TIME_VARIABLES = frozenset({"CreatedAt", "LastUpdatedAt"})
DEFAULT_LIMIT = 100
MIN_EPOCH_SECONDS = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_EPOCH_SECONDS = 253402300799.0  # 9999-12-31T23:59:59Z
MAX_TOKEN_CHARS = 65536  # a real token holds one sort value (at most a few KB of JSON)
_ENTITY_ID = re.compile(r"[a-zA-Z0-9_.-]{1,64}")
_INT64 = (-(2**63), 2**63 - 1)

_c = entities.c
_COMMON: dict[str, Any] = {
    "CreatedAt": _c.created_at,
    "LastUpdatedAt": _c.last_updated_at,
    "Status": _c.status,
    "Name": func.coalesce(_c.name, ""),
    "IAMUser": _c.created_by,
}
_DATA_URI = func.coalesce(_c.data_uri, "")
FILTER_COLUMNS: dict[EntityKind, dict[str, Any]] = {
    EntityKind.DATASOURCE: {**_COMMON, "DataLocationS3": _DATA_URI},
    EntityKind.MLMODEL: {
        **_COMMON,
        "TrainingDataSourceId": func.coalesce(_c.datasource_id, ""),
        "RealtimeEndpointStatus": func.coalesce(_c.endpoint_status, "NONE"),
        "MLModelType": func.coalesce(_c.model_type, ""),
        "Algorithm": literal("sgd"),
        "TrainingDataURI": _DATA_URI,
    },
    EntityKind.EVALUATION: {
        **_COMMON,
        "MLModelId": func.coalesce(_c.model_id, ""),
        "DataSourceId": func.coalesce(_c.datasource_id, ""),
        "DataURI": _DATA_URI,
    },
    EntityKind.BATCH_PREDICTION: {
        **_COMMON,
        "MLModelId": func.coalesce(_c.model_id, ""),
        "DataSourceId": func.coalesce(_c.datasource_id, ""),
        "DataURI": _DATA_URI,
    },
}
_SORT_VALUE: dict[str, Callable[[EntityRecord], Any]] = {
    "CreatedAt": lambda r: r.created_at,
    "LastUpdatedAt": lambda r: r.last_updated_at,
    "Status": lambda r: r.status.value,
    "Name": lambda r: r.name or "",
    "IAMUser": lambda r: r.created_by,
    "DataLocationS3": lambda r: r.data_uri or "",
    "TrainingDataURI": lambda r: r.data_uri or "",
    "DataURI": lambda r: r.data_uri or "",
    "TrainingDataSourceId": lambda r: r.datasource_id or "",
    "DataSourceId": lambda r: r.datasource_id or "",
    "MLModelId": lambda r: r.model_id or "",
    "RealtimeEndpointStatus": lambda r: r.endpoint_status or "NONE",
    "MLModelType": lambda r: r.model_type or "",
    "Algorithm": lambda r: "sgd",
}


def describe(
    store_select: Callable[..., list[EntityRecord]],
    kind: EntityKind,
    params: Mapping[str, Any],
) -> tuple[list[EntityRecord], str | None]:
    """Run one Describe* page; returns the records and the NextToken (or None)."""
    variable = params.get("FilterVariable")
    given = {c: params[c] for c in COMPARATORS if params.get(c) is not None}
    columns = FILTER_COLUMNS[kind]
    if variable is None and given:
        raise InvalidInputException("Comparators need a FilterVariable")
    if variable is not None and variable not in columns:
        raise InvalidInputException(
            f"FilterVariable {variable} is not valid for Describe{kind.value}s; "
            f"use one of {', '.join(columns)}"
        )
    sort_variable = variable or "CreatedAt"
    column = columns[sort_variable]
    descending = params.get("SortOrder", "asc") == "dsc"
    limit = int(params.get("Limit") or DEFAULT_LIMIT)

    where: list[ColumnElement[bool]] = [_c.kind == kind.value]
    for comparator, raw in given.items():
        where.append(_condition(column, comparator, raw, sort_variable))
    if not (variable == "Status" and given.get("EQ") == Status.DELETED.value):
        where.append(_c.status != Status.DELETED.value)

    query_hash = _query_hash(kind, params)
    token = params.get("NextToken")
    if token:
        value, created, entity_id = _read_token(token, query_hash, sort_variable)
        where.append(_after(column, value, created, entity_id, descending))

    order = [column, _c.created_at, _c.id]
    records = store_select(where, [o.desc() if descending else o.asc() for o in order], limit + 1)
    page, more = records[:limit], len(records) > limit
    next_token = _make_token(page[-1], sort_variable, query_hash) if more else None
    return page, next_token


def _condition(column: Any, comparator: str, raw: str, variable: str) -> ColumnElement[bool]:
    if variable in TIME_VARIABLES:
        if comparator == "Prefix":
            raise InvalidInputException(f"Prefix cannot be used with the time variable {variable}")
        value: Any = _time_ms(raw, comparator)
    else:
        value = raw
    if comparator == "Prefix":
        # Compare by substring rather than LIKE so that % and _ in the prefix are literal.
        return func.substr(column, 1, len(value)) == value
    return {
        "EQ": column == value,
        "NE": column != value,
        "GT": column > value,
        "GE": column >= value,
        "LT": column < value,
        "LE": column <= value,
    }[comparator]


def _time_ms(raw: str, comparator: str) -> int:
    """Epoch milliseconds of a time filter value: epoch seconds, or ISO-8601 with a zone, from
    year 1 to 9999 (anything else, such as 1e400 or -1e19, is refused)."""
    text = raw.strip()
    shown = raw[:64] + ("..." if len(raw) > 64 else "")
    try:
        seconds = float(text)
    except ValueError:
        seconds = _iso_seconds(text, comparator, shown)
    if not MIN_EPOCH_SECONDS <= seconds <= MAX_EPOCH_SECONDS:  # also False for NaN
        raise InvalidInputException(
            f"{comparator} value {shown!r} is not a time between the years 1 and 9999")
    return round(seconds * 1000)


def _iso_seconds(text: str, comparator: str, shown: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputException(
            f"{comparator} value {shown!r} is not a time: use epoch seconds or ISO-8601"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInputException(f"{comparator} value {shown!r} needs a time zone (e.g. Z)")
    return moment.timestamp()


def _after(column: Any, value: Any, created: int, entity_id: str, descending: bool) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after (value, created_at, id) in the sort order."""
    if descending:
        return or_(
            column < value,
            and_(column == value, _c.created_at < created),
            and_(column == value, _c.created_at == created, _c.id < entity_id),
        )
    return or_(
        column > value,
        and_(column == value, _c.created_at > created),
        and_(column == value, _c.created_at == created, _c.id > entity_id),
    )


def _query_hash(kind: EntityKind, params: Mapping[str, Any]) -> str:
    fixed = {k: v for k, v in params.items() if k not in ("NextToken", "Limit")}
    blob = json.dumps([kind.value, fixed], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _make_token(record: EntityRecord, variable: str, query_hash: str) -> str:
    state = [_SORT_VALUE[variable](record), record.created_at, record.id, query_hash]
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _read_token(token: str, query_hash: str, variable: str) -> tuple[Any, int, str]:
    """The position a NextToken holds, fully checked: a token is plain data (a forged one can
    only start a page elsewhere), so every part must have the type and range of a real one."""
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("too long")
        value, created, entity_id, token_hash = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, RecursionError):
        raise InvalidInputException("NextToken is not valid") from None
    if token_hash != query_hash:
        raise InvalidInputException("NextToken was issued for a different query")
    expected = int if variable in TIME_VARIABLES else str
    if not (_is_int64(created) and isinstance(entity_id, str) and _ENTITY_ID.fullmatch(entity_id)
            and (_is_int64(value) if expected is int else _is_text(value))):
        raise InvalidInputException("NextToken is not valid")
    return value, created, entity_id


def _is_int64(value: Any) -> bool:
    return type(value) is int and _INT64[0] <= value <= _INT64[1]


def _is_text(value: Any) -> bool:
    """A string a database can hold: valid Unicode (JSON's \\ud800 escapes are not)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
