"""CSRF tokens of the console: signed double-submit.

A token is a random nonce and its HMAC under the server's secret. A page that shows a form sets
the token in a cookie (HttpOnly; SameSite=Lax, so never sent with another site's POST) and
repeats it in the form's hidden field; a POST is accepted only when both are present, equal and
correctly signed. Another site can neither read the field nor sign a token of its own, and a
cookie planted from another port of the same host fails the signature. The secret lives in the
data directory, so every HTTP process of one server accepts the tokens of the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRET_FILE = "console-csrf.key"
SECRET_BYTES = 32
FIELD = "csrf_token"
_PURPOSE = b"openaml console csrf token:"
_NOTICE = b"openaml console notice:"


def load_secret(data_dir: Path) -> bytes:
    """The server's secret, created (mode 0600) on first use; concurrent first uses agree,
    because the file appears whole under its name (a hard link) or not at all."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(secrets.token_bytes(SECRET_BYTES))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another process was first: use its secret
        finally:
            draft.unlink()
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path} holds {len(secret)} bytes, not a console secret: remove it to make a new one")
    return secret


class CsrfTokens:
    """Issues and checks the tokens of one server (one secret)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # Named after the secret: two servers on one host (cookies ignore ports) keep apart.
        self.cookie = "openaml_csrf_" + self._sign(b"cookie name")[:8]

    def _sign(self, nonce: bytes, purpose: bytes = _PURPOSE) -> str:
        digest = hmac.new(self._secret, purpose + nonce, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign_notice(self, text: str) -> str:
        """The signature that lets a redirect's notice (`?notice=...&sig=...`) show: only
        notices the console itself wrote are shown, not any text a link carries."""
        return self._sign(text.encode(), _NOTICE)

    def notice(self, text: str | None, signature: str | None) -> str | None:
        """`text` when `signature` is its sign_notice, else None."""
        if not text or not signature:
            return None
        return text if hmac.compare_digest(signature.encode(), self.sign_notice(text).encode()) else None

    def issue(self) -> str:
        nonce = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
        return f"{nonce}.{self._sign(nonce.encode())}"

    def is_valid(self, token: str | None) -> bool:
        nonce, _, signature = (token or "").partition(".")
        return bool(nonce) and hmac.compare_digest(signature.encode(), self._sign(nonce.encode()).encode())

    def for_page(self, cookies: Mapping[str, str]) -> tuple[str, bool]:
        """(token to put in the page's forms, whether the cookie must be set anew)."""
        current = cookies.get(self.cookie)
        return (current, False) if current is not None and self.is_valid(current) else (self.issue(), True)

    def accepts(self, cookies: Mapping[str, str], form: Mapping[str, str]) -> bool:
        """A POST's double submit: the form field equals the cookie, and it is signed by us."""
        cookie, field = cookies.get(self.cookie, ""), form.get(FIELD, "")
        return bool(field) and hmac.compare_digest(cookie.encode(), field.encode()) and self.is_valid(field)
