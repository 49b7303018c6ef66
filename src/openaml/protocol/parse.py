"""Request body -> validated parameters, by walking the operation's input shape.

Two stages, as on AWS: a JSON type mismatch stops at once with SerializationException; value
constraints (required, lengths, patterns, enums, ranges) are all collected and reported together
as "N validation error(s) detected: Value 'x' at 'A.B' failed to satisfy constraint: ...".
Validators are compiled once per operation (closures per shape, patterns precompiled), because
Predict runs through here on the hot path.

Where the spec (api-behavior.md §1.1, README "Routing of Predict", §2.21) differs from the model:
* `VipURL` (Predict's `PredictEndpoint`) pattern `https://...amazon(aws)?.com` is not enforced.
* `EntityName` / `ComparatorValue` (`.*\\S.*|^$`) match across line breaks ("contains a
  non-white-space character"); `\\S` and friends are ASCII classes, as in Java.
* No string may hold U+0000 but Predict's record (`VariableName`, `VariableValue`), which is
  scored and never kept: PostgreSQL's text cannot hold it (a name or a filter value with it
  answered 500 there, while SQLite kept the name and its `substr` missed it in a Prefix).
* `TagKey` / `TagValue` violations, and a `Tag` without `Key`, raise InvalidTagException (only when
  no other member is invalid; otherwise one InvalidInputException lists every violation).
  The `aws:` prefix rule for tag keys is left to the service layer.
Unknown members are ignored; JSON null counts as absent; an empty body counts as `{}`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    Shape,
    StringShape,
    StructureShape,
)

from openaml.errors import (
    InvalidInputException,
    InvalidTagException,
    SerializationException,
    ServiceError,
)

Violation = tuple[type[ServiceError], str]
Validator = Callable[[Any, str, list[Violation]], Any]
Reporter = Callable[[str, str, list[Violation], str], None]  # (shown value, path, out, text)

TAG_SHAPES = frozenset({"TagKey", "TagValue"})
UNENFORCED_PATTERNS = frozenset({"VipURL"})
MULTILINE_TEXT_SHAPES = frozenset({"EntityName", "ComparatorValue"})
NUL_ALLOWED_SHAPES = frozenset({"VariableName", "VariableValue"})  # Predict's record: never stored
NO_NUL = "Member must not contain the character U+0000"
REQUIRED_OVERRIDES: dict[str, tuple[str, ...]] = {"Tag": ("Key",)}

MAX_SHOWN_DEPTH = 4
MAX_VIOLATIONS = 100  # a request is refused after this many; the message lists at most these
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_JSON_TYPE = {str: "string", int: "number", float: "number", bool: "boolean", dict: "object",
              list: "array"}


def _is_tag_text(value: str) -> bool:
    """Java `^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$`: letters, separators, numbers, `_.:/=+-@`."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in value)


# Java patterns that Python's `re` cannot express, translated by hand.
JAVA_PATTERNS: dict[str, Callable[[str], bool]] = {
    r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$": _is_tag_text,
}


def pattern_matcher(shape_name: str, pattern: str) -> Callable[[str], bool]:
    """A full-match predicate for a model pattern (Java regex syntax)."""
    if pattern in JAVA_PATTERNS:
        return JAVA_PATTERNS[pattern]
    if r"\p{" in pattern:
        raise ValueError(f"untranslated Java pattern for {shape_name}: {pattern}")
    flags = re.ASCII | (re.DOTALL if shape_name in MULTILINE_TEXT_SHAPES else 0)
    fullmatch = re.compile(pattern, flags).fullmatch
    return lambda value: fullmatch(value) is not None


def parse_request(operation: OperationModel, body: bytes) -> dict[str, Any]:
    """Decode and validate a JSON 1.1 request body for `operation`; returns the input members."""
    data = decode_body(body)
    violations: list[Violation] = []
    params: dict[str, Any] = compiled_input(operation)(data, "", violations)
    if violations:
        raise validation_error(violations)
    return params


def decode_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (SerializationException otherwise); empty body -> {}."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SerializationException(f"Request body is not valid JSON: {exc}") from None
    if type(data) is not dict:
        raise SerializationException("Request body must be a JSON object")
    return data


def _all_strings(values: Iterable[Any]) -> bool:
    """Whether every value is a str (one C-level join: a third of the time of a type set)."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def _holds_nul(strings: dict[str, str]) -> bool:
    return "\x00" in "".join(strings) or "\x00" in "".join(strings.values())


def validation_error(violations: list[Violation]) -> ServiceError:
    """One error for all violations: InvalidInputException unless every one is a tag problem."""
    only_tags = all(cls is InvalidTagException for cls, _ in violations)
    cls = InvalidTagException if only_tags else InvalidInputException
    n = len(violations)
    noun = "error" if n == 1 else "errors"
    if n >= MAX_VIOLATIONS:
        return cls(f"{n} or more validation errors detected: "
                   + "; ".join(msg for _, msg in violations))
    return cls(f"{n} validation {noun} detected: " + "; ".join(msg for _, msg in violations))


@functools.cache
def compiled_input(operation: OperationModel) -> Validator:
    """The validator of an operation's input (compiled on first use, then reused)."""
    shape = operation.input_shape
    if shape is None:
        return lambda value, path, out: {}
    return _Compiler().compile(shape)


