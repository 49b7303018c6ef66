"""Artifacts in an object store (--artifacts-uri), on the local folder store and on S3 (moto):
what the service does with artifacts on disk works the same there."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pytest

from openaml.app import check_artifacts_location
from openaml.ml.data import read_materialized
from openaml.ml.data.materialized import open_writer
from openaml.settings import ConfigurationError
from openaml.storage import Artifacts, ArtifactStore, ObjectArtifactStore, ObjectStore, S3ObjectStore
from openaml.storage.object_artifacts import merged


@pytest.fixture(params=["disk", "objects"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path,
              store_and_bucket: tuple[ObjectStore, str]) -> Artifacts:
    if request.param == "disk":
        return ArtifactStore(tmp_path / "artifacts")
    objects, bucket = store_and_bucket
    return ObjectArtifactStore(objects, f"s3://{bucket}/service/artifacts")


def test_written_artifacts_are_read_back_and_missing_ones_are_not_found(artifacts: Artifacts) -> None:
    with artifacts.open_write("MLModel", "m-1", "model.bin") as out:
        out.write(b"weights")
    artifacts.write_json("DataSource", "d.1", "ingest.json", {"rows": 3, "nan": float("nan")})
    with artifacts.open_read("MLModel", "m-1", "model.bin") as stream:
        assert stream.read() == b"weights"
    assert artifacts.read_json("DataSource", "d.1", "ingest.json") == {"rows": 3, "nan": None}
    assert artifacts.exists("MLModel", "m-1", "model.bin") and not artifacts.exists("MLModel", "m-2", "model.bin")
    with pytest.raises(FileNotFoundError):
        artifacts.open_read("MLModel", "m-2", "model.bin")
    with pytest.raises(FileNotFoundError):
        artifacts.read_json("MLModel", "m-1", "report.json")
    with pytest.raises(ValueError, match="invalid"):
        artifacts.open_read("MLModel", "../m-1", "model.bin")


def test_a_write_that_fails_leaves_the_artifact_as_it_was(artifacts: Artifacts) -> None:
    artifacts.write_json("Evaluation", "e", "report.json", {"version": 1})
    with pytest.raises(RuntimeError), artifacts.open_write("Evaluation", "e", "report.json") as out:
        out.write(b"{partial")
        raise RuntimeError("the job failed mid-write")
    assert artifacts.read_json("Evaluation", "e", "report.json") == {"version": 1}


def test_appends_of_several_writers_are_read_in_time_order(artifacts: Artifacts,
                                                           store_and_bucket: tuple[ObjectStore, str]) -> None:
    """Two processes (a front end and a Dask worker) append to one job log."""
    other = (artifacts if isinstance(artifacts, ArtifactStore)
             else ObjectArtifactStore(store_and_bucket[0], f"s3://{store_and_bucket[1]}/service/artifacts"))
    lines = [(artifacts, b"2026-12-05T10:00:00.000001Z started\n"),
             (other, b"2026-12-05T10:00:00.000002Z running on a worker\n"),
             (other, b"2026-12-05T10:00:01.000000Z Traceback (most recent call last):\n  File x\nValueError\n"),
             (artifacts, b"2026-12-05T10:00:02.000000Z FAILED\n")]
    for writer, line in lines:
        with writer.open_append("MLModel", "m", "job.log") as out:
            out.write(line)
    with artifacts.open_read("MLModel", "m", "job.log") as stream:
        assert stream.read() == b"".join(line for _, line in lines)


@pytest.mark.parametrize("entity_id", [".", "..", ".tmp-x", "a.b-c_d"])
def test_every_entity_id_has_artifacts_of_its_own(artifacts: Artifacts, entity_id: str) -> None:
    """Ids that are no safe file or key name ('.', '..') are stored under an escaped name."""
    artifacts.write_json("DataSource", entity_id, "ingest.json", {"id": entity_id})
    with artifacts.open_append("DataSource", entity_id, "job.log") as out:
        out.write(b"2026-12-05T10:00:00.000001Z line\n")
    assert artifacts.read_json("DataSource", entity_id, "ingest.json") == {"id": entity_id}
    assert artifacts.exists("DataSource", entity_id, "job.log")
    for other in {".", "..", ".tmp-x", "a.b-c_d"} - {entity_id}:
        assert not artifacts.exists("DataSource", other, "ingest.json")


def test_the_artifacts_location_is_checked_at_start_up(store_and_bucket: tuple[ObjectStore, str]) -> None:
    objects, bucket = store_and_bucket
    check_artifacts_location(objects, f"s3://{bucket}/service/")
    assert objects.list(f"s3://{bucket}/service/") == []  # the probe is gone
    if isinstance(objects, S3ObjectStore):  # the embedded store makes a bucket's folder on a write
        with pytest.raises(ConfigurationError, match="cannot be used"):
            check_artifacts_location(objects, "s3://no-such-bucket-here/service/")
    with pytest.raises(ConfigurationError, match="must be a folder"):
        check_artifacts_location(objects, f"s3://{bucket}/service")


def test_a_materialized_datasource_is_read_from_its_source(artifacts: Artifacts) -> None:
    schema = pa.schema([pa.field("x", pa.int64())])
    with artifacts.open_write("DataSource", "d", "data.arrows") as out, open_writer(out, schema) as writer:
        for start in range(0, 300, 100):
            writer.write_batch(pa.record_batch([pa.array(range(start, start + 100))], schema=schema))
    rows = [v for batch in read_materialized(artifacts.source("DataSource", "d", "data.arrows"))
            for v in batch.column(0).to_pylist()]
    assert rows == list(range(300))


def test_merging_keeps_entries_whole_and_parts_in_order_where_stamps_tie() -> None:
    first = b"2026-01-01T00:00:02Z b\n  more of b\n2026-01-01T00:00:01Z a\n"
    second = b"2026-01-01T00:00:02Z c\nno stamp at all\n"
    assert merged([first, second]) == (b"2026-01-01T00:00:01Z a\n2026-01-01T00:00:02Z b\n  more of b\n"
                                       b"2026-01-01T00:00:02Z c\nno stamp at all\n")
    assert merged([b"plain\n", b"text\n"]) == b"plain\ntext\n"
    assert io.BytesIO(merged([])).read() == b""


def test_a_read_artifact_can_seek_as_a_models_archive_does(artifacts: Artifacts) -> None:
    with artifacts.open_write("MLModel", "m", "model.bin") as out:
        out.write(b"0123456789")
    with artifacts.open_read("MLModel", "m", "model.bin") as stream:
        stream.seek(-4, io.SEEK_END)
        assert stream.read() == b"6789"
    with pytest.raises(FileNotFoundError):
        list(read_materialized(artifacts.source("DataSource", "none", "data.arrows")))


def test_artifacts_tell_whether_they_hold_files_of_any_entity(artifacts: Artifacts) -> None:
    assert not artifacts.holds_entities()
    artifacts.write_json("DataSource", "ds-1", "report.json", {"rows": 1})
    assert artifacts.holds_entities()
    artifacts.remove("DataSource", "ds-1", "report.json")
    assert not artifacts.holds_entities()
    artifacts.write_json("MLModel", "m.1", "model.json", {})
    assert artifacts.holds_entities()
