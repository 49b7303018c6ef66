"""MLModel operations: create (train), get, describe, update (name, score threshold), delete."""

from __future__ import annotations

import math
from typing import Any

from openaml.errors import InvalidInputException
from openaml.jobs.record_info import read_spec, read_threshold, spec_info, threshold_info
from openaml.jobs.specs import DataSourceSpec, MLModelResult, MLModelSpec, model_seed
from openaml.jobs.specs import ScoreThreshold as Threshold
from openaml.ml.model_type import ModelType
from openaml.ml.recipes import MAX_RECIPE_LENGTH, RecipeError, parse_recipe
from openaml.ml.schema import Schema
from openaml.ml.training import ParameterError, check_target, parse_parameters, shown_parameters
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.service.endpoints import endpoint_info
from openaml.storage import StorageError, parse_s3_uri
from openaml.store import EndpointStatus, EntityKind, EntityRecord, Status

KIND = EntityKind.MLMODEL


class MLModelOperations:
    ctx: ServiceContext

    def create_ml_model(self, context: RequestContext, MLModelId: str, MLModelType: str, TrainingDataSourceId: str,
                        MLModelName: str | None = None, Parameters: dict[str, str] | None = None,
                        Recipe: str | None = None, RecipeUri: str | None = None) -> dict[str, Any]:
        params = {"MLModelId": MLModelId, "MLModelName": MLModelName, "MLModelType": MLModelType,
                  "Parameters": Parameters, "TrainingDataSourceId": TrainingDataSourceId,
                  "Recipe": Recipe, "RecipeUri": RecipeUri}
        return common.create(
            self.ctx, context, KIND, MLModelId, common.request_params(params, {"Parameters": {}}),
            lambda: self._model_columns(MLModelId, MLModelType, TrainingDataSourceId, MLModelName, Parameters or {},
                                  Recipe, RecipeUri))

    def get_ml_model(self, context: RequestContext, MLModelId: str, Verbose: bool = False) -> dict[str, Any]:
        def to_api(ctx: ServiceContext, record: EntityRecord) -> dict[str, Any]:
            result = model_to_api(ctx, record)
            if Verbose:
                spec, trained = read_spec(record, MLModelSpec), common.job_result(record, MLModelResult)
                result.update(Recipe=trained.recipe if trained else spec.recipe, Schema=spec.schema_json)
            return result

        return common.get_response(self.ctx, KIND, MLModelId, to_api)

    describe_ml_models = common.describe_operation(
        KIND, lambda ctx, r: {**model_to_api(ctx, r), "Algorithm": "sgd"})

    def update_ml_model(
        self, context: RequestContext, MLModelId: str, MLModelName: str | None = None,
        ScoreThreshold: float | None = None
    ) -> dict[str, Any]:
        record = common.get_existing(self.ctx, KIND, MLModelId)
        if record.status is Status.DELETED:
            raise InvalidInputException(f"MLModel {MLModelId} is DELETED and cannot be updated")
        if MLModelName is None and ScoreThreshold is None:
            return {"MLModelId": MLModelId}
        now = self.ctx.clock()
        changes: dict[str, Any] = {"last_updated_at": now}
        info: dict[str, Any] = {}
        if MLModelName is not None:
            changes["name"] = common.name_param(MLModelName)
        threshold = None if ScoreThreshold is None else float(ScoreThreshold) or 0.0  # -0.0 kept as 0.0
        if threshold is not None:
            _check_threshold(record, threshold)
            info = threshold_info(Threshold(threshold, now))
        allowed = [Status.COMPLETED] if threshold is not None else [
            s for s in Status if s is not Status.DELETED]
        if not self.ctx.store.update(KIND, MLModelId, changes, only_if=allowed, info=info):
            raise InvalidInputException(f"MLModel {MLModelId} changed status; try again")
        if threshold is not None:
            self.ctx.predictors.set_threshold(MLModelId, Threshold(threshold, now))
        return {"MLModelId": MLModelId}

    def delete_ml_model(self, context: RequestContext, MLModelId: str) -> dict[str, Any]:
        result = common.delete(self.ctx, KIND, MLModelId, endpoint_status=EndpointStatus.NONE,
                               endpoint_created_at=None)
        self.ctx.predictors.unmount(MLModelId)
        return result

    def _model_columns(self, model_id: str, model_type_name: str, datasource_id: str, name: str | None,
                 given: dict[str, str], recipe: str | None, recipe_uri: str | None) -> dict[str, Any]:
        """A new model's record columns, once its request is found valid (models.md §2-§3)."""
        source = common.get_usable(self.ctx, EntityKind.DATASOURCE, datasource_id, "Training datasource")
        source_spec = read_spec(source, DataSourceSpec)
        if not source_spec.compute_statistics:
            raise InvalidInputException(
                f"Training datasource {source.id} was created without ComputeStatistics; "
                "training needs its statistics"
            )
        schema = source_spec.schema
        try:
            check_target(model_type_name, schema)
            parameters = parse_parameters(given, model_type_name, seed=model_seed(model_id))
        except (ValueError, ParameterError) as exc:
            raise InvalidInputException(str(exc)) from None
        model_type = ModelType(model_type_name)
        spec = MLModelSpec(model_type, source.id, source_spec.schema_json, self._recipe(recipe, recipe_uri, schema),
                           parameters, given)
        info = spec_info(spec) | (threshold_info(Threshold()) if model_type is ModelType.BINARY else {})
        return {"name": common.name_param(name), "datasource_id": source.id, "data_uri": source.data_uri,
                "model_type": model_type, "endpoint_status": EndpointStatus.NONE, "info": info}

    def _recipe(self, inline: str | None, uri: str | None, schema: Schema) -> str | None:
        if inline is not None and uri is not None:  # recipes.md §1
            raise InvalidInputException("Give the recipe in Recipe or in RecipeUri, not in both")
        if uri is not None:
            try:
                parse_s3_uri(uri)
            except StorageError as exc:
                raise InvalidInputException(f"RecipeUri {uri} cannot be read: {exc}") from None
            inline = common.read_document(self.ctx, uri, "RecipeUri", MAX_RECIPE_LENGTH, "a recipe")
        if inline is None:
            return None
        try:
            parse_recipe(inline, schema)
        except RecipeError as exc:
            raise InvalidInputException(f"Invalid recipe: {exc}") from None
        return inline