def _run_checks(checks: list[Callable[[Any], str | None]], report: Reporter, value: Any, path: str,
                out: list[Violation]) -> None:
    """Report every constraint the value breaks (AWS lists all violations, not the first)."""
    for check in checks:
        text = check(value)
        if text is not None:
            report(_show(value), path, out, text)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any, limit: int = 256, depth: int = 0) -> str:
    """A value as Java's toString would render it in an AWS message, truncated: at most `limit`
    characters, 4 levels of nesting and about `limit` items, however large the value."""
    if isinstance(value, dict | list):
        if depth >= MAX_SHOWN_DEPTH:
            return "{...}" if isinstance(value, dict) else "[...]"
        parts: list[str] = []
        size = 0
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            shown = _show(item, limit, depth + 1)
            parts.append(f"{key}={shown}" if isinstance(value, dict) else shown)
            size += len(parts[-1]) + 2
            if size > limit:
                break
        inner = ", ".join(parts)
        text = "{" + inner + "}" if isinstance(value, dict) else "[" + inner + "]"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _type_error(value: Any, path: str, expected: str) -> SerializationException:
    got = _JSON_TYPE.get(type(value), "null" if value is None else type(value).__name__)
    where = f" at '{path}'" if path else ""
    return SerializationException(f"Expected a JSON {expected}{where}, got {got}")


