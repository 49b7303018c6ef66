"""Everything survives a restart; jobs interrupted by a crash run again."""

from __future__ import annotations

from pathlib import Path

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
