"""Describe*: filtering, sorting and paging of entities (api-behavior.md §3)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from openaml.errors import InvalidInputException
from openaml.ml.schema.values import NUMBER_PATTERN
from openaml.store import EntityKind, EntityRecord, Status
from openaml.store.queries import TIME_FIELDS, Comparator, Field, Query, SortValue, sort_value

COMPARATORS = tuple(c.value for c in Comparator)
DEFAULT_LIMIT = 100
MIN_EPOCH_SECONDS = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_EPOCH_SECONDS = 253402300799.0  # 9999-12-31T23:59:59Z
MAX_TOKEN_CHARS = 65536  # a real token holds one sort value (at most a few KB of JSON)
_ENTITY_ID = re.compile(r"[a-zA-Z0-9_.-]{1,64}")
_NUMBER = re.compile(NUMBER_PATTERN)  # epoch seconds as numbers are written (not '1_7e9', '١٧')
_INT64 = (-(2**63), 2**63 - 1)

_COMMON = {"CreatedAt": Field.CREATED_AT, "LastUpdatedAt": Field.LAST_UPDATED_AT,
           "Status": Field.STATUS, "Name": Field.NAME, "IAMUser": Field.CREATED_BY}
_USES = {"MLModelId": Field.MODEL_ID, "DataSourceId": Field.DATASOURCE_ID, "DataURI": Field.DATA_URI}
FILTER_VARIABLES: dict[EntityKind, dict[str, Field]] = {  # the API's FilterVariable values
    EntityKind.DATASOURCE: {**_COMMON, "DataLocationS3": Field.DATA_URI},
    EntityKind.MLMODEL: {
        **_COMMON,
        "TrainingDataSourceId": Field.DATASOURCE_ID,
        "RealtimeEndpointStatus": Field.ENDPOINT_STATUS,
        "MLModelType": Field.MODEL_TYPE,
        "Algorithm": Field.ALGORITHM,
        "TrainingDataURI": Field.DATA_URI,
    },
    EntityKind.EVALUATION: {**_COMMON, **_USES},
    EntityKind.BATCH_PREDICTION: {**_COMMON, **_USES},
}


def describe(
    find: Callable[[Query], list[EntityRecord]],
    kind: EntityKind,
    params: Mapping[str, Any],
) -> tuple[list[EntityRecord], str | None]:
    """Run one Describe* page; returns the records and the NextToken (or None)."""
    variable = params.get("FilterVariable")
    given = {c: params[c] for c in COMPARATORS if params.get(c) is not None}
    variables = FILTER_VARIABLES[kind]
    if variable is None and given:
        raise InvalidInputException("Comparators need a FilterVariable")
    if variable is not None and variable not in variables:
        raise InvalidInputException(
            f"FilterVariable {variable} is not valid for Describe{kind.value}s; "
            f"use one of {', '.join(variables)}"
        )
    field = variables[variable or "CreatedAt"]
    limit = int(params.get("Limit") or DEFAULT_LIMIT)
    query_hash = _query_hash(kind, params)
    token = params.get("NextToken")
    query = Query(
        kind, field,
        tuple((Comparator(c), _value(raw, c, variable or "CreatedAt", field)) for c, raw in given.items()),
        include_deleted=variable == "Status" and given.get("EQ") == Status.DELETED.value,
        descending=params.get("SortOrder", "asc") == "dsc",
        after=_read_token(token, query_hash, field) if token else None,
        limit=limit + 1)
    records = find(query)
    page, more = records[:limit], len(records) > limit
    next_token = _make_token(page[-1], field, query_hash) if more else None
    return page, next_token


def _value(raw: str, comparator: str, variable: str, field: Field) -> SortValue:
    if field not in TIME_FIELDS:
        return raw
    if comparator == Comparator.PREFIX:
        raise InvalidInputException(f"Prefix cannot be used with the time variable {variable}")
    return _time_ms(raw, comparator)


def _time_ms(raw: str, comparator: str) -> int:
    """Epoch milliseconds of a time filter value: epoch seconds, or ISO-8601 with a zone, from
    year 1 to 9999 (anything else, such as 1e400 or -1e19, is refused)."""
    text = raw.strip()
    shown = raw[:64] + ("..." if len(raw) > 64 else "")
    seconds = float(text) if _NUMBER.match(text) else _iso_seconds(text, comparator, shown)
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


def _query_hash(kind: EntityKind, params: Mapping[str, Any]) -> str:
    fixed = {k: v for k, v in params.items() if k not in ("NextToken", "Limit")}
    blob = json.dumps([kind.value, fixed], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _make_token(record: EntityRecord, field: Field, query_hash: str) -> str:
    state = [sort_value(record, field), record.created_at, record.id, query_hash]
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _read_token(token: str, query_hash: str, field: Field) -> tuple[SortValue, int, str]:
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
    expected = int if field in TIME_FIELDS else str
    if not (_is_int64(created) and isinstance(entity_id, str) and _ENTITY_ID.fullmatch(entity_id)
            and (_is_int64(value) if expected is int else _is_text(value))):
        raise InvalidInputException("NextToken is not valid")
    return value, created, entity_id


def _is_int64(value: Any) -> bool:
    return type(value) is int and _INT64[0] <= value <= _INT64[1]


def _is_text(value: Any) -> bool:
    """A string a database can hold: valid Unicode (JSON's \\ud800 escapes are not), without
    U+0000 (PostgreSQL's text cannot hold it)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
