"""X-Amz-Target -> operation -> handler; the dispatch table is derived from the model, never kept.

A handler object exposes one method per operation under botocore's snake_case name
(`create_ml_model`, `predict`, ...). How a handler is called (keyword arguments, context) is the
web app's choice; this module only pairs operations with handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel

from openaml.errors import UnknownOperationException
from openaml.protocol.spec import ServiceSpec


@dataclass(frozen=True)
class Route:
    """One operation and the callable that serves it."""

    operation: OperationModel
    handler: Callable[..., Any]


@dataclass(frozen=True)
class DispatchTable:
    """Routes by operation name (PascalCase) and the operations that have no handler."""

    routes: dict[str, Route]
    missing: tuple[str, ...]


def resolve_target(spec: ServiceSpec, target: str | None) -> OperationModel:
    """The operation named by `X-Amz-Target: <prefix>.<Operation>`, else UnknownOperation."""
    prefix, _, name = (target or "").strip().rpartition(".")
    if not target or prefix != spec.target_prefix or not spec.has_operation(name):
        shown = target if target else "(missing X-Amz-Target header)"
        raise UnknownOperationException(f"Unknown operation {shown}")
    return spec.operation(name)


def build_dispatch_table(spec: ServiceSpec, service: object) -> DispatchTable:
    """Pair every operation with `service.<snake_case name>`; list those that lack one."""
    routes: dict[str, Route] = {}
    missing: list[str] = []
    for name in spec.operation_names:
        handler = getattr(service, spec.snake_name(name), None)
        if callable(handler):
            routes[name] = Route(spec.operation(name), handler)
        else:
            missing.append(name)
    return DispatchTable(routes, tuple(missing))


def route_for(table: DispatchTable, operation: OperationModel) -> Route:
    """The route of a resolved operation; an operation without handler is unknown to clients."""
    route = table.routes.get(operation.name)
    if route is None:
        raise UnknownOperationException(f"Operation {operation.name} is not implemented")
    return route
