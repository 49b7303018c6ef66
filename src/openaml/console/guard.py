"""ConsoleGuard: the ASGI wrapper around the console's routes.

* Every response gets headers that forbid framing (clickjacking), inline and foreign scripts and
  styles, MIME sniffing, and cross-origin referrers.
* Every request other than GET/HEAD must be a bounded urlencoded form carrying the console's
  CSRF token (see `csrf`) and, where the browser names its Origin or Referer, come from this
  host. The one exception is an upload (PUT to UPLOAD_PATH): its body, a file, is streamed to
  the route, and its token comes in the TOKEN_HEADER header. Anything else is refused (403,
  or 413 for a body over the form limit) before a route runs, so no route can forget the check.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openaml.console.csrf import FIELD, CsrfTokens
from openaml.console.forms import MAX_FORM_BYTES, parse_form
from openaml.errors import ServiceError

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)
_HEADER_NAMES = frozenset(name.lower().encode() for name, _ in SECURITY_HEADERS)
_HEADER_LINES = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]
SAFE_METHODS = frozenset({"GET", "HEAD"})
UPLOAD_PATH = "/upload"  # PUT: a file streamed into the object store (routes.upload)
TOKEN_HEADER = "x-csrf-token"  # an upload's CSRF token
EXPIRED = ("The form has expired or did not come from this console (its cookie is missing, as after the browser "
           "was restarted): reload the page and submit it again.")


RefusalPage = Callable[[Scope, str, int], Response]  # (scope, message, status) -> the console's page of it


class ConsoleGuard:
    """Security headers on every response; CSRF, origin and size checks on every POST. A
    refusal is JSON ({"error": message}) for a page's script, else `page` (the console's error
    page; plain text without one)."""

    def __init__(self, app: ASGIApp, tokens: CsrfTokens, page: RefusalPage | None = None) -> None:
        self.app, self.tokens, self.page = app, tokens, page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "PUT" and scope["path"].endswith(UPLOAD_PATH):
            # an upload: a file streamed as the body (not a form), its token in a header
            refusal = self._refusal(headers, b"", headers.get(TOKEN_HEADER, ""))
            if refusal is not None:
                await self._answer(scope, headers, *refusal)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body = await _read_body(headers, receive)
        refusal = ((f"The form is larger than {MAX_FORM_BYTES:,} bytes.", 413) if body is None
                   else self._refusal(headers, body))
        if refusal is not None:
            await self._answer(scope, headers, *refusal)(scope, receive, send)
            return
        await self.app(scope, _replay(body or b"", receive), send)

    def _refusal(self, headers: Headers, body: bytes, token: str | None = None) -> tuple[str, int] | None:
        """Why the request is refused, and its status (None: it is not): another origin, a bad
        form, or a token missing from the form (or, for an upload, from `token`, its header)."""
        if not _same_origin(headers):
            return "Cross-site form posts are refused.", 403
        try:
            form = parse_form(body) if token is None else {FIELD: token}
        except ServiceError as exc:
            return str(exc), exc.http_status
        if not self.tokens.accepts(cookie_parser(headers.get("cookie", "")), form):
            return EXPIRED, 403
        return None

    def _answer(self, scope: Scope, headers: Headers, message: str, status: int) -> Response:
        """The refusal for whoever sent the request: a browser's form post (it accepts HTML)
        gets the console's page, a script JSON it can show."""
        if "text/html" not in headers.get("accept", ""):
            return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})
        if self.page is None:
            return PlainTextResponse(message, status_code=status)
        return self.page(scope, message, status)


def with_security_headers(send: Send) -> Send:
    """`send`, adding SECURITY_HEADERS to the response's start (replacing any of the same name)."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _HEADER_NAMES]
            message = {**message, "headers": kept + _HEADER_LINES}
        await send(message)

    return send_with_headers


def _same_origin(headers: Headers) -> bool:
    """Where the browser names the page that posted (Origin, else Referer), it is this host."""
    origin = headers.get("origin") or headers.get("referer")
    if origin is None:
        return True
    return origin != "null" and urllib.parse.urlsplit(origin).netloc == headers.get("host", "")


async def _read_body(headers: Headers, receive: Receive) -> bytes | None:
    """The request body, or None when it is over MAX_FORM_BYTES (read no further)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # disconnected: whatever came
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
