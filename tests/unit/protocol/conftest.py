"""Shared fixtures: the service spec and botocore's own client-side JSON serializer."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.serialize import create_serializer

from openaml.protocol.spec import ServiceSpec


@pytest.fixture(scope="session")
def spec() -> ServiceSpec:
    return ServiceSpec.load()


@pytest.fixture(scope="session")
def wire_request(spec: ServiceSpec) -> Any:
    """params -> the request dict botocore sends (body bytes, headers), without validation."""
    serializer = create_serializer("json", include_validation=False)

    def build(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = serializer.serialize_to_request(params, spec.operation(operation))
        return request

    return build


SCHEMA = ('{"version":"1.0","targetAttributeName":"label","dataFormat":"CSV",'
          '"dataFileContainsHeader":true,"attributes":[{"attributeName":"label",'
          '"attributeType":"CATEGORICAL"},{"attributeName":"text","attributeType":"TEXT"}]}')
RECIPE = '{"groups":{},"assignments":{},"outputs":["ALL_INPUTS"]}'
DESCRIBE = {"FilterVariable": "Name", "EQ": "x", "GT": "a", "LT": "z", "GE": "a", "LE": "z",
            "NE": "y", "Prefix": "2014-09", "SortOrder": "dsc", "NextToken": "tok==", "Limit": 10}

REQUESTS: dict[str, dict[str, Any]] = {
    "AddTags": {"ResourceId": "ml-1", "ResourceType": "MLModel",
                "Tags": [{"Key": "project", "Value": "Ünïcode space_1:/=+-@"},
                         {"Key": "empty"}]},
    "CreateBatchPrediction": {"BatchPredictionId": "bp-1", "BatchPredictionName": "batch one",
                              "MLModelId": "ml-1", "BatchPredictionDataSourceId": "ds-3",
                              "OutputUri": "s3://bucket/out/"},
    "CreateDataSourceFromRDS": {
        "DataSourceId": "ds-rds", "DataSourceName": "rds", "RoleARN": "arn:aws:iam::1:role/x",
        "ComputeStatistics": True,
        "RDSData": {"DatabaseInformation": {"InstanceIdentifier": "my-db-1", "DatabaseName": "db"},
                    "SelectSqlQuery": "SELECT a, b FROM t",
                    "DatabaseCredentials": {"Username": "admin", "Password": "secret123"},
                    "S3StagingLocation": "s3://bucket/staging/", "DataRearrangement":
                    '{"splitting":{"percentBegin":0,"percentEnd":70}}',
                    "DataSchema": SCHEMA, "ResourceRole": "DataPipelineDefaultResourceRole",
                    "ServiceRole": "DataPipelineDefaultRole", "SubnetId": "subnet-1",
                    "SecurityGroupIds": ["sg-1", "sg-2"]}},
    "CreateDataSourceFromRedshift": {
        "DataSourceId": "ds-rs", "RoleARN": "arn:aws:iam::1:role/x", "ComputeStatistics": False,
        "DataSpec": {"DatabaseInformation": {"DatabaseName": "dev", "ClusterIdentifier": "c-1"},
                     "SelectSqlQuery": "SELECT * FROM t",
                     "DatabaseCredentials": {"Username": "u", "Password": "password1"},
                     "S3StagingLocation": "s3://bucket/st", "DataSchemaUri": "s3://b/s.json"}},
    "CreateDataSourceFromS3": {
        "DataSourceId": "ds-1", "DataSourceName": "training 70%", "ComputeStatistics": True,
        "DataSpec": {"DataLocationS3": "s3://bucket/train.csv", "DataSchema": SCHEMA,
                     "DataRearrangement": '{"splitting":{"percentBegin":0,"percentEnd":70}}'}},
    "CreateEvaluation": {"EvaluationId": "ev-1", "EvaluationName": "eval", "MLModelId": "ml-1",
                         "EvaluationDataSourceId": "ds-2"},
    "CreateMLModel": {"MLModelId": "ml-1", "MLModelName": "model", "MLModelType": "MULTICLASS",
                      "Parameters": {"sgd.maxPasses": "10", "sgd.l2RegularizationAmount": "1e-6"},
                      "TrainingDataSourceId": "ds-1", "Recipe": RECIPE,
                      "RecipeUri": "s3://bucket/recipe.json"},
    "CreateRealtimeEndpoint": {"MLModelId": "ml-1"},
    "DeleteBatchPrediction": {"BatchPredictionId": "bp-1"},
    "DeleteDataSource": {"DataSourceId": "ds-1"},
    "DeleteEvaluation": {"EvaluationId": "ev-1"},
    "DeleteMLModel": {"MLModelId": "ml-1"},
    "DeleteRealtimeEndpoint": {"MLModelId": "ml-1"},
    "DeleteTags": {"ResourceId": "ds-1", "ResourceType": "DataSource", "TagKeys": ["a", "b c"]},
    "DescribeBatchPredictions": {**DESCRIBE, "FilterVariable": "MLModelId"},
    "DescribeDataSources": {**DESCRIBE, "FilterVariable": "DataLocationS3"},
    "DescribeEvaluations": {**DESCRIBE, "FilterVariable": "DataURI"},
    "DescribeMLModels": {**DESCRIBE, "FilterVariable": "RealtimeEndpointStatus"},
    "DescribeTags": {"ResourceId": "ev-1", "ResourceType": "Evaluation"},
    "GetBatchPrediction": {"BatchPredictionId": "bp-1"},
    "GetDataSource": {"DataSourceId": "ds-1", "Verbose": True},
    "GetEvaluation": {"EvaluationId": "ev-1"},
    "GetMLModel": {"MLModelId": "ml-1", "Verbose": False},
    "Predict": {"MLModelId": "ml-1", "Record": {"text": "héllo wörld", "x": "1.5"},
                "PredictEndpoint": "http://127.0.0.1:8080"},
    "UpdateBatchPrediction": {"BatchPredictionId": "bp-1", "BatchPredictionName": "renamed"},
    "UpdateDataSource": {"DataSourceId": "ds-1", "DataSourceName": "renamed"},
    "UpdateEvaluation": {"EvaluationId": "ev-1", "EvaluationName": ""},
    "UpdateMLModel": {"MLModelId": "ml-1", "MLModelName": "m", "ScoreThreshold": 0.25},
}


@pytest.fixture(scope="session")
def catalog() -> dict[str, dict[str, Any]]:
    """Realistic input parameters for each of the 28 operations, as a boto3 caller passes them."""
    return REQUESTS
