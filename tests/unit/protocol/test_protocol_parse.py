"""parse_request against requests built by botocore's own serializer, and every constraint kind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.validate import ParamValidator

from openaml.errors import (
    InvalidInputException,
    InvalidTagException,
    SerializationException,
    ServiceError,
)
from openaml.protocol.parse import UNENFORCED_PATTERNS, compiled_input, parse_request, pattern_matcher
from openaml.protocol.spec import ServiceSpec

OPERATIONS = ServiceSpec.load().operation_names


def parse(spec: ServiceSpec, operation: str, params: dict[str, Any] | bytes) -> dict[str, Any]:
    body = params if isinstance(params, bytes) else json.dumps(params).encode()
    return parse_request(spec.operation(operation), body)


def violation(spec: ServiceSpec, operation: str, params: dict[str, Any] | bytes,
              error: type[ServiceError] = InvalidInputException) -> str:
    with pytest.raises(ServiceError) as info:
        parse(spec, operation, params)
    assert type(info.value) is error, info.value
    return info.value.message


def test_catalog_covers_every_operation(catalog: dict[str, Any]) -> None:
    assert sorted(catalog) == sorted(OPERATIONS) and len(OPERATIONS) == 28


@pytest.mark.parametrize("operation", OPERATIONS)
def test_botocore_request_round_trips(spec: ServiceSpec, catalog: dict[str, Any],
                                      wire_request: Any, operation: str) -> None:
    params = catalog[operation]
    # the catalog is valid for botocore's own client-side validation
    assert not ParamValidator().validate(params, spec.operation(operation).input_shape).has_errors()
    request = wire_request(operation, params)
    assert request["headers"]["X-Amz-Target"] == f"AmazonML_20141212.{operation}"
    assert parse_request(spec.operation(operation), request["body"]) == params


@pytest.mark.parametrize("operation", OPERATIONS)
def test_members_absent_stay_absent(spec: ServiceSpec, wire_request: Any,
                                    operation: str) -> None:
    shape = spec.operation(operation).input_shape
    if shape.required_members:
        message = violation(spec, operation, wire_request(operation, {})["body"])
        for name in shape.required_members:
            assert f"Value null at '{name}' failed to satisfy constraint: Member must not be null" \
                in message
        assert message.startswith(f"{len(shape.required_members)} validation error")
    else:
        assert parse(spec, operation, wire_request(operation, {})["body"]) == {}


def test_unknown_members_are_ignored_and_null_is_absent(spec: ServiceSpec) -> None:
    got = parse(spec, "GetMLModel", {"MLModelId": "m", "Verbose": None, "Extra": {"x": [1]}})
    assert got == {"MLModelId": "m"}


def test_empty_body_counts_as_empty_object(spec: ServiceSpec) -> None:
    assert parse(spec, "DescribeMLModels", b"") == {}


def test_enum_message_in_aws_style(spec: ServiceSpec) -> None:
    message = violation(spec, "CreateMLModel",
                        {"MLModelId": "m", "MLModelType": "FOO", "TrainingDataSourceId": "d"})
    assert message == ("1 validation error detected: Value 'FOO' at 'MLModelType' failed to "
                       "satisfy constraint: Member must satisfy enum value set: "
                       "[REGRESSION, BINARY, MULTICLASS]")


def test_all_violations_are_collected(spec: ServiceSpec) -> None:
    message = violation(spec, "CreateMLModel", {
        "MLModelId": "x" * 65, "MLModelType": "BINARY", "TrainingDataSourceId": "bad id!",
        "MLModelName": " \t", "Recipe": "r" * 131072, "RecipeUri": "https://bucket/r.json"})
    assert message.startswith("5 validation errors detected: ")
    assert "at 'MLModelId' failed to satisfy constraint: Member must have length less than or " \
           "equal to 64" in message
    assert "Value 'bad id!' at 'TrainingDataSourceId' failed to satisfy constraint: Member must " \
           "satisfy regular expression pattern: [a-zA-Z0-9_.-]+" in message
    assert "Value ' \t' at 'MLModelName' failed" in message
    assert "at 'Recipe' failed to satisfy constraint: Member must have length less than or " \
           "equal to 131071" in message
    assert "Value 'https://bucket/r.json' at 'RecipeUri'" in message
    assert message.count("; ") == 4


@pytest.mark.parametrize("value,ok", [
    ("a", True), ("A.b_c-9", True), ("x" * 64, True), ("", False), ("x" * 65, False),
    ("a b", False), ("a/b", False), ("é", False), ("a\n", False)])
def test_entity_id(spec: ServiceSpec, value: str, ok: bool) -> None:
    if ok:
        assert parse(spec, "GetEvaluation", {"EvaluationId": value}) == {"EvaluationId": value}
    else:
        violation(spec, "GetEvaluation", {"EvaluationId": value})


@pytest.mark.parametrize("value,ok", [
    ("", True), ("name", True), ("  x  ", True), ("line\nbreak", True), ("\n\nx", True),
    (" ", False), ("\t\n ", False), ("x" * 1024, True), ("x" * 1025, False)])
def test_entity_name(spec: ServiceSpec, value: str, ok: bool) -> None:
    params = {"DataSourceId": "d", "DataSourceName": value}
    if ok:
        assert parse(spec, "UpdateDataSource", params) == params
    else:
        violation(spec, "UpdateDataSource", params)


@pytest.mark.parametrize("value,ok", [
    ("s3://b", True), ("s3://b/", True), ("s3://bucket/a/b c.csv", True), ("s3://", False),
    ("s3:///key", False), ("S3://b/k", False), ("http://b/k", False), ("xs3://b/k", False),
    ("s3://b/" + "k" * 2041, True), ("s3://b/" + "k" * 2042, False)])
def test_s3_url(spec: ServiceSpec, value: str, ok: bool) -> None:
    params = {"DataSourceId": "d", "DataSpec": {"DataLocationS3": value}}
    if ok:
        assert parse(spec, "CreateDataSourceFromS3", params) == params
    else:
        message = violation(spec, "CreateDataSourceFromS3", params)
        assert "at 'DataSpec.DataLocationS3'" in message


@pytest.mark.parametrize("limit,ok", [(1, True), (100, True), (0, False), (101, False),
                                      (-5, False)])
def test_page_limit_range(spec: ServiceSpec, limit: int, ok: bool) -> None:
    if ok:
        assert parse(spec, "DescribeDataSources", {"Limit": limit}) == {"Limit": limit}
    else:
        message = violation(spec, "DescribeDataSources", {"Limit": limit})
        bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
        assert f"Value '{limit}' at 'Limit' failed to satisfy constraint: Member must have " \
               f"value {bound}" in message


def test_list_length_and_nested_paths(spec: ServiceSpec) -> None:
    keys = [f"k{i}" for i in range(101)]
    message = violation(spec, "DeleteTags",
                        {"ResourceId": "r", "ResourceType": "MLModel", "TagKeys": keys})
    assert "at 'TagKeys' failed to satisfy constraint: Member must have length less than or " \
           "equal to 100" in message
    rds = {"DataSourceId": "d", "RoleARN": "", "RDSData": {
        "DatabaseInformation": {"InstanceIdentifier": "UPPER", "DatabaseName": "db"},
        "SelectSqlQuery": "q", "DatabaseCredentials": {"Username": "u", "Password": "short"},
        "S3StagingLocation": "s3://b/s", "ResourceRole": "r", "ServiceRole": "s",
        "SubnetId": "n", "SecurityGroupIds": ["sg", ""]}}
    message = violation(spec, "CreateDataSourceFromRDS", rds)
    assert message.startswith("4 validation errors")
    assert "Value 'UPPER' at 'RDSData.DatabaseInformation.InstanceIdentifier'" in message
    assert "at 'RDSData.SecurityGroupIds.2.member' failed to satisfy constraint: Member must " \
           "have length greater than or equal to 1" in message
    assert "at 'RoleARN'" in message
    # the password is sensitive: its value never appears in the message
    assert "Value at 'RDSData.DatabaseCredentials.Password' failed" in message
    assert "short" not in message


def test_predict_endpoint_is_not_restricted_to_amazon_hosts(spec: ServiceSpec) -> None:
    params = {"MLModelId": "m", "Record": {}, "PredictEndpoint": "http://localhost:8080/x"}
    assert parse(spec, "Predict", params) == params


@pytest.mark.parametrize("tags", [
    [{"Key": "bad!", "Value": "v"}],
    [{"Key": "k", "Value": "tab\there"}],
    [{"Key": "", "Value": "v"}],
    [{"Key": "k" * 129}],
    [{"Key": "k", "Value": "v" * 257}],
    [{"Value": "no key"}],
])
def test_tag_violations_are_invalid_tag(spec: ServiceSpec, tags: list[dict[str, str]]) -> None:
    params = {"ResourceId": "r", "ResourceType": "DataSource", "Tags": tags}
    assert "Tags.1.member" in violation(spec, "AddTags", params, InvalidTagException)


def test_tag_and_other_violations_together_are_invalid_input(spec: ServiceSpec) -> None:
    params = {"ResourceId": "r", "ResourceType": "Nope", "Tags": [{"Key": "bad!"}]}
    message = violation(spec, "AddTags", params, InvalidInputException)
    assert message.startswith("2 validation errors") and "Tags.1.member.Key" in message


def test_tag_text_accepts_unicode_letters_separators_and_numbers(spec: ServiceSpec) -> None:
    params = {"ResourceId": "r", "ResourceType": "MLModel",
              "Tags": [{"Key": "Größe 日本 ٣", "Value": "a\u00a0b\u2028c ½"}]}
    assert parse(spec, "AddTags", params) == params
    matches = pattern_matcher("TagKey", r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$")
    assert matches("") and matches("a_.:/=+-@ 1") and not matches("a#") and not matches("a\n")


def test_untranslated_java_pattern_fails_loudly() -> None:
    with pytest.raises(ValueError):
        pattern_matcher("X", r"\p{Lu}+")


@pytest.mark.parametrize("body", [b"{", b"not json", b"[1]", b'"s"', b"null", b"\xff\xfe",
                                  b'{"MLModelId": NaN}'])
def test_bad_json_is_serialization_error(spec: ServiceSpec, body: bytes) -> None:
    violation(spec, "GetMLModel", body, SerializationException)


@pytest.mark.parametrize("operation,params", [
    ("GetMLModel", {"MLModelId": 5}),
    ("GetMLModel", {"MLModelId": "m", "Verbose": "true"}),
    ("GetMLModel", {"MLModelId": "m", "Verbose": 1}),
    ("DescribeMLModels", {"Limit": "10"}),
    ("DescribeMLModels", {"Limit": 1.5}),
    ("DescribeMLModels", {"Limit": True}),
    ("DescribeMLModels", {"Limit": 2**31}),
    ("UpdateMLModel", {"MLModelId": "m", "ScoreThreshold": "0.5"}),
    ("CreateDataSourceFromS3", {"DataSourceId": "d", "DataSpec": "s3://b/k"}),
    ("AddTags", {"ResourceId": "r", "ResourceType": "MLModel", "Tags": {"Key": "k"}}),
    ("AddTags", {"ResourceId": "r", "ResourceType": "MLModel", "Tags": ["k"]}),
    ("Predict", {"MLModelId": "m", "Record": {"a": 1}, "PredictEndpoint": "http://h"}),
    ("Predict", {"MLModelId": "m", "Record": ["a"], "PredictEndpoint": "http://h"}),
    ("Predict", {"MLModelId": "m", "Record": {"a": None}, "PredictEndpoint": "http://h"}),
    ("CreateMLModel", {"MLModelId": "m", "MLModelType": "BINARY", "TrainingDataSourceId": "d",
                       "Parameters": {"sgd.maxPasses": 10}}),
])
def test_wrong_json_type_is_serialization_error(spec: ServiceSpec, operation: str,
                                                params: dict[str, Any]) -> None:
    violation(spec, operation, params, SerializationException)


def test_numbers_are_converted(spec: ServiceSpec) -> None:
    got = parse(spec, "UpdateMLModel", {"MLModelId": "m", "ScoreThreshold": 1})
    assert got["ScoreThreshold"] == 1.0 and type(got["ScoreThreshold"]) is float
    got = parse(spec, "DescribeMLModels", {"Limit": 7.0})
    assert got == {"Limit": 7} and type(got["Limit"]) is int


def test_predict_record_with_784_entries(spec: ServiceSpec, wire_request: Any) -> None:
    record = {f"pixel{i}": str(i % 256) for i in range(784)}
    params = {"MLModelId": "mnist", "Record": record, "PredictEndpoint": "http://127.0.0.1:1"}
    assert parse_request(spec.operation("Predict"),
                         wire_request("Predict", params)["body"]) == params


def _string_members(spec: ServiceSpec) -> list[tuple[str, list[str], str]]:
    """(operation, path of member names, shape name) of every string member of every input,
    one level of structures down (maps and lists of strings too: their member is the path)."""
    found = []
    for name in spec.operation("Predict").service_model.operation_names:
        shape = spec.operation(name).input_shape
        for member, child in (shape.members.items() if shape is not None else ()):
            inner = child.members.items() if child.type_name == "structure" else [(None, child)]
            for sub, leaf in inner:
                path = [member] + ([sub] if sub else [])
                target = leaf.member if leaf.type_name == "list" else leaf.value if leaf.type_name == "map" else leaf
                if target.type_name == "string" and not target.enum:
                    found.append((name, path, target.name))
    return found


def _with(path: list[str], shape_type: str, text: str) -> dict[str, Any]:
    value: Any = [text] if shape_type == "list" else {"k": text} if shape_type == "map" else text
    for name in reversed(path):
        value = {name: value}
    return value


def test_nul_is_refused_in_every_string_but_predicts_record(spec: ServiceSpec) -> None:
    """The store cannot keep U+0000 (PostgreSQL's text): every string member of every
    operation refuses it, said once (alone where nothing else is wrong with the value), but
    Predict's record, which is scored and never kept."""
    members = _string_members(spec)
    assert {"EntityName", "ComparatorValue", "DataRearrangement", "StringType", "RDSSelectSqlQuery",
            "S3Url", "Recipe", "DataSchema", "VariableValue"} <= {shape for _, _, shape in members}
    for operation, path, shape in members:
        op = spec.operation(operation)
        container = op.input_shape
        for name in path:
            container = container.members[name]
        valid = "s3://bucket/key" if shape == "S3Url" else "x"
        body = _with(path, container.type_name, valid + "\x00")
        violations: list[Any] = []
        compiled_input(op)(body, "", violations)
        about = [m for _, m in violations if f"at '{'.'.join(path)}" in m]
        pattern = op.service_model.shape_for(shape).metadata.get("pattern")
        if shape in ("VariableName", "VariableValue"):
            assert not about, (operation, path, about)
        elif pattern and shape not in UNENFORCED_PATTERNS and not pattern_matcher(shape, pattern)(valid + "\x00"):
            assert len(about) == 1 and "regular expression" in about[0], (operation, path, about)
        else:
            assert len(about) == 1 and "U+0000" in about[0], (operation, path, about)
    # a value wrong otherwise is told so, not as well about its U+0000
    message = violation(spec, "GetEvaluation", {"EvaluationId": "a\x00"})
    assert "regular expression" in message and "U+0000" not in message
