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
    describe_op: str    # API operation names
    get_op: str
    update_op: str
    delete_op: str
    filters: tuple[str, ...]  # FilterVariable values (api-behavior.md §3)


_COMMON = ("CreatedAt", "LastUpdatedAt", "Status", "Name", "IAMUser")

KINDS: dict[str, Kind] = {k.segment: k for k in (
    Kind("datasources", "DataSource", "Datasources", "DataSourceId", "DataSourceName",
         "DescribeDataSources", "GetDataSource", "UpdateDataSource", "DeleteDataSource",
         (*_COMMON, "DataLocationS3")),
    Kind("models", "MLModel", "ML models", "MLModelId", "MLModelName",
         "DescribeMLModels", "GetMLModel", "UpdateMLModel", "DeleteMLModel",
         (*_COMMON, "TrainingDataSourceId", "RealtimeEndpointStatus", "MLModelType", "Algorithm",
          "TrainingDataURI")),
    Kind("evaluations", "Evaluation", "Evaluations", "EvaluationId", "EvaluationName",
         "DescribeEvaluations", "GetEvaluation", "UpdateEvaluation", "DeleteEvaluation",
         (*_COMMON, "MLModelId", "DataSourceId", "DataURI")),
    Kind("batchpredictions", "BatchPrediction", "Batch predictions", "BatchPredictionId",
         "BatchPredictionName", "DescribeBatchPredictions", "GetBatchPrediction",
         "UpdateBatchPrediction", "DeleteBatchPrediction",
         (*_COMMON, "MLModelId", "DataSourceId", "DataURI")),
)}
COMPARATORS = ("Prefix", "EQ", "NE", "GT", "GE", "LT", "LE")
ACTIVE = frozenset({"PENDING", "INPROGRESS"})
