"""MLModel operations: create (train), get, describe, update (name, score threshold), delete."""

from __future__ import annotations

import math
from typing import Any

from openaml.errors import InvalidInputException
from openaml.ml.model_type import ModelType
from openaml.ml.recipes import MAX_RECIPE_LENGTH, RecipeError, parse_recipe
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.training import ParameterError, check_target, parse_parameters
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.service.endpoints import endpoint_info
from openaml.storage import StorageError, parse_s3_uri
from openaml.store import EndpointStatus, EntityKind, EntityRecord, Status

KIND = EntityKind.MLMODEL
DEFAULT_SCORE_THRESHOLD = 0.5
PARAMETER_DEFAULTS = {
    "sgd.maxMLModelSizeInBytes": "33554432",
    "sgd.maxPasses": "10",
    "sgd.l1RegularizationAmount": "0.0",
    "sgd.l2RegularizationAmount": "1E-6",
}


def training_parameters(given: dict[str, str]) -> dict[str, str]:
    """TrainingParameters as returned by GetMLModel (models.md §3): the caller's strings + defaults."""
    defaults = dict(PARAMETER_DEFAULTS)
    try:
        if float(given.get("sgd.l1RegularizationAmount", "0")) > 0:
            defaults["sgd.l2RegularizationAmount"] = "0.0"
    except ValueError:
        pass
    return {"algorithm": "sgd", **defaults, **given}


class MLModelOperations:
    ctx: ServiceContext

    def create_ml_model(self, context: RequestContext, MLModelId: str, MLModelType: str, TrainingDataSourceId: str,
                        MLModelName: str | None = None, Parameters: dict[str, str] | None = None,
                        Recipe: str | None = None, RecipeUri: str | None = None) -> dict[str, Any]:
        params = {"MLModelId": MLModelId, "MLModelName": MLModelName, "MLModelType": MLModelType,
                  "Parameters": Parameters, "TrainingDataSourceId": TrainingDataSourceId,
                  "Recipe": Recipe, "RecipeUri": RecipeUri}
        model_id, model_type = MLModelId, MLModelType
        source = common.get_usable(self.ctx, EntityKind.DATASOURCE, TrainingDataSourceId,
                                   "Training datasource")
        if not source.request.get("ComputeStatistics"):
            raise InvalidInputException(
                f"Training datasource {source.id} was created without ComputeStatistics; "
                "training needs its statistics"
            )
        schema = parse_schema(source.info["schema"])
        given = Parameters or {}
        try:
            check_target(model_type, schema)
            parse_parameters(given, model_type)
        except (ValueError, ParameterError) as exc:
            raise InvalidInputException(str(exc)) from None
        recipe = self._recipe(Recipe, RecipeUri, schema)
        request = common.request_params(params, {"Parameters": {}})
        info: dict[str, Any] = {
            "schema": schema.to_json(),
            "recipe": recipe,
            "training_parameters": training_parameters(given),
        }
        if model_type == ModelType.BINARY:
            info["score_threshold"] = DEFAULT_SCORE_THRESHOLD
        record = common.new_record(
            self.ctx, context, KIND, model_id, request,
            name=common.name_param(MLModelName),
            datasource_id=source.id,
            data_uri=source.data_uri,
            model_type=model_type,
            endpoint_status=EndpointStatus.NONE,
            info=info,
        )
        common.create_entity(self.ctx, record)
        return {"MLModelId": model_id}

    def get_ml_model(self, context: RequestContext, MLModelId: str, Verbose: bool = False) -> dict[str, Any]:
        def to_api(ctx: ServiceContext, record: EntityRecord) -> dict[str, Any]:
            result = model_to_api(ctx, record)
            if Verbose:
                result.update(Recipe=record.info.get("recipe"), Schema=record.info.get("schema"))
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
        if ScoreThreshold is not None:
            _check_threshold(record, ScoreThreshold)
            info = {"score_threshold": float(ScoreThreshold), "score_threshold_updated_at": now}
        allowed = [Status.COMPLETED] if ScoreThreshold is not None else [
            s for s in Status if s is not Status.DELETED]
        if not self.ctx.store.update(KIND, MLModelId, changes, only_if=allowed, info=info):
            raise InvalidInputException(f"MLModel {MLModelId} changed status; try again")
        if ScoreThreshold is not None:
            self.ctx.predictors.set_threshold(MLModelId, float(ScoreThreshold))
        return {"MLModelId": MLModelId}

    def delete_ml_model(self, context: RequestContext, MLModelId: str) -> dict[str, Any]:
        result = common.delete(self.ctx, KIND, MLModelId, endpoint_status=EndpointStatus.NONE,
                               endpoint_created_at=None)
        self.ctx.predictors.unmount(MLModelId)
        return result

    def _recipe(self, inline: str | None, uri: str | None, schema: Schema) -> str | None:
        if inline is None and uri is not None:
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
    info = record.info
    result = common.common_fields(ctx, record)
    result.update(
        TrainingDataSourceId=record.datasource_id,
        SizeInBytes=info.get("size_in_bytes") if record.status is Status.COMPLETED else None,
        EndpointInfo=endpoint_info(ctx, record),
        TrainingParameters=info.get("training_parameters"),
        InputDataLocationS3=record.data_uri,
        MLModelType=record.model_type,
        ScoreThreshold=info.get("score_threshold") if record.model_type == ModelType.BINARY else None,
        ScoreThresholdLastUpdatedAt=common.timestamp(info.get("score_threshold_updated_at")),
    )
    return result
