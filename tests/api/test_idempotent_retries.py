"""A repeated Create* (api-behavior.md §1.2): the same parameters answer 200 with the same id
whatever became of what the first call referenced (entities deleted or FAILED, S3 documents
removed); other parameters are a mismatch; a new id is still validated in full."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from openaml.server.embedded import running_server
from tests.api.conftest import XCY_CSV, XCY_SCHEMA, error_code, wait_for

SCHEMA, CSV = XCY_SCHEMA, XCY_CSV
SQL_SCHEMA = SCHEMA.replace('"dataFileContainsHeader":true', '"dataFileContainsHeader":false')
RECIPE = '{"groups": {}, "assignments": {}, "outputs": ["ALL_INPUTS"]}'
ROLE = "arn:aws:iam::000000000000:role/ml"

Create = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    """A server whose Redshift cluster `warehouse` and RDS instance `orders-db` are SQLite files."""
    folder = tmp_path_factory.mktemp("retries")
    with sqlite3.connect(folder / "sales.db") as db:
        db.execute("CREATE TABLE obs (x REAL, c TEXT, y INTEGER)")
        db.executemany("INSERT INTO obs VALUES (?, ?, ?)", [(i, "ab"[i % 2], int(i % 3 == 0)) for i in range(60)])
    config = folder / "databases.toml"
    url = f"sqlite:///{folder}/{{database}}.db"
    config.write_text(f'[redshift.warehouse]\nurl = "{url}"\n\n[rds.orders-db]\nurl = "{url}"\n')
    with running_server(data_dir=folder / "data", workers=2, databases_file=config) as app:
        yield app


def assert_retries(create: Create, key: str, params: dict[str, Any], changes: list[dict[str, Any]]) -> None:
    """The same call answers the id; each change of members (None: left out) is a mismatch."""
    assert create(**params)[key] == params[key]
    for change in changes:
        with pytest.raises(ClientError) as err:
            create(**{k: v for k, v in {**params, **change}.items() if v is not None})
        assert error_code(err) == "IdempotentParameterMismatchException", change


def entities(ml: Any, uid: Callable[[str], str], datasource: str) -> list[tuple[Create, str, dict[str, Any],
                                                                             list[dict[str, Any]]]]:
    """A model, an evaluation and a batch prediction of `datasource` (created here), each with
    the changes of its parameters that a retry must refuse."""
    model, evaluation, batch = uid("ml"), uid("ev"), uid("bp")
    calls: list[tuple[Create, str, dict[str, Any], list[dict[str, Any]]]] = [
        (ml.create_ml_model, "MLModelId",
         {"MLModelId": model, "MLModelType": "BINARY", "TrainingDataSourceId": datasource},
         [{"MLModelName": "other"}, {"MLModelType": "REGRESSION"}, {"Parameters": {"sgd.maxPasses": "3"}},
          {"TrainingDataSourceId": "other-ds"}]),
        (ml.create_evaluation, "EvaluationId",
         {"EvaluationId": evaluation, "MLModelId": model, "EvaluationDataSourceId": datasource},
         [{"EvaluationName": "other"}, {"EvaluationDataSourceId": "other-ds"}]),
        (ml.create_batch_prediction, "BatchPredictionId",
         {"BatchPredictionId": batch, "MLModelId": model, "BatchPredictionDataSourceId": datasource,
          "OutputUri": "s3://retries/out/"},
         [{"OutputUri": "s3://retries/elsewhere/"}, {"MLModelId": "other-ml"}]),
    ]
    for create, _, params, _ in calls:
        create(**params)
    return calls


def test_a_retry_answers_the_same_after_its_references_were_deleted(
    ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]
) -> None:
    uri = put_object(f"s3://retries/{uid('d')}.csv", CSV)
    datasource = uid("ds")
    source_params: dict[str, Any] = {"DataSourceId": datasource, "ComputeStatistics": True,
                     "DataSpec": {"DataLocationS3": uri, "DataSchema": SCHEMA}}
    ml.create_data_source_from_s3(**source_params)
    calls = entities(ml, uid, datasource)
    model, evaluation, batch = (params[key] for _, key, params, _ in calls)
    assert wait_for(lambda: ml.get_ml_model(MLModelId=model))["Status"] == "COMPLETED"
    assert wait_for(lambda: ml.get_evaluation(EvaluationId=evaluation))["Status"] == "COMPLETED"
    assert wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=batch))["Status"] == "COMPLETED"
    ml.delete_data_source(DataSourceId=datasource)
    ml.delete_ml_model(MLModelId=model)
    for create, key, params, changes in calls:
        assert_retries(create, key, params, changes)
    assert_retries(ml.create_data_source_from_s3, "DataSourceId", source_params,
                   [{"DataSourceName": "other"}, {"ComputeStatistics": False}])
    # a new id is still refused what it references
    with pytest.raises(ClientError) as err:
        ml.create_ml_model(MLModelId=uid("ml"), MLModelType="BINARY", TrainingDataSourceId=datasource)
    assert error_code(err) == "InvalidInputException"
    with pytest.raises(ClientError) as err:
        ml.create_evaluation(EvaluationId=uid("ev"), MLModelId=model, EvaluationDataSourceId=datasource)
    assert error_code(err) == "InvalidInputException"


def test_a_retry_answers_the_same_after_its_references_failed(
    ml: Any, server: Application, uid: Callable[[str], str]
) -> None:
    """The usual timeout retry: everything was created while the datasource was PENDING; it
    failed, and its dependents with it."""
    datasource = uid("ds")
    source_params: dict[str, Any] = {"DataSourceId": datasource, "ComputeStatistics": True,
                     "DataSpec": {"DataLocationS3": "s3://retries/absent.csv", "DataSchema": SCHEMA}}
    server.context.engine.pause()
    try:
        ml.create_data_source_from_s3(**source_params)
        calls = entities(ml, uid, datasource)
    finally:
        server.context.engine.resume()
    assert wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=calls[2][2]["BatchPredictionId"])
                    )["Status"] == "FAILED"
    assert wait_for(lambda: ml.get_ml_model(MLModelId=calls[0][2]["MLModelId"]))["Status"] == "FAILED"
    for create, key, params, changes in calls:
        assert_retries(create, key, params, changes)
    assert_retries(ml.create_data_source_from_s3, "DataSourceId", source_params,
                   [{"DataSpec": {**source_params["DataSpec"], "DataLocationS3": "s3://retries/other.csv"}}])
    with pytest.raises(ClientError) as err:  # a new id: the failed datasource cannot be used
        ml.create_ml_model(MLModelId=uid("ml"), MLModelType="BINARY", TrainingDataSourceId=datasource)
    assert error_code(err) == "InvalidInputException"


def test_a_retry_answers_the_same_after_its_documents_were_removed(
    ml: Any, server: Application, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]
) -> None:
    """What is compared is the request as given, the documents' URIs, not what they held."""
    folder = f"s3://retries/{uid('docs')}"
    uri = put_object(f"{folder}/data.csv", CSV)
    schema_uri = put_object(f"{folder}/data.csv.schema", SCHEMA.encode())
    recipe_uri = put_object(f"{folder}/recipe.json", RECIPE.encode())
    datasource, model = uid("ds"), uid("ml")
    source_params: dict[str, Any] = {"DataSourceId": datasource, "ComputeStatistics": True,
                     "DataSpec": {"DataLocationS3": uri, "DataSchemaLocationS3": schema_uri}}
    model_params = {"MLModelId": model, "MLModelType": "BINARY", "TrainingDataSourceId": datasource,
                    "RecipeUri": recipe_uri}
    ml.create_data_source_from_s3(**source_params)
    ml.create_ml_model(**model_params)
    assert wait_for(lambda: ml.get_ml_model(MLModelId=model))["Status"] == "COMPLETED"
    server.context.objects.delete(schema_uri)
    server.context.objects.delete(recipe_uri)
    assert_retries(ml.create_data_source_from_s3, "DataSourceId", source_params, [
        {"DataSpec": {"DataLocationS3": uri, "DataSchema": SCHEMA}},  # the same schema, given inline
        {"DataSpec": {**source_params["DataSpec"], "DataSchemaLocationS3": f"{folder}/other.schema"}}])
    assert_retries(ml.create_ml_model, "MLModelId", model_params,
                   [{"Recipe": RECIPE, "RecipeUri": None}, {"RecipeUri": f"{folder}/other.json"}])
    # a new id reads its documents, which are gone
    for create, fresh, member in (
        (ml.create_data_source_from_s3, {**source_params, "DataSourceId": uid("ds")}, "DataSchemaLocationS3"),
        (ml.create_ml_model, {**model_params, "MLModelId": uid("ml")}, "RecipeUri"),
    ):
        with pytest.raises(ClientError) as err:
            create(**fresh)
        assert error_code(err) == "InvalidInputException"
        assert member in err.value.response["Error"]["Message"]
    # another document at the same URI: the request, which names the URI, is the same
    put_object(schema_uri, SCHEMA.replace('"c","attributeType":"CATEGORICAL"', '"c","attributeType":"TEXT"')
               .encode())
    assert_retries(ml.create_data_source_from_s3, "DataSourceId", source_params, [])


