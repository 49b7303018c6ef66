"""Content-type and body-size checks, request ids and standard headers."""

from __future__ import annotations

import uuid

import pytest

from openaml.errors import RequestEntityTooLargeException, UnsupportedMediaTypeException
from openaml.protocol.http import (
    DEFAULT_MAX_BODY_BYTES,
    check_body_size,
    check_content_type,
    new_request_id,
    response_headers,
)


@pytest.mark.parametrize("value", ["application/x-amz-json-1.1", "application/json",
                                   "application/x-amz-json-1.1; charset=utf-8",
                                   "Application/JSON;charset=UTF-8", " application/json "])
def test_accepted_content_types(value: str) -> None:
    check_content_type(value)


@pytest.mark.parametrize("value", [None, "", "text/plain", "application/x-amz-json-1.0",
                                   "application/x-www-form-urlencoded", "application/jsonx"])
def test_rejected_content_types(value: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeException) as info:
        check_content_type(value)
    assert info.value.http_status == 415


def test_body_size() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 64 * 2**20
    check_body_size(DEFAULT_MAX_BODY_BYTES)
    check_body_size(None)
    check_body_size("123")
    check_body_size("garbage")
    with pytest.raises(RequestEntityTooLargeException) as info:
        check_body_size(DEFAULT_MAX_BODY_BYTES + 1)
    assert info.value.http_status == 413
    with pytest.raises(RequestEntityTooLargeException):
        check_body_size("11", limit=10)


def test_request_ids_and_headers() -> None:
    first, second = new_request_id(), new_request_id()
    assert first != second and uuid.UUID(first).version == 4
    assert response_headers(first) == {"Content-Type": "application/x-amz-json-1.1",
                                       "x-amzn-RequestId": first}
    assert response_headers(None) == {"Content-Type": "application/x-amz-json-1.1"}
