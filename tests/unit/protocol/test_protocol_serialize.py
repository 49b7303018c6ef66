"""serialize_response / serialize_error read back with botocore's own JSON response parser."""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
from typing import Any

import pytest
from botocore.model import Shape
from botocore.parsers import create_parser

from openaml import errors
from openaml.protocol.serialize import (
    epoch_seconds,
    internal_error,
    serialize_error,
    serialize_response,
)
from openaml.protocol.spec import ServiceSpec

OPERATIONS = ServiceSpec.load().operation_names
UTC = dt.UTC
WHEN = dt.datetime(2015, 1, 28, 20, 3, 55, 595000, tzinfo=UTC)


def read_back(spec: ServiceSpec, operation: str, body: bytes, status: int = 200,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    """What a boto3 caller gets for this response."""
    response = {"body": body, "headers": headers or {}, "status_code": status}
    parsed: dict[str, Any] = create_parser("json").parse(
        response, spec.operation(operation).output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def example(shape: Shape, depth: int = 0) -> Any:
    """A value for every member of a shape, as a service dict would hold it."""
    kind = shape.type_name
    if kind == "structure":
        return {name: example(member, depth + 1) for name, member in shape.members.items()}
    if kind == "list":
        return [example(shape.member, depth + 1), example(shape.member, depth + 1)]
    if kind == "map":
        return {example(shape.key, depth + 1): example(shape.value, depth + 1)}
    if kind == "string":
        return shape.enum[0] if shape.enum else f"v-{shape.name}"
    return {"integer": 7,
            "long": 2**40 + 3, "float": 0.25, "boolean": True, "timestamp": WHEN}[kind]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_output_member_reads_back(spec: ServiceSpec, operation: str) -> None:
    shape = spec.operation(operation).output_shape
    result = example(shape)
    assert read_back(spec, operation, serialize_response(spec.operation(operation), result)) \
        == result


def test_get_ml_model_encoding(spec: ServiceSpec) -> None:
    result = {
        "MLModelId": "ml-1", "Status": "COMPLETED", "CreatedAt": WHEN,
        "LastUpdatedAt": dt.datetime(2015, 1, 28, 20, 3, 56),  # naive = UTC
        "SizeInBytes": 12345678901, "ScoreThreshold": 0.5, "Name": None, "Message": None,
        "TrainingParameters": {"sgd.maxPasses": "10"},
        "EndpointInfo": {"PeakRequestsPerSecond": 200, "EndpointStatus": "READY",
                         "EndpointUrl": "http://127.0.0.1:8080", "CreatedAt": WHEN},
        "InternalOnly": object(),  # extras the service keeps are dropped
    }
    body = serialize_response(spec.operation("GetMLModel"), result)
    raw = json.loads(body)
    assert raw["CreatedAt"] == 1422475435.595 and raw["LastUpdatedAt"] == 1422475436.0
    assert raw["SizeInBytes"] == 12345678901 and isinstance(raw["SizeInBytes"], int)
    assert "Name" not in raw and "Message" not in raw and "InternalOnly" not in raw
    assert b"null" not in body
    parsed = read_back(spec, "GetMLModel", body)
    assert parsed["CreatedAt"] == WHEN
    assert parsed["EndpointInfo"]["CreatedAt"] == WHEN
    assert parsed["LastUpdatedAt"] == dt.datetime(2015, 1, 28, 20, 3, 56, tzinfo=UTC)
    assert parsed["EndpointInfo"]["PeakRequestsPerSecond"] == 200


def test_predict_output(spec: ServiceSpec) -> None:
    result = {"Prediction": {"predictedLabel": "7", "predictedScores": {"7": 0.9, "1": 0.1},
                             "details": {"PredictiveModelType": "MULTICLASS", "Algorithm": "SGD"}}}
    assert read_back(spec, "Predict", serialize_response(spec.operation("Predict"), result)) \
        == result
    nan = {"Prediction": {"predictedValue": float("nan"), "predictedScores": {"a": float("inf")}}}
    assert json.loads(serialize_response(spec.operation("Predict"), nan)) == \
        {"Prediction": {"predictedScores": {}}}


def test_enums_lists_and_truncation(spec: ServiceSpec) -> None:
    class Status(enum.StrEnum):
        COMPLETED = "COMPLETED"

    result = {"Results": [{"DataSourceId": "d", "Status": Status.COMPLETED, "Message": "m" * 20000},
                          None], "NextToken": None}
    raw = json.loads(serialize_response(spec.operation("DescribeDataSources"), result))
    assert raw == {"Results": [{"DataSourceId": "d", "Status": "COMPLETED",
                                "Message": "m" * 10240}]}


def test_empty_and_missing_results(spec: ServiceSpec) -> None:
    assert serialize_response(spec.operation("DescribeTags"), {"Tags": []}) == b'{"Tags":[]}'
    assert serialize_response(spec.operation("DeleteMLModel"), None) == b"{}"


def test_epoch_seconds_rounds_to_milliseconds() -> None:
    assert epoch_seconds(dt.datetime(1970, 1, 1, 0, 0, 1, 999600, tzinfo=UTC)) == 2.0
    tz = dt.timezone(dt.timedelta(hours=2))
    assert epoch_seconds(dt.datetime(1970, 1, 1, 2, 0, 0, 123000, tzinfo=tz)) == 0.123


@pytest.mark.parametrize("error", [*errors.MODELED_ERRORS, errors.UnknownOperationException,
                                   errors.SerializationException,
                                   errors.UnsupportedMediaTypeException,
                                   errors.RequestEntityTooLargeException,
                                   errors.MissingAuthenticationTokenException,
                                   errors.UnrecognizedClientException,
                                   errors.InvalidSignatureException,
                                   errors.IncompleteSignatureException])
def test_error_bodies_give_botocore_the_code(spec: ServiceSpec,
                                             error: type[errors.ServiceError]) -> None:
    status, headers, body = serialize_error(error("it went wrong ü"), "req-1")
    assert status == error.http_status
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"] == "req-1"
    assert json.loads(body) == {"__type": error.error_type, "message": "it went wrong ü"}
    parsed = create_parser("json").parse(
        {"body": body, "headers": {k.lower(): v for k, v in headers.items()},
         "status_code": status},
        spec.operation("GetMLModel").output_shape)
    assert parsed["Error"] == {"Code": error.error_type, "Message": "it went wrong ü"}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_statuses_match_the_spec() -> None:
    expected = {"InvalidInputException": 400, "ResourceNotFoundException": 404,
                "IdempotentParameterMismatchException": 400, "LimitExceededException": 417,
                "PredictorNotMountedException": 400, "InvalidTagException": 400,
                "TagLimitExceededException": 400, "InternalServerException": 500}
    assert {e.error_type: e.http_status for e in errors.MODELED_ERRORS} == expected


def test_modeled_errors_match_the_model(spec: ServiceSpec) -> None:
    names = {s.name for op in OPERATIONS for s in spec.operation(op).error_shapes}
    assert names == {e.error_type for e in errors.MODELED_ERRORS}


def test_long_error_message_is_truncated() -> None:
    _, _, body = serialize_error(errors.InvalidInputException("x" * 5000))
    assert len(json.loads(body)["message"]) == 2048


def test_internal_error_hides_details_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise KeyError("secret internals")
    except KeyError as exc:
        with caplog.at_level(logging.ERROR, logger="openaml.protocol.serialize"):
            error = internal_error(exc, "req-42")
    status, _, body = serialize_error(error, "req-42")
    assert status == 500 and json.loads(body)["__type"] == "InternalServerException"
    assert "secret" not in body.decode() and "Traceback" not in body.decode()
    assert "req-42" in caplog.text and "secret internals" in caplog.text


def test_a_stored_string_that_is_no_text_is_answered_not_a_500(spec: ServiceSpec) -> None:
    """A lone surrogate (which records made before such input was refused may hold) made
    orjson raise, so GetDataSource Verbose answered 500 for that datasource for good."""
    body = serialize_response(spec.operation("GetDataSource"), {
        "DataSourceId": "ds-1", "DataSourceSchema": '{"attributes": [{"attributeName": "\udc00x"}]}',
        "Name": "ok \ud800"})
    parsed = read_back(spec, "GetDataSource", body)
    assert parsed["Name"] == "ok \ufffd" and "\ufffdx" in parsed["DataSourceSchema"]
