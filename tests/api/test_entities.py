"""Entity semantics shared by every family: create, idempotency, get, update, delete."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import XCY_CSV, XCY_SCHEMA, error_code, wait_for

SCHEMA, CSV = XCY_SCHEMA, XCY_CSV


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


def test_an_empty_name_is_no_name_for_every_kind(ml: Any, data_uri: str, uid: Callable[[str], str]) -> None:
    """Update* with an empty name leaves the entity without one, as Create* with an empty name
    does (api-behavior.md §1.3: a member without value is omitted)."""
    ds_id, model_id, eval_id, batch_id = uid("ds"), uid("ml"), uid("ev"), uid("bp")
    create_ds(ml, ds_id, data_uri, DataSourceName="", ComputeStatistics=True)
    ml.create_ml_model(MLModelId=model_id, MLModelName="", MLModelType="BINARY", TrainingDataSourceId=ds_id)
    ml.create_evaluation(EvaluationId=eval_id, EvaluationName="", MLModelId=model_id, EvaluationDataSourceId=ds_id)
    ml.create_batch_prediction(BatchPredictionId=batch_id, BatchPredictionName="", MLModelId=model_id,
                               BatchPredictionDataSourceId=ds_id, OutputUri=f"s3://entities/{batch_id}/")
    kinds = [("data_source", "DataSource", ds_id, "DataSourceName"),
             ("ml_model", "MLModel", model_id, "MLModelName"),
             ("evaluation", "Evaluation", eval_id, "EvaluationName"),
             ("batch_prediction", "BatchPrediction", batch_id, "BatchPredictionName")]
    for snake, kind, entity_id, member in kinds:
        def get(snake: str = snake, kind: str = kind, entity_id: str = entity_id) -> dict[str, Any]:
            return dict(getattr(ml, f"get_{snake}")(**{f"{kind}Id": entity_id}))

        update = getattr(ml, f"update_{snake}")
        assert "Name" not in get(), kind  # created with ""
        update(**{f"{kind}Id": entity_id, member: "named"})
        assert get()["Name"] == "named", kind
        update(**{f"{kind}Id": entity_id, member: ""})
        assert "Name" not in get(), kind
    wait_for(lambda: ml.get_batch_prediction(BatchPredictionId=batch_id))


def test_a_negative_zero_threshold_is_kept_as_zero(ml: Any, data_uri: str, uid: Callable[[str], str]) -> None:
    ds_id, model_id = uid("ds"), uid("ml")
    create_ds(ml, ds_id, data_uri, ComputeStatistics=True)
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    assert wait_for(lambda: ml.get_ml_model(MLModelId=model_id))["Status"] == "COMPLETED"
    ml.update_ml_model(MLModelId=model_id, ScoreThreshold=-0.0)
    shown = [ml.get_ml_model(MLModelId=model_id)["ScoreThreshold"]] + [
        m["ScoreThreshold"] for m in ml.describe_ml_models(FilterVariable="TrainingDataSourceId", EQ=ds_id)["Results"]]
    assert shown == [0.0, 0.0]
    assert [math.copysign(1.0, value) for value in shown] == [1.0, 1.0]


def test_a_models_training_parameters_create_a_model_like_it(ml: Any, data_uri: str,
                                                             uid: Callable[[str], str]) -> None:
    """CreateMLModel refused the `"algorithm": "sgd"` that GetMLModel shows (models.md §3):
    copying a model's TrainingParameters into a new one failed. Both calls: the new model
    completes and shows the same parameters."""
    ds_id = uid("ds")
    create_ds(ml, ds_id, data_uri, ComputeStatistics=True)
    for given in ({}, {"sgd.l1RegularizationAmount": "1e-4", "sgd.maxPasses": "3", "sgd.shuffleType": "auto"}):
        first, second = uid("ml"), uid("ml")
        ml.create_ml_model(MLModelId=first, MLModelType="BINARY", TrainingDataSourceId=ds_id, Parameters=given)
        shown = wait_for(lambda: ml.get_ml_model(MLModelId=first))["TrainingParameters"]  # noqa: B023
        assert shown["algorithm"] == "sgd"
        ml.create_ml_model(MLModelId=second, MLModelType="BINARY", TrainingDataSourceId=ds_id, Parameters=shown)
        done = wait_for(lambda: ml.get_ml_model(MLModelId=second))  # noqa: B023
        assert (done["Status"], done["TrainingParameters"]) == ("COMPLETED", shown), done.get("Message")


def test_a_recipe_given_both_inline_and_by_uri_is_refused(
    ml: Any, data_uri: str, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]
) -> None:
    """recipes.md §1: Recipe and RecipeUri together are InvalidInputException (the URI was
    silently ignored), whether or not the two recipes agree; either alone is taken."""
    stats = uid("ds")
    create_ds(ml, stats, data_uri, ComputeStatistics=True)
    recipe = '{"outputs": ["ALL_INPUTS"]}'
    uri = put_object(f"s3://entities/{uid('recipe')}/recipe.json", recipe.encode())
    for inline in (recipe, '{"outputs": ["ALL_CATEGORICAL"]}'):
        with pytest.raises(ClientError) as err:
            ml.create_ml_model(MLModelId=uid("ml"), MLModelType="BINARY", TrainingDataSourceId=stats,
                               Recipe=inline, RecipeUri=uri)
        assert error_code(err) == "InvalidInputException" and "not in both" in err.value.response["Error"]["Message"]
    for given in ({"Recipe": recipe}, {"RecipeUri": uri}):
        model_id = uid("ml")
        ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=stats, **given)
        assert ml.get_ml_model(MLModelId=model_id, Verbose=True)["Recipe"] == recipe


@pytest.mark.parametrize("builtin", ["ALL_TEXT", "ALL_NUMERIC", "ALL_CATEGORICAL", "ALL_BINARY", "ALL_INPUTS"])
def test_an_input_attribute_named_as_a_builtin_group_is_refused(
    ml: Any, data_uri: str, uid: Callable[[str], str], put_object: Callable[[str, bytes], str], builtin: str
) -> None:
    """A recipe reads a built-in group before an attribute of its name (recipes.md §2), so no
    recipe could name such an attribute: a model without a recipe silently went without it.
    The datasource is refused with the reason, its schema given inline or by URI (one check
    serves every Create of a datasource); the name is free for the target or an excluded
    attribute, which no recipe names."""
    named = SCHEMA.replace('"attributeName":"x"', f'"attributeName":"{builtin}"')
    schema_uri = put_object(f"s3://entities/{uid('schema')}/data.csv.schema", named.encode())
    for spec in ({"DataSchema": named}, {"DataSchemaLocationS3": schema_uri}):
        with pytest.raises(ClientError) as err:
            ml.create_data_source_from_s3(DataSourceId=uid("ds"), DataSpec={"DataLocationS3": data_uri, **spec})
        assert error_code(err) == "InvalidInputException"
        assert f"{builtin} is a recipe's built-in group" in err.value.response["Error"]["Message"]
    excluded = named.replace('"attributes":[', f'"excludedAttributeNames":["{builtin}"],"attributes":[')
    create_ds(ml, uid("ds"), data_uri, spec={"DataSchema": excluded})
    as_target = SCHEMA.replace('"y"', f'"{builtin}"')
    create_ds(ml, uid("ds"), data_uri, spec={"DataSchema": as_target})
