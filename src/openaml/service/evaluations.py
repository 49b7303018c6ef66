"""Evaluation operations: create, get, describe, update, delete."""

from __future__ import annotations

from typing import Any

from openaml.errors import InvalidInputException
from openaml.jobs.record_info import read_spec, spec_info
from openaml.jobs.specs import DataSourceSpec, EvaluationResult, EvaluationSpec, MLModelSpec
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.store import EntityKind, EntityRecord

KIND = EntityKind.EVALUATION


class EvaluationOperations:
    ctx: ServiceContext

    def create_evaluation(self, context: RequestContext, EvaluationId: str, MLModelId: str, EvaluationDataSourceId: str,
                          EvaluationName: str | None = None) -> dict[str, Any]:
        params = {"EvaluationId": EvaluationId, "EvaluationName": EvaluationName, "MLModelId": MLModelId,
                  "EvaluationDataSourceId": EvaluationDataSourceId}
        return common.create(self.ctx, context, KIND, EvaluationId, common.request_params(params, {}),
                             lambda: self._evaluation_columns(MLModelId, EvaluationDataSourceId, EvaluationName))

    def get_evaluation(self, context: RequestContext, EvaluationId: str) -> dict[str, Any]:
        return common.get_response(self.ctx, KIND, EvaluationId, _to_api)

    describe_evaluations = common.describe_operation(KIND, lambda ctx, r: _to_api(ctx, r))

    def update_evaluation(self, context: RequestContext, EvaluationId: str, EvaluationName: str) -> dict[str, Any]:
        return common.rename(self.ctx, KIND, EvaluationId, EvaluationName)

    def delete_evaluation(self, context: RequestContext, EvaluationId: str) -> dict[str, Any]:
        return common.delete(self.ctx, KIND, EvaluationId)

    def _evaluation_columns(self, model_id: str, datasource_id: str, name: str | None) -> dict[str, Any]:
        """A new evaluation's record columns, once its model and datasource are found usable and
        the datasource has the model's target (evaluation-and-prediction.md §1)."""
        model = common.get_usable(self.ctx, EntityKind.MLMODEL, model_id, "MLModel")
        source = common.get_usable(self.ctx, EntityKind.DATASOURCE, datasource_id, "Evaluation datasource")
        target = read_spec(model, MLModelSpec).schema.target
        data_schema = read_spec(source, DataSourceSpec).schema
        if target is None or data_schema.type_of(target) is None:
            raise InvalidInputException(
                f"Evaluation datasource {source.id} has no attribute named like the model's "
                f"target '{target}'"
            )
        if data_schema.target is not None and data_schema.target != target:
            raise InvalidInputException(
                f"Evaluation datasource {source.id} has target '{data_schema.target}', "
                f"but MLModel {model.id} predicts '{target}'"
            )
        return {"name": common.name_param(name), "model_id": model.id, "datasource_id": source.id,
                "data_uri": source.data_uri, "info": spec_info(EvaluationSpec(model.id, source.id))}


def _to_api(ctx: ServiceContext, record: EntityRecord) -> dict[str, Any]:
    spec = read_spec(record, EvaluationSpec)
    evaluated = common.job_result(record, EvaluationResult)
    result = common.common_fields(ctx, record, evaluated)
    result.update(
        MLModelId=spec.model_id,
        EvaluationDataSourceId=spec.datasource_id,
        InputDataLocationS3=record.data_uri,
        PerformanceMetrics={"Properties": evaluated.metrics} if evaluated and evaluated.metrics else None,
    )
    return result
