"""A DELETED entity keeps all its fields (api-behavior.md §5, models.md §7): the results its job
had are still in Get* and in Describe* with Status=DELETED; one deleted before it completed has
none."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from openaml.app import Application
from tests.api.conftest import XCY_CSV, XCY_SCHEMA, wait_for

SCHEMA, CSV = XCY_SCHEMA, XCY_CSV
RESULTS = {  # what a job gives each kind, besides StartedAt and FinishedAt
    "DataSource": {"ComputeTime", "DataSizeInBytes", "NumberOfFiles"},
    "MLModel": {"ComputeTime", "SizeInBytes"},
    "Evaluation": {"ComputeTime", "PerformanceMetrics"},
    "BatchPrediction": {"ComputeTime", "TotalRecordCount", "InvalidRecordCount"},
}


class Family:
    """One entity family's Get, Delete and Describe calls."""

    def __init__(self, ml: Any, kind: str, snake: str, verbose: bool) -> None:
        self.ml, self.kind, self.snake, self.verbose = ml, kind, snake, verbose
        self.key = f"{kind}Id"

    def get(self, entity_id: str) -> dict[str, Any]:
        answer = getattr(self.ml, f"get_{self.snake}")(**{self.key: entity_id},
                                                       **({"Verbose": True} if self.verbose else {}))
        answer.pop("ResponseMetadata")
        return dict(answer)

    def delete(self, entity_id: str) -> None:
        getattr(self.ml, f"delete_{self.snake}")(**{self.key: entity_id})

    def described(self, entity_id: str, **query: str) -> dict[str, Any]:
        pages = self.ml.get_paginator(f"describe_{self.snake}s").paginate(**query)
        found = [r for page in pages for r in page["Results"] if r[self.key] == entity_id]
        assert len(found) == 1, (self.kind, entity_id, query)
        return dict(found[0])


def families(ml: Any) -> list[Family]:
    return [Family(ml, "DataSource", "data_source", True), Family(ml, "MLModel", "ml_model", True),
            Family(ml, "Evaluation", "evaluation", False), Family(ml, "BatchPrediction", "batch_prediction", False)]


def create_all(ml: Any, uid: Callable[[str], str], uri: str, stem: str) -> list[str]:
    """A datasource with statistics, a BINARY model of it, its evaluation and batch prediction,
    named `stem`-KIND; their ids."""
    ids = [uid("ds"), uid("ml"), uid("ev"), uid("bp")]
    ml.create_data_source_from_s3(DataSourceId=ids[0], DataSourceName=f"{stem}-DataSource", ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": uri, "DataSchema": SCHEMA})
    ml.create_ml_model(MLModelId=ids[1], MLModelName=f"{stem}-MLModel", MLModelType="BINARY",
                       TrainingDataSourceId=ids[0])
    ml.create_evaluation(EvaluationId=ids[2], EvaluationName=f"{stem}-Evaluation", MLModelId=ids[1],
                         EvaluationDataSourceId=ids[0])
    ml.create_batch_prediction(BatchPredictionId=ids[3], BatchPredictionName=f"{stem}-BatchPrediction",
                               MLModelId=ids[1], BatchPredictionDataSourceId=ids[0],
                               OutputUri=f"s3://deleted/{stem}/out/")
    return ids


def test_deleted_entities_keep_the_results_they_had(
    ml: Any, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]
) -> None:
    uri = put_object(f"s3://deleted/{uid('d')}.csv", CSV)
    stem = uid("done")
    ids = create_all(ml, uid, uri, stem)
    for family, entity_id in zip(families(ml), ids, strict=True):
        assert wait_for(partial(family.get, entity_id))["Status"] == "COMPLETED"
    model = ids[1]
    ml.update_ml_model(MLModelId=model, ScoreThreshold=0.25)
    ml.create_realtime_endpoint(MLModelId=model)
    for _ in range(200):
        if ml.get_ml_model(MLModelId=model)["EndpointInfo"]["EndpointStatus"] != "UPDATING":
            break
        time.sleep(0.05)
    before = {}
    for family, entity_id in zip(families(ml), ids, strict=True):
        got = family.get(entity_id)
        assert RESULTS[family.kind] | {"StartedAt", "FinishedAt"} <= set(got), (family.kind, got)
        before[family.kind] = (got, family.described(entity_id, FilterVariable="Name",
                                                     EQ=f"{stem}-{family.kind}"))
    assert before["MLModel"][0]["EndpointInfo"]["EndpointStatus"] == "READY"
    assert {"Recipe", "Schema", "ScoreThresholdLastUpdatedAt"} <= set(before["MLModel"][0])
    assert "DataSourceSchema" in before["DataSource"][0]
    for family, entity_id in zip(families(ml), ids, strict=True):
        family.delete(entity_id)
    for family, entity_id in zip(families(ml), ids, strict=True):
        for shown, earlier in ((family.get(entity_id), before[family.kind][0]),
                               (family.described(entity_id, FilterVariable="Status", EQ="DELETED"),
                                before[family.kind][1])):
            assert shown["Status"] == "DELETED"
            assert shown["LastUpdatedAt"] >= earlier["LastUpdatedAt"]
            if family.kind == "MLModel":
                assert shown.pop("EndpointInfo") == {"EndpointStatus": "NONE", "PeakRequestsPerSecond": 0}
                earlier = {k: v for k, v in earlier.items() if k != "EndpointInfo"}
            changed = {"Status", "LastUpdatedAt"}
            assert {k: v for k, v in shown.items() if k not in changed} == {
                k: v for k, v in earlier.items() if k not in changed}, family.kind


def test_entities_deleted_before_they_completed_have_no_results(
    ml: Any, server: Application, uid: Callable[[str], str], put_object: Callable[[str, bytes], str]
) -> None:
    uri = put_object(f"s3://deleted/{uid('d')}.csv", CSV)
    failed = uid("ds")
    server.context.engine.pause()
    try:
        ids = create_all(ml, uid, uri, uid("pending"))
        for family, entity_id in reversed(list(zip(families(ml), ids, strict=True))):
            family.delete(entity_id)
        ml.create_data_source_from_s3(DataSourceId=failed, ComputeStatistics=True,
                                      DataSpec={"DataLocationS3": "s3://deleted/absent.csv", "DataSchema": SCHEMA})
    finally:
        server.context.engine.resume()
    for family, entity_id in zip(families(ml), ids, strict=True):
        for shown in (family.get(entity_id), family.described(entity_id, FilterVariable="Status", EQ="DELETED")):
            assert shown["Status"] == "DELETED"
            assert not (RESULTS[family.kind] | {"StartedAt", "FinishedAt", "Message"}) & set(shown), shown
    family = families(ml)[0]
    assert wait_for(lambda: family.get(failed))["Status"] == "FAILED"
    family.delete(failed)
    shown = family.get(failed)
    assert shown["Status"] == "DELETED"
    assert {"Message", "StartedAt", "FinishedAt"} <= set(shown)  # kept from its FAILED run
    assert not RESULTS["DataSource"] & set(shown), shown