@pytest.mark.parametrize("source", ["redshift", "rds"])
def test_a_database_retry_answers_the_same_after_its_schema_was_removed(
    ml: Any, server: Application, uid: Callable[[str], str], put_object: Callable[[str, bytes], str],
    source: str,
) -> None:
    """The password is compared as the stored request keeps it (a digest)."""
    schema_uri = put_object(f"s3://retries/{uid('sql')}.schema", SQL_SCHEMA.encode())
    datasource = uid("ds")
    given: dict[str, Any] = {
        "SelectSqlQuery": "SELECT x, c, y FROM obs",
        "DatabaseCredentials": {"Username": "reader", "Password": "secret-1"},
        "S3StagingLocation": "s3://retries/staging/", "DataSchemaUri": schema_uri}
    if source == "redshift":
        create: Create = ml.create_data_source_from_redshift
        member = "DataSpec"
        given["DatabaseInformation"] = {"DatabaseName": "sales", "ClusterIdentifier": "warehouse"}
    else:
        create = ml.create_data_source_from_rds
        member = "RDSData"
        given.update(DatabaseInformation={"InstanceIdentifier": "orders-db", "DatabaseName": "sales"},
                     ResourceRole="DataPipelineDefaultResourceRole", ServiceRole="DataPipelineDefaultRole",
                     SubnetId="subnet-1", SecurityGroupIds=["sg-1"])
    params = {"DataSourceId": datasource, "RoleARN": ROLE, "ComputeStatistics": True, member: given}
    create(**params)
    done = wait_for(lambda: ml.get_data_source(DataSourceId=datasource))
    assert done["Status"] == "COMPLETED", done.get("Message")
    server.context.objects.delete(schema_uri)
    assert_retries(create, "DataSourceId", params, [
        {member: {**given, "DatabaseCredentials": {"Username": "reader", "Password": "secret-2"}}},
        {member: {**given, "SelectSqlQuery": "SELECT x, c, y FROM obs WHERE x > 1"}},
        {"RoleARN": ROLE + "2"}])
    with pytest.raises(ClientError) as err:  # a new id reads its schema, which is gone
        create(**{**params, "DataSourceId": uid("ds")})
    assert error_code(err) == "InvalidInputException"
    assert "DataSchemaUri" in err.value.response["Error"]["Message"]


