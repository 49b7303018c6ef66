"""Result dict or ServiceError -> JSON 1.1 response, by walking the operation's output shape.

Encoding rules (spec README "Wire protocol"): members that are None, absent or not in the shape
are dropped (never JSON null); timestamps become epoch seconds with a millisecond fraction;
integers/longs are JSON numbers; non-finite floats are dropped (JSON has no NaN); strings longer
than the shape's `max` (e.g. `Message`, 10,240) are truncated; str-valued Enums send their value.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import functools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from openaml.errors import InternalServerException, ServiceError
from openaml.protocol.http import response_headers

_OMIT: Any = object()
Encoder = Callable[[Any], Any]

log = logging.getLogger(__name__)


def serialize_response(operation: OperationModel, result: Mapping[str, Any] | None) -> bytes:
    """The JSON body of a successful call: `result` restricted to the output shape."""
    encoded = compiled_output(operation)(result or {})
    return _dumps({} if encoded is _OMIT else encoded)


def _dumps(value: Any) -> bytes:
    """JSON of the value; a string that is no text (a lone surrogate, which records made
    before such input was refused may hold) has it replaced by U+FFFD, never a 500."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return orjson.dumps(_as_text(value))


def _as_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_as_text(k): _as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value]
    return value


def serialize_error(
    exc: ServiceError, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(HTTP status, headers, body) for an error; botocore reads the code from `__type`."""
    headers = response_headers(request_id)
    headers["x-amzn-ErrorType"] = exc.error_type
    body = _dumps({"__type": exc.error_type, "message": exc.message})
    return exc.http_status, headers, body


def internal_error(exc: BaseException, request_id: str) -> InternalServerException:
    """Log an unexpected exception (traceback stays server side) and hide it from the client."""
    log.error("request %s failed with an unexpected error", request_id, exc_info=exc)
    return InternalServerException(
        f"An internal error occurred while processing the request (request id {request_id})")


@functools.cache
def compiled_output(operation: OperationModel) -> Encoder:
    """The encoder of an operation's output (compiled on first use, then reused)."""
    shape = operation.output_shape
    if shape is None:
        return lambda value: {}
    return _Compiler().compile(shape)


def epoch_seconds(value: dt.datetime) -> float:
    """Epoch seconds rounded to milliseconds; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return round(value.timestamp(), 3)


class _Compiler:
    """Builds one encoder closure per output shape; an encoder returns _OMIT to drop a value."""

    def __init__(self) -> None:
        self._done: dict[str, Encoder] = {}

    def compile(self, shape: Shape) -> Encoder:
        if shape.name in self._done:
            return self._done[shape.name]
        slot: list[Encoder] = []
        self._done[shape.name] = lambda v: slot[0](v)  # recursion placeholder
        builder = getattr(self, f"_{shape.type_name}", None)
        if builder is None:
            raise ValueError(f"unsupported shape type {shape.type_name} ({shape.name})")
        encoder: Encoder = builder(shape)
        slot.append(encoder)
        self._done[shape.name] = encoder
        return encoder

    def _string(self, shape: Shape) -> Encoder:
        limit = shape.metadata.get("max")

        def encode(value: Any) -> Any:
            if isinstance(value, enum.Enum):
                value = value.value
            text = value if type(value) is str else str(value)
            return text if limit is None or len(text) <= limit else text[:limit]

        return encode

    def _integer(self, shape: Shape) -> Encoder:
        return lambda value: int(value)

    _long = _integer

    def _float(self, shape: Shape) -> Encoder:
        def encode(value: Any) -> Any:
            number = float(value)
            return number if math.isfinite(number) else _OMIT

        return encode

    _double = _float

    def _boolean(self, shape: Shape) -> Encoder:
        return lambda value: bool(value)

    def _timestamp(self, shape: Shape) -> Encoder:
        def encode(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return epoch_seconds(value)
            if isinstance(value, str):
                return epoch_seconds(dt.datetime.fromisoformat(value))
            return round(float(value), 3)

        return encode

    def _blob(self, shape: Shape) -> Encoder:
        return lambda value: base64.b64encode(value).decode("ascii")

    def _structure(self, shape: StructureShape) -> Encoder:
        members = [(name, self.compile(member)) for name, member in shape.members.items()]

        def encode(value: Any) -> Any:
            out: dict[str, Any] = {}
            for name, member_encoder in members:
                item = value.get(name)
                if item is not None:
                    encoded = member_encoder(item)
                    if encoded is not _OMIT:
                        out[name] = encoded
            return out

        return encode

    def _list(self, shape: ListShape) -> Encoder:
        member_encoder = self.compile(shape.member)

        def encode(value: Any) -> Any:
            encoded = (member_encoder(item) for item in value if item is not None)
            return [item for item in encoded if item is not _OMIT]

        return encode

    def _map(self, shape: MapShape) -> Encoder:
        key_encoder = self.compile(shape.key)
        value_encoder = self.compile(shape.value)

        def encode(value: Any) -> Any:
            out: dict[str, Any] = {}
            for key, item in value.items():
                if item is not None:
                    encoded = value_encoder(item)
                    if encoded is not _OMIT:
                        out[key_encoder(key)] = encoded
            return out

        return encode
