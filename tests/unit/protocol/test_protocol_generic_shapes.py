"""Shape kinds the machinelearning model does not use in inputs, on a tiny synthetic model."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.model import ServiceModel

from openaml.errors import InvalidInputException, SerializationException
from openaml.protocol.parse import parse_request
from openaml.protocol.serialize import serialize_response

MODEL = ServiceModel({
    "metadata": {"protocol": "json", "jsonVersion": "1.1", "targetPrefix": "T",
                 "apiVersion": "2020-01-01", "serviceId": "T", "endpointPrefix": "t"},
    "operations": {"Op": {"name": "Op", "http": {"method": "POST", "requestUri": "/"},
                          "input": {"shape": "In"}, "output": {"shape": "In"}}},
    "shapes": {
        "In": {"type": "structure", "members": {
            "Labels": {"shape": "Labels"}, "When": {"shape": "When"},
            "Data": {"shape": "Data"}, "Ratio": {"shape": "Ratio"}}},
        "Labels": {"type": "map", "key": {"shape": "Key"}, "value": {"shape": "Count"},
                   "max": 2},
        "Key": {"type": "string", "min": 2, "pattern": "[a-z]+"},
        "Count": {"type": "long", "min": 0},
        "When": {"type": "timestamp"},
        "Data": {"type": "blob"},
        "Ratio": {"type": "double", "min": 0, "max": 1},
    },
}, service_name="t")
OP = MODEL.operation_model("Op")


def parse(params: dict[str, Any]) -> dict[str, Any]:
    return parse_request(OP, json.dumps(params).encode())


def test_generic_values_convert_and_round_trip() -> None:
    got = parse({"Labels": {"ab": 3}, "When": 1422475435.595, "Data": "aGk=", "Ratio": 1})
    when = dt.datetime(2015, 1, 28, 20, 3, 55, 595000, tzinfo=dt.UTC)
    assert got == {"Labels": {"ab": 3}, "When": when, "Data": b"hi", "Ratio": 1.0}
    assert parse({"When": "2015-01-28T20:03:55.595Z"})["When"] == when
    assert json.loads(serialize_response(OP, got)) == \
        {"Labels": {"ab": 3}, "When": 1422475435.595, "Data": "aGk=", "Ratio": 1.0}


def test_map_key_value_and_size_violations() -> None:
    with pytest.raises(InvalidInputException) as info:
        parse({"Labels": {"a": 1, "XY": -1, "ok": 2}, "Ratio": 1.5})
    message = info.value.message
    assert message.startswith("5 validation errors")
    assert "Value 'a' at 'Labels' failed to satisfy constraint: Map keys must satisfy " \
           "constraint: [Member must have length greater than or equal to 2]" in message
    assert "Value 'XY' at 'Labels' failed to satisfy constraint: Map keys must satisfy " \
           "constraint: [Member must satisfy regular expression pattern: [a-z]+]" in message
    assert "Value '-1' at 'Labels.XY' failed to satisfy constraint: Member must have value " \
           "greater than or equal to 0" in message
    assert "at 'Labels' failed to satisfy constraint: Member must have length less than or " \
           "equal to 2" in message
    assert "Value '1.5' at 'Ratio'" in message


@pytest.mark.parametrize("params", [{"When": "yesterday"}, {"When": True}, {"Data": "!!"},
                                    {"Data": 5}, {"Ratio": "0.5"}, {"Labels": {"ab": "1"}}])
def test_generic_type_errors(params: dict[str, Any]) -> None:
    with pytest.raises(SerializationException):
        parse(params)
