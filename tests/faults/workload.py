"""The jobs the fault trials interrupt: each job kind started through boto3, and what it created."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.api.test_workflow import make_rows, schema, to_csv

ROWS = 30_000  # about a second per job on a shared 2-core machine
PARTS = 3  # input files: a batch prediction writes one result per file, then its manifest
BUCKET = "faults"
DATA_PREFIX = f"s3://{BUCKET}/data/"
KINDS = ("datasource", "statistics", "model", "evaluation", "batch", "endpoint")
ACTIVE = ("PENDING", "INPROGRESS")
ENDPOINT_DELAY_SECONDS = 1.0  # the server's OPENAML_ENDPOINT_DELAY_SECONDS: an UPDATING window
API_KINDS = ("DataSource", "MLModel", "Evaluation", "BatchPrediction")


def data_files() -> dict[str, bytes]:
    """The input data: name -> CSV bytes, a BINARY target over numbers, categories and text."""
    header, rows = make_rows("BINARY", ROWS, seed=14)
    return {f"part{i}.csv": to_csv(header, rows[i::PARTS]) for i in range(PARTS)}


def records_per_file() -> dict[str, int]:
    return {f"part{i}.csv": len(range(i, ROWS, PARTS)) for i in range(PARTS)}


@dataclass
class Workload:
    """Starts jobs on one server and remembers every entity it asked for."""

    ml: Any
    entities: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in API_KINDS})
    outputs: dict[str, str] = field(default_factory=dict)  # batch prediction id -> OutputUri
    with_statistics: set[str] = field(default_factory=set)
    base_source: str = "base-source"
    base_model: str = "base-model"
    endpoint_wanted: bool = False

    def start(self, kind: str, name: str) -> list[tuple[str, str]]:
        """Create the entity (or entities, for `chain`) of one job kind; returns what to watch:
        (API kind, id) pairs, `("Endpoint", model id)` for an endpoint."""
        if kind in ("datasource", "statistics"):
            return [self.datasource(name, statistics=kind == "statistics")]
        if kind == "model":
            return [self.model(name, self.base_source)]
        if kind == "evaluation":
            return [self.evaluation(name, self.base_model, self.base_source)]
        if kind == "batch":
            return [self.batch(name, self.base_model, self.base_source)]
        if kind == "endpoint":
            if self.endpoint_wanted:
                self.ml.delete_realtime_endpoint(MLModelId=self.base_model)
            self.ml.create_realtime_endpoint(MLModelId=self.base_model)
            self.endpoint_wanted = True
            return [("Endpoint", self.base_model)]
        assert kind == "chain", kind  # every kind at once, each waiting for the one before
        source = self.datasource(f"{name}-ds", statistics=True)[1]
        model = self.model(f"{name}-model", source)[1]
        return [("DataSource", source), ("MLModel", model),
                self.evaluation(f"{name}-ev", model, source), self.batch(f"{name}-bp", model, source)]

    def datasource(self, entity_id: str, statistics: bool) -> tuple[str, str]:
        self.ml.create_data_source_from_s3(
            DataSourceId=entity_id, ComputeStatistics=statistics,
            DataSpec={"DataLocationS3": DATA_PREFIX, "DataSchema": schema("BINARY")})
        if statistics:
            self.with_statistics.add(entity_id)
        return self._added("DataSource", entity_id)

    def model(self, entity_id: str, source: str) -> tuple[str, str]:
        self.ml.create_ml_model(MLModelId=entity_id, MLModelType="BINARY",
                                TrainingDataSourceId=source, Parameters={"sgd.maxPasses": "5"})
        return self._added("MLModel", entity_id)

    def evaluation(self, entity_id: str, model: str, source: str) -> tuple[str, str]:
        self.ml.create_evaluation(EvaluationId=entity_id, MLModelId=model,
                                  EvaluationDataSourceId=source)
        return self._added("Evaluation", entity_id)

    def batch(self, entity_id: str, model: str, source: str) -> tuple[str, str]:
        output = f"s3://{BUCKET}/out/{entity_id}/"
        self.ml.create_batch_prediction(BatchPredictionId=entity_id, MLModelId=model,
                                        BatchPredictionDataSourceId=source, OutputUri=output)
        self.outputs[entity_id] = output
        return self._added("BatchPrediction", entity_id)

    def _added(self, api_kind: str, entity_id: str) -> tuple[str, str]:
        self.entities[api_kind].append(entity_id)
        return api_kind, entity_id

    def status(self, api_kind: str, entity_id: str) -> str:
        """The entity's Status, or for `Endpoint` its model's EndpointStatus."""
        if api_kind == "Endpoint":
            return str(self.ml.get_ml_model(MLModelId=entity_id)["EndpointInfo"]["EndpointStatus"])
        return str(self.get(api_kind, entity_id)["Status"])

    def get(self, api_kind: str, entity_id: str) -> dict[str, Any]:
        key = "BatchPredictionId" if api_kind == "BatchPrediction" else f"{api_kind}Id"
        getter: Callable[..., dict[str, Any]] = {
            "DataSource": self.ml.get_data_source, "MLModel": self.ml.get_ml_model,
            "Evaluation": self.ml.get_evaluation, "BatchPrediction": self.ml.get_batch_prediction,
        }[api_kind]
        return getter(**{key: entity_id})

    def describe(self, api_kind: str) -> list[str]:
        """Every id Describe lists for one kind, following NextToken."""
        describe: Callable[..., dict[str, Any]] = {
            "DataSource": self.ml.describe_data_sources, "MLModel": self.ml.describe_ml_models,
            "Evaluation": self.ml.describe_evaluations,
            "BatchPrediction": self.ml.describe_batch_predictions,
        }[api_kind]
        key = "BatchPredictionId" if api_kind == "BatchPrediction" else f"{api_kind}Id"
        ids: list[str] = []
        params: dict[str, Any] = {"Limit": 100}
        while True:
            page = describe(**params)
            ids += [item[key] for item in page["Results"]]
            if not page.get("NextToken"):
                return ids
            params["NextToken"] = page["NextToken"]


def wait_settled(workload: Workload, watched: list[tuple[str, str]], timeout: float) -> dict[str, str]:
    """Poll until no watched entity is PENDING or INPROGRESS (an endpoint: UPDATING)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {entity_id if api_kind != "Endpoint" else f"endpoint:{entity_id}":
                    workload.status(api_kind, entity_id) for api_kind, entity_id in watched}
        if not any(status in (*ACTIVE, "UPDATING") for status in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"still not settled after {timeout} s: {statuses}")
        time.sleep(0.05)
