"""A small fake service (the API's dicts, real artifact and object stores) for page tests."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from openaml.console import build_console
from openaml.errors import InvalidInputException, ResourceNotFoundException
from openaml.jobs.models import LoadedModels, read_model
from openaml.service.console_port import ServicePort
from openaml.service.context import RequestContext
from openaml.storage import ArtifactStore
from openaml.storage.local import LocalObjectStore
from openaml.store import EntityKind, EntityRecord, Status, open_store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
IDS = {"DataSource": "DataSourceId", "MLModel": "MLModelId", "Evaluation": "EvaluationId",
       "BatchPrediction": "BatchPredictionId"}


class FakeService:
    """Entities kept as API dicts; records every write call."""

    def __init__(self, root: Path) -> None:
        artifacts = ArtifactStore(root / "artifacts")
        self.ctx = SimpleNamespace(artifacts=artifacts, objects=LocalObjectStore(root / "objects"),
                                   settings=SimpleNamespace(data_dir=root),
                                   models=LoadedModels(partial(read_model, artifacts)),
                                   store=open_store(f"sqlite:///{root / 'store.db'}"),
                                   request_context=lambda caller: RequestContext(caller or "arn:aws:iam::1:root"))
        self.port = ServicePort(self.ctx)  # duck-typed: the parts of the context it reads
        self.entities: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in IDS}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def add(self, kind: str, entity_id: str, **fields: Any) -> dict[str, Any]:
        item = {IDS[kind]: entity_id, "Status": "COMPLETED", "CreatedAt": NOW, "LastUpdatedAt": NOW, **fields}
        self.entities[kind][entity_id] = item
        return item

    def set_info(self, kind: str, entity_id: str, info: dict[str, Any]) -> None:
        """What the entity's job stored (the console reads some of it from the store)."""
        record = EntityRecord(kind=EntityKind(kind), id=entity_id, status=Status.COMPLETED, created_at=1,
                              last_updated_at=1, created_by="test", request={}, info=info)
        if not self.ctx.store.insert(record):
            self.ctx.store.update(EntityKind(kind), entity_id, {}, info=info)

    def write_artifact(self, kind: str, entity_id: str, name: str, data: bytes | dict[str, Any]) -> None:
        with self.ctx.artifacts.open_write(kind, entity_id, name) as out:
            out.write(data if isinstance(data, bytes) else json.dumps(data).encode())

    def _get(self, kind: str, entity_id: str) -> dict[str, Any]:
        if entity_id not in self.entities[kind]:
            raise ResourceNotFoundException(f"{kind} {entity_id} does not exist")
        return dict(self.entities[kind][entity_id])

    def _describe(self, kind: str, **params: Any) -> dict[str, Any]:
        self.calls.append((f"describe {kind}", params))
        items = list(self.entities[kind].values())
        if params.get("FilterVariable") == "Name" and params.get("Prefix") is not None:
            items = [i for i in items if (i.get("Name") or "").startswith(params["Prefix"])]
        elif params.get("FilterVariable") == "MLModelId" and params.get("EQ") is not None:
            items = [i for i in items if i.get("MLModelId") == params["EQ"]]
        elif params.get("FilterVariable") == "Bogus":
            raise InvalidInputException("FilterVariable Bogus is not valid")
        return {"Results": items}

    def describe_data_sources(self, _: RequestContext, **p: Any) -> dict[str, Any]:
        return self._describe("DataSource", **p)
    def describe_ml_models(self, _: RequestContext, **p: Any) -> dict[str, Any]: return self._describe("MLModel", **p)
    def describe_evaluations(self, _: RequestContext, **p: Any) -> dict[str, Any]:
        return self._describe("Evaluation", **p)
    def describe_batch_predictions(self, _: RequestContext, **p: Any) -> dict[str, Any]:
        return self._describe("BatchPrediction", **p)
    def get_data_source(self, _: RequestContext, DataSourceId: str, Verbose: bool = False) -> dict[str, Any]:
        return self._get("DataSource", DataSourceId)
    def get_ml_model(self, _: RequestContext, MLModelId: str, Verbose: bool = False) -> dict[str, Any]:
        return self._get("MLModel", MLModelId)
    def get_evaluation(self, _: RequestContext, EvaluationId: str) -> dict[str, Any]:
        return self._get("Evaluation", EvaluationId)
    def get_batch_prediction(self, _: RequestContext, BatchPredictionId: str) -> dict[str, Any]:
        return self._get("BatchPrediction", BatchPredictionId)

    def describe_tags(self, _: RequestContext, ResourceId: str, ResourceType: str) -> dict[str, Any]:
        return {"ResourceId": ResourceId, "ResourceType": ResourceType, "Tags": [{"Key": "team", "Value": "ml"}]}

    def update_data_source(self, _: RequestContext, DataSourceId: str, DataSourceName: str) -> dict[str, Any]:
        self.calls.append(("update_data_source", {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName}))
        self.entities["DataSource"][DataSourceId]["Name"] = DataSourceName
        return {"DataSourceId": DataSourceId}

    def delete_evaluation(self, _: RequestContext, EvaluationId: str) -> dict[str, Any]:
        self.calls.append(("delete_evaluation", {"EvaluationId": EvaluationId}))
        self._get("Evaluation", EvaluationId)
        self.entities["Evaluation"].pop(EvaluationId)
        return {"EvaluationId": EvaluationId}

    def update_ml_model(self, _: RequestContext, MLModelId: str, ScoreThreshold: float | None = None,
                        **others: Any) -> dict[str, Any]:
        self.calls.append(("update_ml_model", {"MLModelId": MLModelId, "ScoreThreshold": ScoreThreshold}))
        if ScoreThreshold is not None and not 0 <= ScoreThreshold <= 1:
            raise InvalidInputException("ScoreThreshold must be a number between 0 and 1")
        self.entities["MLModel"][MLModelId]["ScoreThreshold"] = ScoreThreshold
        return {"MLModelId": MLModelId}


@pytest.fixture
def fake(tmp_path: Path) -> FakeService:
    return FakeService(tmp_path)


@pytest.fixture
def client(world: FakeService) -> Iterator[TestClient]:
    """The console over the FakeService of the module's `world` fixture."""
    app = Starlette(routes=[Mount("/console", build_console(world, world.port))])
    with TestClient(app, base_url="http://testserver") as c:
        yield c


CHROMIUM = shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (the browser tests skip without one: test_browser.pytestmark)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