class _Compiler:
    """Builds one validator closure per shape; each returns the converted value."""

    def __init__(self) -> None:
        self._done: dict[str, Validator] = {}

    def compile(self, shape: Shape) -> Validator:
        if shape.name in self._done:
            return self._done[shape.name]
        slot: list[Validator] = []
        self._done[shape.name] = lambda v, p, o: slot[0](v, p, o)  # recursion placeholder
        builder = getattr(self, f"_{shape.type_name}", None)
        if builder is None:
            raise ValueError(f"unsupported shape type {shape.type_name} ({shape.name})")
        validator: Validator = builder(shape)
        slot.append(validator)
        self._done[shape.name] = validator
        return validator

    @staticmethod
    def _error_class(shape: Shape) -> type[ServiceError]:
        return InvalidTagException if shape.name in TAG_SHAPES else InvalidInputException

    def _constraint(self, shape: Shape) -> Reporter:
        """Appends a violation `Value '<v>' at '<path>' failed to satisfy constraint: <text>`."""
        cls = self._error_class(shape)
        hidden = bool(shape.metadata.get("sensitive"))

        def report(shown: str, path: str, out: list[Violation], text: str) -> None:
            value = "Value" if hidden else f"Value '{shown}'"
            out.append((cls, f"{value} at '{path}' failed to satisfy constraint: {text}"))

        return report

    def _length_checks(self, shape: Shape) -> list[Callable[[Any], str | None]]:
        checks: list[Callable[[Any], str | None]] = []
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo:
            too_short = f"Member must have length greater than or equal to {lo}"
            checks.append(lambda v: None if len(v) >= lo else too_short)
        if hi is not None:
            too_long = f"Member must have length less than or equal to {hi}"
            checks.append(lambda v: None if len(v) <= hi else too_long)
        return checks

    def _string(self, shape: StringShape) -> Validator:
        checks = self._length_checks(shape)
        pattern = shape.metadata.get("pattern")
        if pattern is not None and shape.name not in UNENFORCED_PATTERNS:
            matches = pattern_matcher(shape.name, pattern)
            checks.append(lambda v: None if matches(v) else
                          f"Member must satisfy regular expression pattern: {pattern}")
        if shape.enum:
            allowed = frozenset(shape.enum)
            text = f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            checks.append(lambda v: None if v in allowed else text)
        report = self._constraint(shape)
        nul_refused = shape.name not in NUL_ALLOWED_SHAPES

        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is not str:
                raise _type_error(value, path, "string")
            found = len(out)
            _run_checks(checks, report, value, path, out)
            if nul_refused and len(out) == found and "\x00" in value:  # said once, where nothing else is wrong
                report(_show(value), path, out, NO_NUL)
            return value

        return validate

    def _integer(self, shape: Shape) -> Validator:
        lo_type, hi_type = _INT_RANGES.get(shape.type_name, _INT_RANGES["long"])
        check_range = self._range(shape)

        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is float and value.is_integer():
                value = int(value)
            if type(value) is not int or not lo_type <= value <= hi_type:
                raise _type_error(value, path, f"{shape.type_name} (whole number in range)")
            check_range(value, path, out)
            return value

        return validate

    _long = _integer

    def _range(self, shape: Shape) -> Callable[[float, str, list[Violation]], None]:
        """Reports a number outside the shape's min/max."""
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        report = self._constraint(shape)

        def check(value: float, path: str, out: list[Violation]) -> None:
            if lo is not None and value < lo:
                report(str(value), path, out, f"Member must have value greater than or equal to {lo}")
            if hi is not None and value > hi:
                report(str(value), path, out, f"Member must have value less than or equal to {hi}")

        return check

    def _float(self, shape: Shape) -> Validator:
        check_range = self._range(shape)

        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) not in (int, float):
                raise _type_error(value, path, "number")
            value = float(value)
            check_range(value, path, out)
            return value

        return validate

    _double = _float

    def _boolean(self, shape: Shape) -> Validator:
        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is not bool:
                raise _type_error(value, path, "boolean")
            return value

        return validate

    def _timestamp(self, shape: Shape) -> Validator:
        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            try:
                if type(value) in (int, float) and math.isfinite(value):
                    return dt.datetime.fromtimestamp(value, dt.UTC)
                if type(value) is str:
                    parsed = dt.datetime.fromisoformat(value)
                    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
            except (ValueError, OverflowError, OSError):
                pass
            raise _type_error(value, path, "timestamp (epoch seconds or ISO-8601)")

        return validate

    def _blob(self, shape: Shape) -> Validator:
        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is str:
                try:
                    return base64.b64decode(value, validate=True)
                except binascii.Error:
                    pass
            raise _type_error(value, path, "base64 string")

        return validate

    def _structure(self, shape: StructureShape) -> Validator:
        required = set(shape.required_members) | set(REQUIRED_OVERRIDES.get(shape.name, ()))
        members = [
            (name, self.compile(member), name in required,
             self._error_class(member))
            for name, member in shape.members.items()
        ]

        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is not dict:
                raise _type_error(value, path, "object")
            result: dict[str, Any] = {}
            for name, member_validator, is_required, cls in members:
                item = value.get(name)
                if item is None:
                    if is_required:
                        out.append((cls, f"Value null at '{_join(path, name)}' failed to "
                                         "satisfy constraint: Member must not be null"))
                    continue
                result[name] = member_validator(item, _join(path, name), out)
            return result

        return validate

    def _list(self, shape: ListShape) -> Validator:
        member_validator = self.compile(shape.member)
        checks = self._length_checks(shape)
        hi = shape.metadata.get("max")
        report = self._constraint(shape)

        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is not list:
                raise _type_error(value, path, "array")
            _run_checks(checks, report, value, path, out)
            if hi is not None and len(value) > hi:
                return value  # refused for its length: its members need no checking
            result = []
            for i, item in enumerate(value, 1):
                result.append(member_validator(item, f"{path}.{i}.member", out))
                if len(out) >= MAX_VIOLATIONS:
                    break
            return result

        return validate

    def _map(self, shape: MapShape) -> Validator:
        key_validator = self.compile(shape.key)
        value_validator = self.compile(shape.value)
        checks = self._length_checks(shape)
        report = self._constraint(shape)
        plain_strings = all(
            s.type_name == "string" and not getattr(s, "enum", None)
            and not s.metadata.get("pattern")
            and not s.metadata.get("min") and s.metadata.get("max") is None
            for s in (shape.key, shape.value))
        nul_allowed = {shape.key.name, shape.value.name} <= NUL_ALLOWED_SHAPES

        def validate(value: Any, path: str, out: list[Violation]) -> Any:
            if type(value) is not dict:
                raise _type_error(value, path, "object")
            _run_checks(checks, report, value, path, out)
            if plain_strings and _all_strings(value.values()) and (nul_allowed or not _holds_nul(value)):
                return value  # fast path (Predict's Record): JSON keys are always strings
            result: dict[str, Any] = {}
            for key, item in value.items():
                key_errors: list[Violation] = []
                key_validator(key, path, key_errors)
                for cls, text in key_errors:
                    detail = text.split("failed to satisfy constraint: ", 1)[1]
                    out.append((cls, f"Value '{_show(key)}' at '{path}' failed to satisfy "
                                     f"constraint: Map keys must satisfy constraint: [{detail}]"))
                if item is None:
                    raise _type_error(item, f"{path}.{key}", "value")
                result[key] = value_validator(item, f"{path}.{key}", out)
                if len(out) >= MAX_VIOLATIONS:
                    break
            return result

        return validate