def _check_threshold(record: EntityRecord, value: float) -> None:
    if record.model_type != ModelType.BINARY:
        raise InvalidInputException(
            f"ScoreThreshold applies to BINARY models only; {record.id} is {record.model_type}"
        )
    if record.status is not Status.COMPLETED:
        raise InvalidInputException(
            f"ScoreThreshold can be set once the model is COMPLETED; {record.id} is {record.status.value}"
        )
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidInputException("ScoreThreshold must be a number between 0 and 1")


def model_to_api(ctx: ServiceContext, record: EntityRecord) -> dict[str, Any]:
    spec = read_spec(record, MLModelSpec)
    trained = common.job_result(record, MLModelResult)
    threshold = read_threshold(record) if spec.model_type is ModelType.BINARY else None
    result = common.common_fields(ctx, record, trained)
    result.update(
        TrainingDataSourceId=spec.datasource_id,
        SizeInBytes=trained.size_in_bytes if trained else None,
        EndpointInfo=endpoint_info(ctx, record),
        TrainingParameters=shown_parameters(spec.given_parameters, spec.parameters),
        InputDataLocationS3=record.data_uri,
        MLModelType=spec.model_type.value,
        ScoreThreshold=threshold.value if threshold else None,
        ScoreThresholdLastUpdatedAt=common.timestamp(threshold.updated_at if threshold else None),
    )
    return result
