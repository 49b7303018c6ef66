"""Cross-origin calls of the API from web pages of the origins `--cors-origins` lists (the
browser build of AWS's JavaScript SDK): Starlette's CORS middleware on the API route (`POST /`,
and the --advertise-url's path) alone. It answers the browser's preflight before any
credentials are asked for (a preflight carries none), and lets the page read the API's answers
and their AWS error headers. The console, job logs and reports stay same-origin."""

from __future__ import annotations

from collections.abc import Collection

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from openaml.server.guard import API_PATHS

# what AWS's SDKs read of an answer besides its body
EXPOSED_HEADERS = ("x-amzn-RequestId", "x-amzn-ErrorType", "x-amzn-ErrorMessage", "Date")
PREFLIGHT_SECONDS = 600


class ApiCors:
    """CORS for the API route; every other route is passed on as it is."""

    def __init__(self, app: ASGIApp, origins: Collection[str], api_paths: frozenset[str] = API_PATHS) -> None:
        self.app, self.api_paths = app, api_paths
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["POST"],
                                   allow_headers=["*"], expose_headers=list(EXPOSED_HEADERS),
                                   max_age=PREFLIGHT_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == "http" else None
        if method in ("POST", "OPTIONS") and scope.get("path") in self.api_paths:
            await self.cors(scope, receive, send)
            return
        await self.app(scope, receive, send)
