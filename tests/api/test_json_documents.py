"""The JSON documents a request carries as strings (DataSchema inline or in S3,
DataRearrangement, Recipe inline or by RecipeUri, openaml.classWeights) are read whole and
faithfully, or refused with InvalidInputException: a number of more than 4,300 digits answered
500 (Python's int conversion limit), a lone surrogate escape was accepted and failed the job
with an internal error (then GetDataSource Verbose answered 500), a key given twice lost one
of its values silently, and a \\u0000 escape put U+0000, which every request string refuses, into
attribute names, seeds and recipe names."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from tests.api.conftest import XCY_CSV, error_code, wait_for

SCHEMA = {"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "dataFileContainsHeader": True,
          "attributes": [{"attributeName": "x", "attributeType": "NUMERIC"},
                         {"attributeName": "c", "attributeType": "CATEGORICAL"},
                         {"attributeName": "y", "attributeType": "BINARY"}]}
SCHEMA_TEXT = json.dumps(SCHEMA)
BIG = "1" + "0" * 5000
# each bad document, as the text of one kind of document: (description, text, words of the refusal)
BAD = {
    "schema": [
        ("long number", SCHEMA_TEXT[:-1] + f', "extra": {BIG}}}', "number too long"),
        ("lone surrogate", SCHEMA_TEXT.replace('"c"', '"\\udc00c"'), "half a UTF-16 pair"),
        ("U+0000 in a name", SCHEMA_TEXT.replace('"c"', '"c\\u0000"'), "U+0000"),
        ("key twice", SCHEMA_TEXT[:-1] + ', "targetAttributeName": "x"}', 'names "targetAttributeName" twice'),
    ],
    "rearrangement": [
        ("long number", f'{{"splitting": {{"percentBegin": {BIG}}}}}', "number too long"),
        ("lone surrogate", '{"splitting": {"percentEnd": 50, "strategy": "random", '
                           '"strategyParams": {"randomSeed": "\\ud800"}}}', "half a UTF-16 pair"),
        ("U+0000 in a seed", '{"splitting": {"percentEnd": 50, "strategy": "random", '
                             '"strategyParams": {"randomSeed": "a\\u0000"}}}', "U+0000"),
        ("key twice", '{"splitting": {"percentEnd": 50, "percentEnd": 70}}', 'names "percentEnd" twice'),
    ],
    "recipe": [
        ("long number", f'{{"outputs": ["x"], "extra": {BIG}}}', "number too long"),
        ("lone surrogate", '{"outputs": ["x", "\\udc00"]}', "half a UTF-16 pair"),
        ("U+0000 in a group", '{"groups": {"g\\u0000": "x"}, "outputs": ["x"]}', "U+0000"),
        ("key twice", '{"outputs": ["x"], "outputs": ["c"]}', 'names "outputs" twice'),
    ],
}


@pytest.fixture(scope="module")
def datasource(server: Application, ml: Any) -> str:
    server.context.objects.write_bytes("s3://documents/xcy.csv", XCY_CSV)
    ml.create_data_source_from_s3(DataSourceId="ds-documents", ComputeStatistics=True, DataSpec={
        "DataLocationS3": "s3://documents/xcy.csv", "DataSchema": SCHEMA_TEXT})
    assert wait_for(lambda: ml.get_data_source(DataSourceId="ds-documents"))["Status"] == "COMPLETED"
    return "ds-documents"


def refused(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as err:
        call()
    assert error_code(err) == "InvalidInputException", err.value.response
    return str(err.value.response["Error"]["Message"])


@pytest.mark.parametrize("case", BAD["schema"], ids=lambda c: c[0])
@pytest.mark.parametrize("where", ["inline", "in S3"])
def test_a_schema_is_read_faithfully_or_refused(ml: Any, put_object: Callable[[str, bytes], str],
                                                uid: Callable[[str], str], case: tuple, where: str) -> None:
    _, text, words = case
    given = ({"DataSchema": text} if where == "inline"
             else {"DataSchemaLocationS3": put_object(f"s3://documents/{uid('schema')}.json", text.encode())})
    ds_id = uid("ds-bad-schema")
    assert words in refused(lambda: ml.create_data_source_from_s3(
        DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://documents/xcy.csv", **given}))
    with pytest.raises(ClientError):  # nothing was made
        ml.get_data_source(DataSourceId=ds_id)


@pytest.mark.parametrize("case", BAD["rearrangement"], ids=lambda c: c[0])
def test_a_rearrangement_is_read_faithfully_or_refused(ml: Any, uid: Callable[[str], str], case: tuple) -> None:
    _, text, words = case
    assert words in refused(lambda: ml.create_data_source_from_s3(DataSourceId=uid("ds-bad-split"), DataSpec={
        "DataLocationS3": "s3://documents/xcy.csv", "DataSchema": SCHEMA_TEXT, "DataRearrangement": text}))


@pytest.mark.parametrize("case", BAD["recipe"], ids=lambda c: c[0])
@pytest.mark.parametrize("where", ["inline", "by RecipeUri"])
def test_a_recipe_is_read_faithfully_or_refused(ml: Any, put_object: Callable[[str, bytes], str],
                                                uid: Callable[[str], str], datasource: str, case: tuple,
                                                where: str) -> None:
    _, text, words = case
    given = ({"Recipe": text} if where == "inline"
             else {"RecipeUri": put_object(f"s3://documents/{uid('recipe')}.json", text.encode())})
    assert words in refused(lambda: ml.create_ml_model(
        MLModelId=uid("ml-bad-recipe"), MLModelType="BINARY", TrainingDataSourceId=datasource, **given))


@pytest.mark.parametrize("weights, words", [
    (f'{{"1": {BIG}}}', "number too long"), ('{"\\ud800": 2}', "half a UTF-16 pair"), ('{"1\\u0000": 2}', "U+0000"),
    ('{"1": 2, "1": 3}', 'names "1" twice'), ("[" * 5000, "too deeply"), ("[1, 2]", "must be 'balanced' or"),
])
def test_class_weights_are_read_faithfully_or_refused(ml: Any, uid: Callable[[str], str], datasource: str,
                                                      weights: str, words: str) -> None:
    message = refused(lambda: ml.create_ml_model(
        MLModelId=uid("ml-bad-weights"), MLModelType="BINARY", TrainingDataSourceId=datasource,
        Parameters={"openaml.classWeights": weights}))
    assert message.startswith("openaml.classWeights") and words in message and len(message) < 400
