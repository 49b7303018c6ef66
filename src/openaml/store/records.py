"""What the store holds, as plain frozen dataclasses that the service layer reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EntityKind(StrEnum):
    """The four entity types; values are the API's TaggableResourceType names."""

    DATASOURCE = "DataSource"
    MLMODEL = "MLModel"
    EVALUATION = "Evaluation"
    BATCH_PREDICTION = "BatchPrediction"


class Status(StrEnum):
    PENDING = "PENDING"
    INPROGRESS = "INPROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    DELETED = "DELETED"


class EndpointStatus(StrEnum):
    """A model's real-time endpoint (RealtimeEndpointInfo.EndpointStatus)."""

    NONE = "NONE"
    UPDATING = "UPDATING"  # being created: the model is loading
    READY = "READY"
    FAILED = "FAILED"


# Allowed status transitions (spec README "Asynchronous lifecycle"); DELETED is reachable from all.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.INPROGRESS, Status.FAILED, Status.DELETED}),
    Status.INPROGRESS: frozenset({Status.COMPLETED, Status.FAILED, Status.DELETED, Status.PENDING}),
    Status.COMPLETED: frozenset({Status.DELETED}),
    Status.FAILED: frozenset({Status.DELETED}),
    Status.DELETED: frozenset({Status.DELETED}),
}
USABLE = frozenset({Status.PENDING, Status.INPROGRESS, Status.COMPLETED})


class IllegalTransition(ValueError):
    """A status change that TRANSITIONS does not allow was asked for (a bug of the caller)."""


def allowed_sources(target: Status, only_if: Iterable[Status] | None) -> list[Status]:
    """The statuses an entity may go to `target` from: those of `only_if` (all when None),
    each of which must allow it."""
    sources = list(Status) if only_if is None else list(only_if)
    wrong = [s.value for s in sources if target not in TRANSITIONS[s]]
    if only_if is not None and wrong:
        raise IllegalTransition(f"no entity goes from {', '.join(wrong)} to {target.value}")
    return [s for s in sources if target in TRANSITIONS[s]]


@dataclass(frozen=True)
class EntityRecord:
    """One entity row. Times are epoch milliseconds.

    request: the Create call's parameters (for idempotency and for the job);
    info: what the job found or made (counts, sizes, artifact names, progress).
    The indexed columns (data_uri, datasource_id, model_id, model_type, endpoint_status)
    exist only for filtering and sorting in Describe*.
    """

    kind: EntityKind
    id: str
    status: Status
    created_at: int
    last_updated_at: int
    created_by: str
    request: dict[str, Any]
    name: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    compute_time: int | None = None
    message: str | None = None
    data_uri: str | None = None
    datasource_id: str | None = None
    model_id: str | None = None
    model_type: str | None = None
    endpoint_status: EndpointStatus | None = None
    endpoint_created_at: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
