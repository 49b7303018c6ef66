"""Every id the API's pattern admits works end to end, including '.', '..' and '.tmp-*'."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from openaml.server.embedded import running_server
from openaml.storage.artifacts import ArtifactStore, storage_name
from tests.api.conftest import make_client, wait_for
from tests.api.test_workflow import make_rows, schema, to_csv

ODD_IDS = [".", "..", ".tmp-x", "...", "a..b", "-", "_"]


@pytest.mark.parametrize("entity_id", ODD_IDS)
def test_storage_names_are_plain_and_distinct(entity_id: str, tmp_path: Path) -> None:
    name = storage_name(entity_id)
    assert name not in (".", "..") and not name.startswith(".tmp-") and "/" not in name
    artifacts = ArtifactStore(tmp_path)
    with artifacts.open_write("MLModel", entity_id, "model.bin") as out:
        out.write(entity_id.encode())
    assert artifacts.path_for("MLModel", entity_id, "model.bin").parent.parent == tmp_path / "MLModel"


def test_storage_names_never_collide() -> None:
    ids = [*ODD_IDS, "2E", "_2E", ".2E", "tmp-x"]
    assert len({storage_name(i) for i in ids}) == len(ids)
    with pytest.raises(ValueError):
        storage_name("%2E")  # never an id, so never the name of another id


def test_dot_ids_run_every_job_and_survive_a_restart(tmp_path: Path) -> None:
    header, rows = make_rows("BINARY", 120, seed=1)
    with running_server(data_dir=tmp_path, workers=1) as app:
        app.context.objects.write_bytes("s3://dots/data.csv", to_csv(header, rows))
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId=".", ComputeStatistics=True, DataSpec={
            "DataLocationS3": "s3://dots/data.csv", "DataSchema": schema("BINARY")})
        ml.create_ml_model(MLModelId="..", MLModelType="BINARY", TrainingDataSourceId=".")
        ml.create_evaluation(EvaluationId=".tmp-x", MLModelId="..", EvaluationDataSourceId=".")
        ml.create_batch_prediction(BatchPredictionId="..", MLModelId="..",
                                   BatchPredictionDataSourceId=".", OutputUri="s3://dots/out/")
        for get in (lambda: ml.get_data_source(DataSourceId="."),
                    lambda: ml.get_ml_model(MLModelId=".."),
                    lambda: ml.get_evaluation(EvaluationId=".tmp-x"),
                    lambda: ml.get_batch_prediction(BatchPredictionId="..")):
            assert wait_for(get, timeout=60)["Status"] == "COMPLETED"
        ml.create_data_source_from_s3(DataSourceId=".tmp-after", DataSpec={
            "DataLocationS3": "s3://dots/data.csv", "DataSchema": schema("BINARY")})
        assert wait_for(lambda: ml.get_data_source(DataSourceId=".tmp-after"))["Status"] == "COMPLETED"
        for get in (lambda: ml.get_ml_model(MLModelId=".."), lambda: ml.get_data_source(DataSourceId="."),
                    lambda: ml.get_evaluation(EvaluationId=".tmp-x")):
            found = get()
            log = httpx.get(found["LogUri"], timeout=10)
            assert log.status_code == 200 and ": COMPLETED" in log.text, found["LogUri"]
    with running_server(data_dir=tmp_path, workers=1) as app:  # the restart works
        ml = make_client(app.settings.base_url)
        assert ml.get_ml_model(MLModelId="..")["Status"] == "COMPLETED"
        ml.create_data_source_from_s3(DataSourceId="after-restart", DataSpec={
            "DataLocationS3": "s3://dots/data.csv", "DataSchema": schema("BINARY")})
        assert wait_for(lambda: ml.get_data_source(DataSourceId="after-restart"))["Status"] == "COMPLETED"
