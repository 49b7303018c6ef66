"""Operation logic: one method per API operation, named by botocore's snake_case operation name."""

from openaml.service.batch_predictions import BatchPredictionOperations
from openaml.service.context import ServiceContext
from openaml.service.datasources import DataSourceOperations
from openaml.service.endpoints import EndpointOperations
from openaml.service.evaluations import EvaluationOperations
from openaml.service.mlmodels import MLModelOperations
from openaml.service.tags import TagOperations


class MachineLearningService(
    DataSourceOperations,
    MLModelOperations,
    EvaluationOperations,
    BatchPredictionOperations,
    EndpointOperations,
    TagOperations,
):
    """All 28 operations. Methods take the request members as keyword arguments."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx


__all__ = ["MachineLearningService", "ServiceContext"]
