"""HTTP Basic authentication for the web console when the server verifies access keys.

The user name is an access key id and the password its secret, so the console is no wider a
door than the API itself.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# The sign-in answer is plain text: it runs nothing, embeds nothing and may not be framed.
REFUSAL_HEADERS = {
    "WWW-Authenticate": 'Basic realm="OpenAML console"',
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class BasicAuthGate:
    """An ASGI wrapper that admits requests carrying a configured key id and secret."""

    def __init__(self, app: ASGIApp, keys: Mapping[str, str]) -> None:
        self.app, self.keys = app, dict(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._admitted(scope):
            response = PlainTextResponse(
                "Sign in with an access key id and its secret key.", status_code=401,
                headers=REFUSAL_HEADERS)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _admitted(self, scope: Scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = self.keys.get(key)
        return expected is not None and hmac.compare_digest(expected, secret)
