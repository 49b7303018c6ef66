"""Describe*: filter values (time variables with numbers like 1e400), sort orders, limits, and
NextToken, both junk and real tokens whose decoded parts were changed."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from openaml.protocol.spec import ServiceSpec
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.shapes import NUMBERS, Raw, World, dumps, hostile, texts, tokens
from tests.fuzz.target import Target
from tests.fuzz.wire import TARGET_PREFIX, Request

SPEC = ServiceSpec.load()
DESCRIBES = [name for name in SPEC.operation_names if name.startswith("Describe") and name != "DescribeTags"]
COMPARATORS = ("EQ", "GT", "LT", "GE", "LE", "NE", "Prefix")
TIME_TEXTS = ("1e400", "-1e400", "1e19", "-1e19", str(10**30), "-" + str(10**30), "nan", "inf", "-inf",
              "1e-400", "0", "-1", "1700000000", "1.7e9", "9" * 400, "1e308", "2026-01-01T00:00:00Z",
              "2026-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0001-01-01",
              " 5 ", "1_000", "0x10", "١٢٣", "+5", "5.", ".5")


def _variables(operation: str) -> list[str]:
    shape = SPEC.operation(operation).input_shape.members["FilterVariable"]
    return list(shape.enum)


@st.composite
def describe_params(draw: st.DrawFn, operation: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["FilterVariable"] = draw(st.sampled_from(["CreatedAt", "LastUpdatedAt", *_variables(operation)]))
    for comparator in draw(st.lists(st.sampled_from(COMPARATORS), max_size=3, unique=True)):
        params[comparator] = draw(st.one_of(st.sampled_from(TIME_TEXTS), texts(),
                                            st.sampled_from(["fuzz", "COMPLETED", "DELETED", "s3://fuzz/"])))
    if draw(st.booleans()):
        params["SortOrder"] = draw(st.sampled_from(["asc", "dsc"]))
    if draw(st.booleans()):
        params["Limit"] = draw(st.one_of(st.integers(1, 100), st.sampled_from([0, 101, -1, 2**31, *NUMBERS])))
    return params


@fuzz_settings(4)
@given(data=st.data())
def test_filters(server: Target, world: World, data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(DESCRIBES), label="operation")
    params = data.draw(describe_params(operation), label="params")
    if data.draw(st.booleans(), label="with token"):
        params["NextToken"] = data.draw(tokens(), label="token")
    server.post(_request(operation, params))


def _request(operation: str, params: dict[str, Any]) -> Request:
    return Request(f"{TARGET_PREFIX}.{operation}", dumps(params))


@st.composite
def forged(draw: st.DrawFn, real: str) -> str:
    """A real token with its decoded JSON parts replaced (the list shape, or one part)."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(real))
    except ValueError:
        parts = [real]
    if not isinstance(parts, list) or not parts:
        parts = [parts]
    how = draw(st.sampled_from(["part", "part", "append", "drop", "whole"]))
    if how == "part":
        parts[draw(st.integers(0, len(parts) - 1))] = draw(st.one_of(hostile(), st.sampled_from(NUMBERS)))
    elif how == "append":
        parts.append(draw(hostile()))
    elif how == "drop":
        del parts[draw(st.integers(0, len(parts) - 1))]
    else:
        parts = draw(st.one_of(hostile(), st.just(Raw("[" * 600 + "]" * 600))))
    return base64.urlsafe_b64encode(dumps(parts)).decode()


@fuzz_settings(4)
@given(data=st.data())
def test_forged_tokens(server: Target, world: World, data: st.DataObject) -> None:
    """Take a real NextToken (Limit=1), change what it decodes to, and page with it."""
    operation = data.draw(st.sampled_from(DESCRIBES), label="operation")
    params: dict[str, Any] = {"Limit": 1}
    if data.draw(st.booleans(), label="filtered"):
        params["FilterVariable"] = data.draw(st.sampled_from(_variables(operation)), label="variable")
        params["SortOrder"] = data.draw(st.sampled_from(["asc", "dsc"]), label="order")
    first = server.post(_request(operation, params)).json()
    real = first.get("NextToken") if isinstance(first, dict) else None
    if not real:
        real = base64.urlsafe_b64encode(json.dumps(["x", 0, "fuzz-ds-1", "0" * 16]).encode()).decode()
    params["NextToken"] = data.draw(forged(real), label="token")
    server.post(_request(operation, params))
