"""The four entity kinds as the console sees them: URL segment, API names and filter variables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    segment: str        # URL path segment under /console
    resource: str       # TaggableResourceType and artifact kind
    title: str
    id_member: str      # e.g. DataSourceId
    name_member: str    # the rename operation's name parameter
    plural_op: str      # describe_* method name
    get_op: str
    update_op: str
    delete_op: str
    filters: tuple[str, ...]  # FilterVariable values (api-behavior.md §3)


_COMMON = ("CreatedAt", "LastUpdatedAt", "Status", "Name", "IAMUser")

KINDS: dict[str, Kind] = {k.segment: k for k in (
    Kind("datasources", "DataSource", "Datasources", "DataSourceId", "DataSourceName",
         "describe_data_sources", "get_data_source", "update_data_source", "delete_data_source",
         (*_COMMON, "DataLocationS3")),
    Kind("models", "MLModel", "ML models", "MLModelId", "MLModelName",
         "describe_ml_models", "get_ml_model", "update_ml_model", "delete_ml_model",
         (*_COMMON, "TrainingDataSourceId", "RealtimeEndpointStatus", "MLModelType", "Algorithm",
          "TrainingDataURI")),
    Kind("evaluations", "Evaluation", "Evaluations", "EvaluationId", "EvaluationName",
         "describe_evaluations", "get_evaluation", "update_evaluation", "delete_evaluation",
         (*_COMMON, "MLModelId", "DataSourceId", "DataURI")),
    Kind("batchpredictions", "BatchPrediction", "Batch predictions", "BatchPredictionId",
         "BatchPredictionName", "describe_batch_predictions", "get_batch_prediction",
         "update_batch_prediction", "delete_batch_prediction",
         (*_COMMON, "MLModelId", "DataSourceId", "DataURI")),
)}
COMPARATORS = ("Prefix", "EQ", "NE", "GT", "GE", "LT", "LE")
ACTIVE = frozenset({"PENDING", "INPROGRESS"})
