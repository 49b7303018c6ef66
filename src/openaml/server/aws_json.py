"""The AWS JSON 1.1 endpoint (`POST /`): checks, authentication, dispatch, serialization."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import OperationModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from openaml.errors import InternalServerException, ServiceError, ThrottlingException
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
from openaml.protocol.sigv4 import Authorization
from openaml.protocol.spec import ServiceSpec
from openaml.service.context import RequestContext
from openaml.storage.objects import NO_SPACE_MESSAGE, no_space_left
from openaml.store.database import unavailable

log = logging.getLogger(__name__)
# Predict requests up to this size may be served on the event loop, where a thread hop costs
# more than the work: when the endpoint is mounted, parsing and scoring take microseconds (an
# MNIST record is 13 KB). Larger records, long texts for one, go to the thread pool: their
# tokens, n-grams and crosses can take milliseconds.
INLINE_BODY_LIMIT = 16 * 1024
# The request bodies a process holds at once, read or being served, in maximal bodies: each
# connection could keep a body of 63 MiB as long as it liked, 1.8 GB for 20 connections.
BODIES_HELD = 4

Admitter = Callable[[Mapping[str, str]], Authorization]
Authenticator = Callable[[str, str, Mapping[str, str], bytes, Authorization], RequestContext]
InlineTest = Callable[[str, dict[str, Any], RequestContext], bool]


class AwsJsonEndpoint:
    """A Starlette endpoint for `POST /`.

    `admit(headers)` refuses before the body is read what can be refused without it (no or
    unknown credentials, an expired signature) and returns the parsed Authorization;
    `authenticate(..., body, admitted)` then verifies the signature over the body and returns
    the request's context (the caller's IAM ARN), or raises ServiceError. Bodies are read in
    pieces and cut at `max_body` bytes. Everything that can take more than a moment (signature
    over a large body, JSON decoding, validation, the operation) runs in a worker thread, so
    that no request stalls the others; only small Predict requests whose endpoint is mounted
    (`inline(operation, params, context)`) are served on the event loop.
    """

    def __init__(
        self, spec: ServiceSpec, table: DispatchTable, admit: Admitter,
        authenticate: Authenticator, max_body: int,
        inline: InlineTest = lambda operation, params, context: False,
    ) -> None:
        self.spec, self.table = spec, table
        self.admit, self.authenticate, self.max_body = admit, authenticate, max_body
        self.inline = inline
        self.held = 0  # bytes of the bodies read or being read (on the event loop alone)

    async def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        body = b""
        try:
            headers = request.headers
            check_content_type(headers.get("content-type"))
            check_body_size(headers.get("content-length"), self.max_body)
            admitted = self.admit(headers)
            body = await self._read_body(request)
            url = str(request.url)
            if len(body) <= INLINE_BODY_LIMIT and _names_predict(headers.get(TARGET_HEADER)):
                operation, handler, params, context = self._prepare(
                    request.method, url, headers, body, admitted)
                if self.inline(operation.name, params, context):
                    result = _call(handler, params, context)
                else:
                    result = await run_in_threadpool(_call, handler, params, context)
            else:
                operation, result = await run_in_threadpool(
                    self._serve, request.method, url, headers, body, admitted)
            return Response(serialize_response(operation, result), 200,
                            headers=response_headers(request_id))
        except ServiceError as exc:
            return _error(exc, request_id)
        except ClientDisconnect:  # the client left mid-body: nobody to answer
            log.debug("request %s: the client disconnected before its body ended", request_id)
            return Response(status_code=400)
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            return _error(_unexpected(exc, request_id), request_id)
        finally:
            self.held -= len(body)  # held while the request is served

    async def _read_body(self, request: Request) -> bytes:
        """The body, counted in self.held as it comes (released here if it does not come
        whole); ThrottlingException when the process would hold more than BODIES_HELD maximal
        bodies."""
        body = bytearray()
        try:
            async for chunk in request.stream():
                if self.held + len(chunk) > BODIES_HELD * self.max_body:
                    raise ThrottlingException("The server holds as many request bodies as it may at once: "
                                              "try again later")
                self.held += len(chunk)
                body += chunk
                check_body_size(len(body), self.max_body)
        except BaseException:
            self.held -= len(body)
            raise
        return bytes(body)

    def _prepare(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                 admitted: Authorization
                 ) -> tuple[OperationModel, Callable[..., Any], dict[str, Any], RequestContext]:
        """Verify, resolve and validate: the operation, its handler, its parameters, the context."""
        context = self.authenticate(method, url, headers, body, admitted)
        operation = resolve_target(self.spec, headers.get(TARGET_HEADER))
        route = route_for(self.table, operation)
        return operation, route.handler, parse_request(operation, body), context

    def _serve(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
               admitted: Authorization) -> tuple[OperationModel, Any]:
        operation, handler, params, context = self._prepare(method, url, headers, body, admitted)
        return operation, _call(handler, params, context)


def _names_predict(target: str | None) -> bool:
    return bool(target) and target.endswith(".Predict")  # type: ignore[union-attr]


def _call(handler: Callable[..., Any], params: dict[str, Any], context: RequestContext) -> Any:
    return handler(context, **params)


def _unexpected(exc: Exception, request_id: str) -> ServiceError:
    """An InternalServerException for an error no handler expected; a store that did not
    answer (restarting, or a lock held too long) says so, as a retry may well succeed."""
    if no_space_left(exc):  # one line, not a traceback per request: the operator's to mend
        log.warning("request %s: no space left (%s)", request_id, exc)
        return InternalServerException(f"{NO_SPACE_MESSAGE} (request id {request_id}); nothing was changed")
    if not unavailable(exc):
        return internal_error(exc, request_id)
    log.warning("request %s: the store did not answer (%s)", request_id, exc)
    return InternalServerException(f"The service's store did not answer (request id {request_id}): "
                                   "nothing was changed; try again in a moment")


def _error(exc: ServiceError, request_id: str) -> Response:
    status, headers, body = serialize_error(exc, request_id)
    return Response(body, status, headers=headers)
