"""Every operation of the model, fed bodies derived from its input shape: valid-ish, mutated
(wrong types, huge values, deep nesting, NUL and surrogates, numbers out of range, missing,
null and extra members), broken JSON and non-object bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openaml.protocol.spec import ServiceSpec
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.shapes import World, bodies
from tests.fuzz.target import Target
from tests.fuzz.wire import TARGET_PREFIX, Request

SPEC = ServiceSpec.load()


def test_the_model_has_28_operations() -> None:
    assert len(SPEC.operation_names) == 28


@pytest.mark.parametrize("operation", SPEC.operation_names)
@fuzz_settings(1)
@given(data=st.data())
def test_operation_answers_cleanly(operation: str, server: Target, world: World, data: st.DataObject) -> None:
    body = data.draw(bodies(SPEC.operation(operation), world), label="body")
    server.post(Request(f"{TARGET_PREFIX}.{operation}", body))