def test_an_empty_name_and_no_name_are_the_same_request(
    ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]
) -> None:
    """An empty name is stored as no name (Get* omits it): a retry that leaves the name out of
    a Create that gave "" (or the reverse) is the same request, of every kind; another name
    is not."""
    uri = put_object(f"s3://retries/{uid('d')}.csv", CSV)
    datasource, model, evaluation, batch = uid("ds"), uid("ml"), uid("ev"), uid("bp")
    calls = [
        (ml.create_data_source_from_s3, "DataSourceName", {"DataSourceId": datasource, "ComputeStatistics": True,
                                                           "DataSpec": {"DataLocationS3": uri, "DataSchema": SCHEMA}}),
        (ml.create_ml_model, "MLModelName", {"MLModelId": model, "MLModelType": "BINARY",
                                             "TrainingDataSourceId": datasource}),
        (ml.create_evaluation, "EvaluationName", {"EvaluationId": evaluation, "MLModelId": model,
                                                  "EvaluationDataSourceId": datasource}),
        (ml.create_batch_prediction, "BatchPredictionName", {"BatchPredictionId": batch, "MLModelId": model,
                                                             "BatchPredictionDataSourceId": datasource,
                                                             "OutputUri": "s3://retries/names/"}),
    ]
    for k, (create, name, params) in enumerate(calls):
        first, retry = ({name: ""}, {}) if k % 2 == 0 else ({}, {name: ""})
        create(**params, **first)
        create(**params, **retry)
        with pytest.raises(ClientError) as err:
            create(**params, **{name: "other"})
        assert error_code(err) == "IdempotentParameterMismatchException"
