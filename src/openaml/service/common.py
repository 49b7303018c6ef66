"""Rules shared by every entity family: idempotent create, lookups, rename, delete, field output."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from openaml.errors import (
    IdempotentParameterMismatchException,
    InternalServerException,
    InvalidInputException,
    ResourceNotFoundException,
)
from openaml.jobs.record_info import read_result, read_secret, secret_info
from openaml.jobs.specs import Document
from openaml.service.context import RequestContext, ServiceContext
from openaml.service.describe import describe
from openaml.storage import S3UnavailableError, StorageError
from openaml.store import EntityKind, EntityRecord, Status
from openaml.store.records import USABLE

R = TypeVar("R", bound=Document)

ID_MEMBER = {
    EntityKind.DATASOURCE: "DataSourceId",
    EntityKind.MLMODEL: "MLModelId",
    EntityKind.EVALUATION: "EvaluationId",
    EntityKind.BATCH_PREDICTION: "BatchPredictionId",
}


def timestamp(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop members without a value: the wire never carries null."""
    return {k: v for k, v in values.items() if v is not None}


def request_params(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The Create request as stored for idempotency: omitted optional members take defaults."""
    return {**defaults, **{k: v for k, v in params.items() if v is not None}}


def create(
    ctx: ServiceContext, context: RequestContext, kind: EntityKind, entity_id: str, request: dict[str, Any],
    columns: Callable[[], dict[str, Any]]
) -> dict[str, str]:
    """A Create call (api-behavior.md §1.2). An id already taken is compared with the request
    stored for it before anything else is looked at, so that a retry answers the same whatever
    became of what the first call referenced (entities deleted or FAILED, S3 documents removed),
    and a call with other parameters is a mismatch. Only a new id is validated: `columns` raises
    InvalidInputException, or gives the new PENDING record's columns besides the request."""
    existing = ctx.store.get(kind, entity_id)
    if existing is None:
        if ctx.store.insert(new_record(ctx, context, kind, entity_id, request, **columns())):
            ctx.engine.notify()
            return {ID_MEMBER[kind]: entity_id}
        existing = ctx.store.get(kind, entity_id)  # a concurrent Create of this id came first
        assert existing is not None
    if _named(existing.request) != _named(request):
        raise IdempotentParameterMismatchException(
            f"{kind.value} {entity_id} already exists with different parameters"
        )
    return {ID_MEMBER[kind]: entity_id}


NAME_MEMBERS = ("DataSourceName", "MLModelName", "EvaluationName", "BatchPredictionName")


def _named(request: Mapping[str, Any]) -> dict[str, Any]:
    """A Create request as a retry is compared with it: an empty name is no name (name_param)."""
    return {k: v for k, v in request.items() if not (k in NAME_MEMBERS and v == "")}


def new_record(
    ctx: ServiceContext, context: RequestContext, kind: EntityKind, entity_id: str,
    request: dict[str, Any], **columns: Any
) -> EntityRecord:
    now = ctx.clock()
    return EntityRecord(
        kind=kind,
        id=entity_id,
        status=Status.PENDING,
        created_at=now,
        last_updated_at=now,
        created_by=context.caller,
        request=request,
        **columns,
    )


def get_existing(ctx: ServiceContext, kind: EntityKind, entity_id: str) -> EntityRecord:
    record = ctx.store.get(kind, entity_id)
    if record is None:
        raise ResourceNotFoundException(f"No {kind.value} with id {entity_id} exists")
    return record


def get_usable(ctx: ServiceContext, kind: EntityKind, entity_id: str, role: str) -> EntityRecord:
    """A referenced entity for a Create call: it must exist and be neither FAILED nor DELETED."""
    record = ctx.store.get(kind, entity_id)
    if record is None:
        raise InvalidInputException(f"{role} {entity_id} does not exist")
    if record.status not in USABLE:
        raise InvalidInputException(f"{role} {entity_id} is {record.status.value} and cannot be used")
    return record


def rename(ctx: ServiceContext, kind: EntityKind, entity_id: str, name: str) -> dict[str, str]:
    """Update* of a name: an empty one is stored as no name, as Create* stores it."""
    record = get_existing(ctx, kind, entity_id)
    if record.status is Status.DELETED:
        raise InvalidInputException(f"{kind.value} {entity_id} is DELETED and cannot be updated")
    updated = ctx.store.update(
        kind, entity_id, {"name": name_param(name), "last_updated_at": ctx.clock()},
        only_if=[s for s in Status if s is not Status.DELETED],
    )
    if not updated:
        raise InvalidInputException(f"{kind.value} {entity_id} is DELETED and cannot be updated")
    return {ID_MEMBER[kind]: entity_id}


def delete(ctx: ServiceContext, kind: EntityKind, entity_id: str, **extra: Any) -> dict[str, str]:
    """Mark DELETED (irreversible; deleting again answers the same); a secret it kept (a
    staged query's password) goes."""
    record = get_existing(ctx, kind, entity_id)
    if record.status is not Status.DELETED:
        ctx.store.update(
            kind, entity_id,
            {"status": Status.DELETED, "last_updated_at": ctx.clock(), **extra},
            only_if=[s for s in Status if s is not Status.DELETED],
            info=secret_info(None) if read_secret(record) is not None else None,
        )
        ctx.engine.notify()
    return {ID_MEMBER[kind]: entity_id}


def job_result(record: EntityRecord, kind: type[R]) -> R | None:
    """What the entity's job found or made: stored as it COMPLETED, and kept when the entity is
    DELETED (api-behavior.md §5); None for an entity that never completed (one deleted while
    PENDING or INPROGRESS, or FAILED)."""
    if record.status not in (Status.COMPLETED, Status.DELETED):
        return None
    return read_result(record, kind)


def common_fields(ctx: ServiceContext, record: EntityRecord, result: Document | None) -> dict[str, Any]:
    """Members every entity shares (api-behavior.md §1.3); `result`: its job_result, whose
    presence says that a DELETED entity had COMPLETED (and keeps its ComputeTime)."""
    completed = record.status is Status.COMPLETED or result is not None
    return {
        ID_MEMBER[record.kind]: record.id,
        "CreatedByIamUser": record.created_by,
        "CreatedAt": timestamp(record.created_at),
        "LastUpdatedAt": timestamp(record.last_updated_at),
        "Name": record.name,
        "Status": record.status.value,
        "Message": record.message,
        "ComputeTime": record.compute_time if completed else None,
        "StartedAt": timestamp(record.started_at),
        "FinishedAt": timestamp(record.finished_at),
    }


def log_uri(ctx: ServiceContext, record: EntityRecord) -> str:
    """The URL of the job log; the ids '.' and '..' are percent-encoded, since clients would
    otherwise resolve them as path segments."""
    segment = record.id.replace(".", "%2E") if record.id in (".", "..") else record.id
    return f"{ctx.settings.base_url}/logs/{record.kind.value}/{segment}"


ToApi = Callable[[ServiceContext, EntityRecord], dict[str, Any]]


def get_response(ctx: ServiceContext, kind: EntityKind, entity_id: str, to_api: ToApi) -> dict[str, Any]:
    """A Get* answer: the entity's members plus its LogUri."""
    record = get_existing(ctx, kind, entity_id)
    return compact({**to_api(ctx, record), "LogUri": log_uri(ctx, record)})


def describe_operation(kind: EntityKind, to_api: ToApi) -> Callable[..., dict[str, Any]]:
    """The Describe* handler of `kind` (every Describe* takes the same members)."""

    def handler(self: Any, context: RequestContext, FilterVariable: str | None = None,
                EQ: str | None = None, GT: str | None = None, LT: str | None = None, GE: str | None = None,
                LE: str | None = None, NE: str | None = None, Prefix: str | None = None,
                SortOrder: str | None = None, NextToken: str | None = None,
                Limit: int | None = None) -> dict[str, Any]:
        """One page of entities and the NextToken."""
        params = {"FilterVariable": FilterVariable, "EQ": EQ, "GT": GT, "LT": LT, "GE": GE,
                  "LE": LE, "NE": NE, "Prefix": Prefix, "SortOrder": SortOrder,
                  "NextToken": NextToken, "Limit": Limit}
        ctx: ServiceContext = self.ctx
        records, token = describe(ctx.store.find, kind, {k: v for k, v in params.items() if v is not None})
        return compact({"Results": [compact(to_api(ctx, r)) for r in records], "NextToken": token})

    handler.__name__ = f"describe_{kind.value.lower()}s"
    return handler


def name_param(value: str | None) -> str | None:
    """An empty name is stored as no name."""
    return value or None


def read_document(ctx: ServiceContext, uri: str, member: str, max_chars: int, what: str) -> str:
    """The text of a schema or recipe object named by `member`, read only up to the largest
    such document (`max_chars` characters of 4-byte UTF-8, after a byte order mark)."""
    limit = 3 + 4 * max_chars
    try:
        with ctx.objects.open_read(uri) as stream:
            data = stream.read(limit + 1)
    except S3UnavailableError as exc:  # the server's storage, not the input, is at fault
        raise InternalServerException(str(exc)) from None
    except (StorageError, OSError) as exc:
        raise InvalidInputException(f"{member} {uri} cannot be read: {exc}") from None
    text = data.decode("utf-8-sig", errors="replace")
    if len(data) > limit or len(text) > max_chars:  # the characters, as of a document given inline
        raise InvalidInputException(f"{member} {uri} is larger than {what} of {max_chars:,} characters")
    return text
