"""ASGI wrappers that decide who may talk to the server before any route runs.

* `HostGuard` (loopback server, no access keys): only requests addressed to a loopback name or
  the advertised host, and not sent by a page of another origin (but those of --cors-origins),
  are answered. Without it any
  web page a user visits could drive the API through DNS rebinding (`Host: rebind.evil:8080`).
* `SecurityHeaders`: every response, refusals included, forbids framing and MIME sniffing.
* `AccessGate` (access keys configured): every route needs credentials, except `GET /health`,
  `GET /health/live` and `POST /` (the API, which verifies its SigV4 signature itself; also at
  the --advertise-url's path). Everything else (console,
  job logs, reports, and any route added later) takes HTTP Basic with a key id and its secret.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterable, Mapping

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from openaml.console.guard import with_security_headers
from openaml.errors import AccessDeniedException
from openaml.protocol.http import new_request_id
from openaml.protocol.serialize import serialize_error
from openaml.server.basic_auth import BasicAuthGate
from openaml.settings import is_loopback_host


@functools.lru_cache(maxsize=1024)  # a client sends the same Host on every request
def host_of(authority: str) -> str:
    """The host part of a Host header or URL authority (`[::1]:80` -> `::1`), lower-cased;
    "" for anything malformed (`[::1`, `[]`)."""
    try:
        return (urllib.parse.urlsplit("//" + authority.strip()).hostname or "").lower()
    except ValueError:
        return ""


def origin_host(origin: str) -> str:
    """The host of an Origin header (`http://localhost:8080` -> `localhost`); "" when it is
    `null` or malformed."""
    try:
        parsed = urllib.parse.urlsplit(origin.strip())
    except ValueError:
        return ""
    return host_of(parsed.netloc) if parsed.scheme and parsed.netloc else ""


API_PATHS = frozenset({"/"})  # where the API answers (Settings.api_paths adds --advertise-url's path)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _refusal(scope: Scope, message: str, api_paths: frozenset[str]) -> Response:
    """403, as an AWS JSON error on the API route, as text elsewhere."""
    if scope.get("path") in api_paths and scope.get("method") == "POST":
        request_id = new_request_id()
        status, headers, body = serialize_error(AccessDeniedException(message), request_id)
        return Response(body, status, headers=headers)
    return PlainTextResponse(message, status_code=403)


class HostGuard:
    """Answer only requests whose Host (and Origin, when sent) is this server's own."""

    def __init__(self, app: ASGIApp, extra_hosts: Iterable[str] = (), origins: Iterable[str] = (),
                 api_paths: frozenset[str] = API_PATHS) -> None:
        self.app, self.api_paths = app, api_paths
        self.extra_hosts = frozenset(h.lower() for h in extra_hosts if h)
        self.origins = frozenset(origins)  # other origins whose pages may call (--cors-origins)

    def allows(self, host: str) -> bool:
        return bool(host) and (host in self.extra_hosts or is_loopback_host(host))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = host_of(_header(scope, b"host") or "")
            origin = _header(scope, b"origin")
            problem = None
            if not self.allows(host):
                problem = (f"Host '{host or '(none)'}' is not this server's name: a server without "
                           "access keys answers only loopback names and its --advertise-url host")
            elif origin is not None and not (self.allows(origin_host(origin)) or origin in self.origins):
                problem = f"Requests from pages of origin '{origin[:100]}' are refused"
            if problem is not None:
                await _refusal(scope, problem, self.api_paths)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class AccessGate:
    """Require HTTP Basic credentials (key id, secret) on every route but the public ones."""

    def __init__(self, app: ASGIApp, keys: Mapping[str, str], api_paths: frozenset[str] = API_PATHS) -> None:
        self.app, self.api_paths = app, api_paths
        self.gated = BasicAuthGate(app, keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _self_authenticating(scope, self.api_paths):
            await self.gated(scope, receive, send)
            return
        await self.app(scope, receive, send)


HEALTH_PATHS = ("/health", "/health/live")


def _self_authenticating(scope: Scope, api_paths: frozenset[str]) -> bool:
    """The API verifies signatures itself; the health checks are public (they show no data)."""
    path, method = scope.get("path"), scope.get("method")
    return (path in api_paths and method == "POST") or (path in HEALTH_PATHS and method in ("GET", "HEAD"))


class SecurityHeaders:
    """The console's security headers (no framing, no sniffing, same-origin referrers, a strict
    content policy) on every response of the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = with_security_headers(send)
        await self.app(scope, receive, send)
