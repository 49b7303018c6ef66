"""Framework-neutral HTTP helpers for the JSON 1.1 endpoint: request checks and response headers.

The web app calls, in order: `check_content_type`, `check_body_size` (on Content-Length, then
on the bytes read), and answers with `response_headers(request_id)` (errors:
serialize.serialize_error).
"""

from __future__ import annotations

import uuid

from openaml.errors import RequestEntityTooLargeException, UnsupportedMediaTypeException

CONTENT_TYPE = "application/x-amz-json-1.1"
ACCEPTED_MEDIA_TYPES = frozenset({CONTENT_TYPE, "application/json"})
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # admits the largest valid request (16 MiB SQL query)
TARGET_HEADER = "x-amz-target"
REQUEST_ID_HEADER = "x-amzn-RequestId"


def check_content_type(value: str | None) -> None:
    """Accept application/x-amz-json-1.1 or application/json, with parameters (charset=...)."""
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        shown = value if value else "(none)"
        raise UnsupportedMediaTypeException(
            f"Unsupported Content-Type {shown}; use {CONTENT_TYPE} or application/json")


def check_body_size(size: int | str | None, limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """RequestEntityTooLargeException when `size` (bytes, or a Content-Length) exceeds `limit`."""
    if size is None:
        return
    try:
        n = int(size)
    except ValueError:
        return  # a malformed Content-Length is the HTTP server's business; the body gets checked
    if n > limit:
        raise RequestEntityTooLargeException(
            f"Request body of {n} bytes exceeds the maximum of {limit} bytes")


def new_request_id() -> str:
    """A fresh request id (UUID4), sent back as x-amzn-RequestId."""
    return str(uuid.uuid4())


def response_headers(request_id: str | None) -> dict[str, str]:
    """Standard headers of every JSON 1.1 response (success or error)."""
    headers = {"Content-Type": CONTENT_TYPE}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return headers
