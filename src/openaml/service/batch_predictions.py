"""BatchPrediction operations: create, get, describe, update, delete."""

from __future__ import annotations

from typing import Any

from openaml.errors import InvalidInputException
from openaml.jobs.record_info import read_spec, spec_info
from openaml.jobs.specs import BatchPredictionResult, BatchPredictionSpec
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.storage import StorageError, parse_s3_uri
from openaml.store import EntityKind, EntityRecord

KIND = EntityKind.BATCH_PREDICTION


class BatchPredictionOperations:
    ctx: ServiceContext

    def create_batch_prediction(self, context: RequestContext, BatchPredictionId: str, MLModelId: str,
                                BatchPredictionDataSourceId: str, OutputUri: str,
                                BatchPredictionName: str | None = None) -> dict[str, Any]:
        params = {"BatchPredictionId": BatchPredictionId, "BatchPredictionName": BatchPredictionName,
                  "MLModelId": MLModelId, "BatchPredictionDataSourceId": BatchPredictionDataSourceId,
                  "OutputUri": OutputUri}
        return common.create(
            self.ctx, context, KIND, BatchPredictionId, common.request_params(params, {}),
            lambda: self._batch_prediction_columns(MLModelId, BatchPredictionDataSourceId, OutputUri,
                                                   BatchPredictionName))

    def get_batch_prediction(self, context: RequestContext, BatchPredictionId: str) -> dict[str, Any]:
        return common.get_response(self.ctx, KIND, BatchPredictionId, _to_api)

    describe_batch_predictions = common.describe_operation(KIND, lambda ctx, r: _to_api(ctx, r))

    def update_batch_prediction(self, context: RequestContext,
                                BatchPredictionId: str, BatchPredictionName: str) -> dict[str, Any]:
        return common.rename(self.ctx, KIND, BatchPredictionId, BatchPredictionName)

    def delete_batch_prediction(self, context: RequestContext, BatchPredictionId: str) -> dict[str, Any]:
        return common.delete(self.ctx, KIND, BatchPredictionId)

    def _batch_prediction_columns(self, model_id: str, datasource_id: str, output: str,
                                  name: str | None) -> dict[str, Any]:
        """A new batch prediction's record columns, once its OutputUri is found valid and its
        model and datasource usable (evaluation-and-prediction.md §2)."""
        key = output[len("s3://"):].partition("/")[2]
        padded = f"/{key}/"
        if ":" in key or "//" in key or "/./" in padded or "/../" in padded:
            raise InvalidInputException(
                "OutputUri must not contain ':', '//', '/./' or '/../' in its key part"
            )
        try:
            parse_s3_uri(output)
        except StorageError as exc:
            raise InvalidInputException(f"OutputUri: {exc}") from None
        model = common.get_usable(self.ctx, EntityKind.MLMODEL, model_id, "MLModel")
        source = common.get_usable(
            self.ctx, EntityKind.DATASOURCE, datasource_id, "Batch prediction datasource",
        )
        return {"name": common.name_param(name), "model_id": model.id, "datasource_id": source.id,
                "data_uri": source.data_uri, "info": spec_info(BatchPredictionSpec(model.id, source.id, output))}


def _to_api(ctx: ServiceContext, record: EntityRecord) -> dict[str, Any]:
    spec = read_spec(record, BatchPredictionSpec)
    counted = common.job_result(record, BatchPredictionResult)
    result = common.common_fields(ctx, record, counted)
    result.update(
        MLModelId=spec.model_id,
        BatchPredictionDataSourceId=spec.datasource_id,
        InputDataLocationS3=record.data_uri,
        OutputUri=spec.output_uri,
        TotalRecordCount=counted.total_record_count if counted else None,
        InvalidRecordCount=counted.invalid_record_count if counted else None,
    )
    return result
