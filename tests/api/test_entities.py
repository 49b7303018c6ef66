"""Entity semantics shared by every family: create, idempotency, get, update, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import error_code, wait_for

SCHEMA = (
    '{"version":"1.0","targetAttributeName":"y","dataFormat":"CSV",'
    '"dataFileContainsHeader":true,"attributes":['
    '{"attributeName":"x","attributeType":"NUMERIC"},'
    '{"attributeName":"c","attributeType":"CATEGORICAL"},'
    '{"attributeName":"y","attributeType":"BINARY"}]}'
)
CSV = b"x,c,y\n" + b"".join(
    f"{i},{'ab'[i % 2]},{int(i % 3 == 0)}\n".encode() for i in range(60)
)


@pytest.fixture
def data_uri(put_object: Callable[[str, bytes], str], uid: Callable[[str], str]) -> str:
    return put_object(f"s3://entities/{uid('d')}/data.csv", CSV)


def create_ds(ml: Any, ds_id: str, uri: str, **extra: Any) -> None:
    spec = {"DataLocationS3": uri, "DataSchema": SCHEMA, **extra.pop("spec", {})}
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec=spec, **extra)


def test_create_get_and_complete(ml: Any, data_uri: str, uid: Callable[[str], str]) -> None:
    ds_id = uid("ds")
    create_ds(ml, ds_id, data_uri, DataSourceName="first", ComputeStatistics=True)
    first = ml.get_data_source(DataSourceId=ds_id)
    assert first["Status"] in ("PENDING", "INPROGRESS", "COMPLETED")
    assert first["CreatedByIamUser"] == "arn:aws:iam::000000000000:root"
    assert first["ComputeStatistics"] is True
    assert first["Name"] == "first"
    done = wait_for(lambda: ml.get_data_source(DataSourceId=ds_id, Verbose=True))
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert done["DataLocationS3"] == data_uri
    assert done["NumberOfFiles"] == 1
    assert done["DataSizeInBytes"] == len(CSV)
    assert done["StartedAt"] <= done["FinishedAt"]
    assert done["ComputeTime"] >= 1
    assert done["LogUri"].endswith(f"/logs/DataSource/{ds_id}")
    assert '"targetAttributeName":"y"' in done["DataSourceSchema"]
    assert "DataSourceSchema" not in ml.get_data_source(DataSourceId=ds_id)


def test_idempotent_create(ml: Any, data_uri: str, uid: Callable[[str], str]) -> None:
    ds_id = uid("ds")
    create_ds(ml, ds_id, data_uri)
    create_ds(ml, ds_id, data_uri, ComputeStatistics=False)  # same after defaults
    with pytest.raises(ClientError) as err:
        create_ds(ml, ds_id, data_uri, ComputeStatistics=True)
    assert error_code(err) == "IdempotentParameterMismatchException"


def test_update_and_delete(ml: Any, data_uri: str, uid: Callable[[str], str]) -> None:
    ds_id = uid("ds")
    create_ds(ml, ds_id, data_uri)
    before = ml.get_data_source(DataSourceId=ds_id)
    assert ml.update_data_source(DataSourceId=ds_id, DataSourceName="renamed")["DataSourceId"] == ds_id
    after = ml.get_data_source(DataSourceId=ds_id)
    assert after["Name"] == "renamed"
    assert after["LastUpdatedAt"] >= before["LastUpdatedAt"]
    assert ml.delete_data_source(DataSourceId=ds_id)["DataSourceId"] == ds_id
    assert ml.get_data_source(DataSourceId=ds_id)["Status"] == "DELETED"
    ml.delete_data_source(DataSourceId=ds_id)  # deleting again answers the same
    with pytest.raises(ClientError) as err:
        ml.update_data_source(DataSourceId=ds_id, DataSourceName="again")
    assert error_code(err) == "InvalidInputException"
    listed = ml.describe_data_sources(FilterVariable="DataLocationS3", EQ=data_uri)["Results"]
    assert ds_id not in [r["DataSourceId"] for r in listed]
    deleted = ml.describe_data_sources(FilterVariable="Status", EQ="DELETED")["Results"]
    assert ds_id in [r["DataSourceId"] for r in deleted]
    with pytest.raises(ClientError) as err:
        ml.create_ml_model(MLModelId=uid("m"), MLModelType="BINARY", TrainingDataSourceId=ds_id)
    assert error_code(err) == "InvalidInputException"


@pytest.mark.parametrize("call", [
    lambda ml: ml.update_ml_model(MLModelId="nope", MLModelName="x"),
    lambda ml: ml.delete_evaluation(EvaluationId="nope"),
    lambda ml: ml.update_batch_prediction(BatchPredictionId="nope", BatchPredictionName="x"),
    lambda ml: ml.delete_data_source(DataSourceId="nope"),
    lambda ml: ml.create_realtime_endpoint(MLModelId="nope"),
    lambda ml: ml.delete_realtime_endpoint(MLModelId="nope"),
    lambda ml: ml.describe_tags(ResourceId="nope", ResourceType="MLModel"),
    lambda ml: ml.get_evaluation(EvaluationId="nope"),
])
def test_unknown_ids_are_not_found(ml: Any, call: Callable[[Any], Any]) -> None:
    with pytest.raises(ClientError) as err:
        call(ml)
    assert error_code(err) == "ResourceNotFoundException"


@pytest.mark.parametrize(("spec", "fragment"), [
    ({"DataSchema": "{not json"}, "JSON"),
    ({"DataSchema": SCHEMA.replace('"BINARY"', '"WEIRD"')}, "WEIRD"),
    ({"DataSchema": SCHEMA.replace('"targetAttributeName":"y"', '"targetAttributeName":"z"')}, "z"),
    ({"DataSchema": SCHEMA.replace('"c"', '"x"')}, "more than once"),
    ({"DataRearrangement": '{"splitting":{"percentBegin":80,"percentEnd":20}}'}, "percent"),
    ({"DataRearrangement": '{"splitting":{"strategy":"shuffle"}}'}, "strategy"),
    ({"DataSchema": None, "DataSchemaLocationS3": "s3://entities/missing.schema"}, "missing.schema"),
    ({"DataLocationS3": "s3://entities/../../etc/passwd"}, "DataLocationS3"),
])
def test_invalid_datasource_input(
    ml: Any, data_uri: str, uid: Callable[[str], str], spec: dict[str, Any], fragment: str
) -> None:
    full = {"DataLocationS3": data_uri, "DataSchema": SCHEMA, **spec}
    full = {k: v for k, v in full.items() if v is not None}
    ds_id = uid("ds")
    with pytest.raises(ClientError) as err:
        ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec=full)
    assert error_code(err) == "InvalidInputException"
    assert fragment.lower() in err.value.response["Error"]["Message"].lower()
    with pytest.raises(ClientError):
        ml.get_data_source(DataSourceId=ds_id)  # nothing was stored


def test_missing_data_fails_the_job_not_the_call(ml: Any, uid: Callable[[str], str]) -> None:
    ds_id = uid("ds")
    create_ds(ml, ds_id, "s3://entities/no/such/file.csv")
    done = wait_for(lambda: ml.get_data_source(DataSourceId=ds_id))
    assert done["Status"] == "FAILED"
    assert "file.csv" in done["Message"]
    assert "FinishedAt" in done and "ComputeTime" not in done


def test_dependants_fail_with_their_dependency(ml: Any, server: Any, uid: Callable[[str], str]) -> None:
    ds_id, model_id, eval_id = uid("ds"), uid("ml"), uid("ev")
    server.context.engine.pause()  # all three are created while the datasource is PENDING
    try:
        create_ds(ml, ds_id, "s3://entities/absent.csv", ComputeStatistics=True)
        ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
        ml.create_evaluation(EvaluationId=eval_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
        assert ml.get_ml_model(MLModelId=model_id)["Status"] == "PENDING"
    finally:
        server.context.engine.resume()
    model = wait_for(lambda: ml.get_ml_model(MLModelId=model_id))
    assert model["Status"] == "FAILED"
    assert ds_id in model["Message"]
    evaluation = wait_for(lambda: ml.get_evaluation(EvaluationId=eval_id))
    assert evaluation["Status"] == "FAILED"
    assert model_id in evaluation["Message"] or ds_id in evaluation["Message"]
