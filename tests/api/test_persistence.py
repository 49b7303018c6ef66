"""Everything survives a restart; jobs interrupted by a crash run again."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from openaml.jobs.engine import RERUN_NOTE
from openaml.server.embedded import running_server
from openaml.store import EntityKind, Status
from tests.api.conftest import make_client, wait_for
from tests.api.test_entities import CSV, SCHEMA


def test_entities_and_tags_survive_a_restart(tmp_path: Path) -> None:
    with running_server(data_dir=tmp_path) as app:
        app.context.objects.write_bytes("s3://keep/data.csv", CSV)
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId="kept", DataSourceName="kept one",
                                      DataSpec={"DataLocationS3": "s3://keep/data.csv",
                                                "DataSchema": SCHEMA}, ComputeStatistics=True)
        ml.add_tags(ResourceId="kept", ResourceType="DataSource", Tags=[{"Key": "k", "Value": "v"}])
        before = wait_for(lambda: ml.get_data_source(DataSourceId="kept", Verbose=True))
    with running_server(data_dir=tmp_path) as app:
        ml = make_client(app.settings.base_url)
        after = ml.get_data_source(DataSourceId="kept", Verbose=True)
        for member in ("Status", "Name", "DataSizeInBytes", "CreatedAt", "DataSourceSchema"):
            assert after[member] == before[member], member
        assert ml.describe_tags(ResourceId="kept", ResourceType="DataSource")["Tags"] == [
            {"Key": "k", "Value": "v"}]


def test_interrupted_job_runs_again(tmp_path: Path) -> None:
    with running_server(data_dir=tmp_path) as app:
        app.context.objects.write_bytes("s3://keep/data.csv", CSV)
        ml = make_client(app.settings.base_url)
        app.context.engine.stop()  # no worker picks the job up: it stays PENDING
        ml.create_data_source_from_s3(DataSourceId="crashed", DataSpec={
            "DataLocationS3": "s3://keep/data.csv", "DataSchema": SCHEMA})
        # Simulate a crash in the middle of the job.
        assert app.context.store.update(EntityKind.DATASOURCE, "crashed",
                                        {"status": Status.INPROGRESS, "started_at": 1},
                                        only_if=[Status.PENDING])
    with running_server(data_dir=tmp_path) as app:
        ml = make_client(app.settings.base_url)
        done = wait_for(lambda: ml.get_data_source(DataSourceId="crashed"))
        assert done["Status"] == "COMPLETED", done.get("Message")
        log = app.context.artifacts.path_for("DataSource", "crashed", "job.log").read_text()
        assert RERUN_NOTE in log


def test_a_restart_changes_no_models_last_updated_at(tmp_path: Path) -> None:
    """Mounting the READY endpoints again at start-up wrote each such model's LastUpdatedAt,
    so filters on it found models nobody had touched."""
    with running_server(data_dir=tmp_path) as app:
        app.context.objects.write_bytes("s3://keep/data.csv", CSV)
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId="ds", DataSpec={"DataLocationS3": "s3://keep/data.csv",
                                                                   "DataSchema": SCHEMA}, ComputeStatistics=True)
        ml.create_ml_model(MLModelId="served", MLModelType="BINARY", TrainingDataSourceId="ds")
        assert wait_for(lambda: ml.get_ml_model(MLModelId="served"))["Status"] == "COMPLETED"
        ml.create_realtime_endpoint(MLModelId="served")
        deadline = time.monotonic() + 60
        while (before := ml.get_ml_model(MLModelId="served"))["EndpointInfo"]["EndpointStatus"] != "READY":
            assert time.monotonic() < deadline, before["EndpointInfo"]
            time.sleep(0.05)
    with running_server(data_dir=tmp_path) as app:
        ml = make_client(app.settings.base_url)
        deadline = time.monotonic() + 60
        while not app.context.predictors.get("served") and time.monotonic() < deadline:  # mounted again
            time.sleep(0.05)
        answer = ml.predict(MLModelId="served", Record={"x": "3", "c": "b"},
                            PredictEndpoint=app.settings.base_url)
        assert answer["Prediction"]["predictedLabel"] in ("0", "1")
        after = ml.get_ml_model(MLModelId="served")
    assert after["EndpointInfo"]["EndpointStatus"] == "READY"
    assert after["LastUpdatedAt"] == before["LastUpdatedAt"]


def test_a_deleted_datasource_keeps_no_copy_of_its_records_once_no_job_reads_it(tmp_path: Path) -> None:
    """A soak that deleted everything after each workflow kept 1.2 GB of deleted datasources'
    copies in 40 minutes. The copy goes at deletion, or, while a job still to run or running
    may read it, at a start once none does; the record, its statistics and its log stay."""
    copy = ("DataSource", "ds", "data.arrows")
    with running_server(data_dir=tmp_path) as app:
        app.context.objects.write_bytes("s3://keep/data.csv", CSV)
        ml = make_client(app.settings.base_url)
        for name in ("ds", "other"):
            ml.create_data_source_from_s3(DataSourceId=name, ComputeStatistics=True, DataSpec={
                "DataLocationS3": "s3://keep/data.csv", "DataSchema": SCHEMA})
            assert wait_for(lambda: ml.get_data_source(DataSourceId=name))["Status"] == "COMPLETED"  # noqa: B023
        before = ml.get_data_source(DataSourceId="other", Verbose=True)
        ml.delete_data_source(DataSourceId="other")  # no job reads it: its copy goes now
        artifacts = app.context.artifacts
        assert not artifacts.exists("DataSource", "other", "data.arrows")
        assert artifacts.exists("DataSource", "other", "ingest.json") and artifacts.exists("DataSource", "other",
                                                                                             "job.log")
        after = ml.get_data_source(DataSourceId="other", Verbose=True)
        assert {k: v for k, v in after.items() if k not in ("Status", "LastUpdatedAt", "ResponseMetadata")} == {
            k: v for k, v in before.items() if k not in ("Status", "LastUpdatedAt", "ResponseMetadata")}
        app.context.engine.stop()  # the training below stays PENDING
        ml.create_ml_model(MLModelId="reads", MLModelType="BINARY", TrainingDataSourceId="ds")
        ml.delete_data_source(DataSourceId="ds")
        assert artifacts.exists(*copy)  # a job still to run reads it
    with running_server(data_dir=tmp_path) as app:  # the training fails: its datasource is DELETED
        ml = make_client(app.settings.base_url)
        assert wait_for(lambda: ml.get_ml_model(MLModelId="reads"))["Status"] == "FAILED"
    with running_server(data_dir=tmp_path) as app:  # no job reads it now
        deadline = time.monotonic() + 30
        while app.context.artifacts.exists(*copy):
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_health_tells_when_the_sqlite_file_is_removed_or_replaced_under_the_server(
        tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    """The server keeps answering from the database file it holds open, and what it knows is
    gone at the next start: /health says the store is not ok, and the log says why, once."""
    with running_server(data_dir=tmp_path, workers=1) as app:
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId="kept", DataSpec={
            "DataLocationS3": "s3://nowhere/data.csv", "DataSchema": SCHEMA})
        health = f"{app.settings.base_url}/health"
        assert httpx.get(health, timeout=10).json()["store"]["ok"] is True
        database = tmp_path / "openaml.db"
        if how == "removed":
            database.rename(tmp_path / "moved.db")
        else:  # a copy put in its place: another file
            shutil.copyfile(database, tmp_path / "copy.db")
            (tmp_path / "copy.db").replace(database)
        for _ in range(2):
            document = httpx.get(health, timeout=10).json()
            assert document["status"] == "degraded" and document["store"]["ok"] is False
        assert ml.get_data_source(DataSourceId="kept")["DataSourceId"] == "kept"  # still answering
    told = [r for r in caplog.records if "was removed or replaced while the server ran" in r.getMessage()]
    assert len(told) == 1 and str(database) in told[0].getMessage()


def test_a_server_started_without_its_database_warns_that_its_files_remain(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server started on a data folder whose database was removed started with an empty
    store, saying nothing, and overwrote the files of entities whose ids were used again."""
    with running_server(data_dir=tmp_path, workers=1) as app:
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_s3(DataSourceId="earlier", DataSpec={
            "DataLocationS3": "s3://nowhere/data.csv", "DataSchema": SCHEMA})
        wait_for(lambda: ml.get_data_source(DataSourceId="earlier"))
    warning = "holds no entity, but"
    assert warning not in caplog.text  # an empty data folder: nothing to say
    for name in ("openaml.db", "openaml.db-wal", "openaml.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    with running_server(data_dir=tmp_path, workers=1):
        pass
    told = [r.getMessage() for r in caplog.records if warning in r.getMessage()]
    assert len(told) == 1 and str(tmp_path / "artifacts") in told[0]
    with running_server(data_dir=tmp_path, workers=1) as app:
        make_client(app.settings.base_url).create_data_source_from_s3(DataSourceId="later", DataSpec={
            "DataLocationS3": "s3://nowhere/data.csv", "DataSchema": SCHEMA})
    caplog.clear()
    with running_server(data_dir=tmp_path, workers=1):  # once it holds an entity again: quiet
        pass
    assert warning not in caplog.text
