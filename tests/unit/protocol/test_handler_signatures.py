"""Each operation's handler takes the request's context, then declares exactly its input members
(botocore's service model): the same names, required members without a default, optional ones
with one, and a type that fits the member's shape."""

import inspect
import typing
from types import NoneType, UnionType
from typing import Any

import pytest

from openaml.protocol.spec import ServiceSpec
from openaml.service import MachineLearningService
from openaml.service.context import RequestContext

SPEC = ServiceSpec.load()
# botocore shape type -> the Python type a handler takes it as
PYTHON_TYPES = {"string": str, "boolean": bool, "integer": int, "long": int, "float": float,
                "double": float, "map": dict, "structure": dict, "list": list}


def _handler(operation: str) -> Any:
    return getattr(MachineLearningService, SPEC.snake_name(operation))


def _plain(annotation: Any) -> set[Any]:
    """The runtime classes an annotation allows (None apart)."""
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        return set().union(*(_plain(a) for a in typing.get_args(annotation))) - {NoneType}
    origin = typing.get_origin(annotation)
    return {origin if origin is not None else annotation}


@pytest.mark.parametrize("operation", SPEC.operation_names)
def test_the_handler_declares_the_operations_members(operation: str) -> None:
    shape = SPEC.operation(operation).input_shape
    members = dict(shape.members) if shape is not None else {}
    required = set(shape.required_members) if shape is not None else set()
    handler = _handler(operation)
    hints = typing.get_type_hints(handler)
    self, context, *parameters = inspect.signature(handler).parameters.values()
    assert context.name == "context" and hints["context"] is RequestContext   # who calls
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters), "no **params"
    assert {p.name for p in parameters} == set(members)
    for p in parameters:
        assert (p.default is inspect.Parameter.empty) == (p.name in required), p.name
        expected = PYTHON_TYPES[members[p.name].type_name]
        assert _plain(hints[p.name]) == {expected}, (p.name, hints[p.name])
        if p.name not in required:
            assert p.default is None or isinstance(p.default, expected), p.name


def test_the_check_sees_a_wrong_handler() -> None:
    """A handler with an extra, a missing or a mistyped member fails the check above."""
    def wrong(self: Any, EvaluationId: int, Extra: str | None = None) -> dict[str, Any]:
        return {}

    shape = SPEC.operation("GetEvaluation").input_shape
    hints = typing.get_type_hints(wrong)
    names = {p for p in inspect.signature(wrong).parameters if p != "self"}
    assert names != set(shape.members)
    assert _plain(hints["EvaluationId"]) != {PYTHON_TYPES[shape.members["EvaluationId"].type_name]}
