"""The AWS JSON 1.1 endpoint (`POST /`): checks, authentication, dispatch, serialization."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from openaml.errors import ServiceError
from openaml.protocol.http import (
    TARGET_HEADER,
    check_body_size,
    check_content_type,
    new_request_id,
    response_headers,
)
from openaml.protocol.parse import parse_request
from openaml.protocol.routing import DispatchTable, resolve_target, route_for
from openaml.protocol.serialize import internal_error, serialize_error, serialize_response
from openaml.protocol.spec import ServiceSpec
from openaml.service.context import caller_arn

log = logging.getLogger(__name__)
# Operations served on the event loop: pure in-memory work, where a thread hop costs more.
INLINE_OPERATIONS = frozenset({"Predict"})

Authenticator = Callable[[str, str, Mapping[str, str], bytes], str]


class AwsJsonEndpoint:
    """A Starlette endpoint; `authenticate` returns the caller's IAM ARN or raises ServiceError."""

    def __init__(
        self, spec: ServiceSpec, table: DispatchTable, authenticate: Authenticator, max_body: int
    ) -> None:
        self.spec, self.table = spec, table
        self.authenticate, self.max_body = authenticate, max_body

    async def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            headers = request.headers
            check_content_type(headers.get("content-type"))
            check_body_size(headers.get("content-length"), self.max_body)
            body = await request.body()
            check_body_size(len(body), self.max_body)
            caller = self.authenticate(request.method, str(request.url), headers, body)
            operation = resolve_target(self.spec, headers.get(TARGET_HEADER))
            route = route_for(self.table, operation)
            params = parse_request(operation, body)
            if operation.name in INLINE_OPERATIONS:
                result = _call(route.handler, params, caller)
            else:
                result = await run_in_threadpool(_call, route.handler, params, caller)
            return Response(serialize_response(operation, result), 200,
                            headers=response_headers(request_id))
        except ServiceError as exc:
            return _error(exc, request_id)
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            return _error(internal_error(exc, request_id), request_id)


def _call(handler: Callable[..., Any], params: dict[str, Any], caller: str) -> Any:
    token = caller_arn.set(caller)
    try:
        return handler(**params)
    finally:
        caller_arn.reset(token)


def _error(exc: ServiceError, request_id: str) -> Response:
    status, headers, body = serialize_error(exc, request_id)
    return Response(body, status, headers=headers)
