"""X-Amz-Target resolution and the dispatch table derived from the model."""

from __future__ import annotations

from typing import Any

import pytest

from openaml.errors import UnknownOperationException
from openaml.protocol.routing import build_dispatch_table, resolve_target, route_for
from openaml.protocol.spec import ServiceSpec

ALL_28 = {
    "AddTags", "CreateBatchPrediction", "CreateDataSourceFromRDS", "CreateDataSourceFromRedshift",
    "CreateDataSourceFromS3", "CreateEvaluation", "CreateMLModel", "CreateRealtimeEndpoint",
    "DeleteBatchPrediction", "DeleteDataSource", "DeleteEvaluation", "DeleteMLModel",
    "DeleteRealtimeEndpoint", "DeleteTags", "DescribeBatchPredictions", "DescribeDataSources",
    "DescribeEvaluations", "DescribeMLModels", "DescribeTags", "GetBatchPrediction",
    "GetDataSource", "GetEvaluation", "GetMLModel", "Predict", "UpdateBatchPrediction",
    "UpdateDataSource", "UpdateEvaluation", "UpdateMLModel"}


class FullService:
    """One method per operation, named as botocore's snake_case names."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda **params: (name, params)


class PartialService:
    def get_ml_model(self, **params: Any) -> str:
        return "got"

    def create_data_source_from_rds(self, **params: Any) -> str:
        return "rds"

    predict = "not callable"


def test_spec_basics(spec: ServiceSpec) -> None:
    assert spec.target_prefix == "AmazonML_20141212"
    assert set(spec.operation_names) == ALL_28
    assert spec.snake_name("CreateMLModel") == "create_ml_model"
    assert spec.snake_name("CreateDataSourceFromRDS") == "create_data_source_from_rds"
    assert spec.snake_name("DescribeMLModels") == "describe_ml_models"
    assert ServiceSpec.load() is spec


@pytest.mark.parametrize("operation", sorted(ALL_28))
def test_resolve_target(spec: ServiceSpec, operation: str) -> None:
    assert resolve_target(spec, f"AmazonML_20141212.{operation}").name == operation


@pytest.mark.parametrize("target", [None, "", "GetMLModel", "AmazonML_20141212.",
                                    "AmazonML_20141212.getMLModel", "AmazonML_20141212.Nope",
                                    "Other_20141212.GetMLModel", "AmazonML.GetMLModel"])
def test_unknown_target(spec: ServiceSpec, target: str | None) -> None:
    with pytest.raises(UnknownOperationException):
        resolve_target(spec, target)


def test_table_covers_exactly_the_28_operations(spec: ServiceSpec) -> None:
    table = build_dispatch_table(spec, FullService())
    assert set(table.routes) == ALL_28 and table.missing == ()
    route = table.routes["CreateMLModel"]
    assert route.operation.name == "CreateMLModel"
    assert route.handler(MLModelId="m") == ("create_ml_model", {"MLModelId": "m"})


def test_table_reports_missing_handlers(spec: ServiceSpec) -> None:
    table = build_dispatch_table(spec, PartialService())
    assert set(table.routes) == {"GetMLModel", "CreateDataSourceFromRDS"}
    assert set(table.missing) == ALL_28 - set(table.routes)
    assert route_for(table, spec.operation("GetMLModel")).handler() == "got"
    with pytest.raises(UnknownOperationException):
        route_for(table, spec.operation("Predict"))
