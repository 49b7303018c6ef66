"""ArtifactStore: layout, name checks, atomic writes, removal."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openaml.storage import ArtifactStore


def test_layout_is_kind_entity_name(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert (
        store.path_for("mlmodels", "ml-abc.1_x", "model.bin")
        == tmp_path / "mlmodels" / "ml-abc.1_x" / "model.bin"
    )


@pytest.mark.parametrize(
    ("kind", "entity_id", "name"),
    [
        ("..", "ds-1", "data.parquet"),
        ("datasources", "ds-1", ".."),
        ("datasources", "ds/1", "data.parquet"),
        ("datasources", "ds-1", "../../etc/passwd"),
        ("datasources", "ds-1", ""),
        ("datasources", "ds-1", "a\\b"),
        ("datasources", "ds-1", ".tmp-abc"),
        ("/abs", "ds-1", "x"),
        ("datasources", "x" * 129, "x"),
    ],
)
def test_path_parts_must_be_plain_names(
    tmp_path: Path, kind: str, entity_id: str, name: str
) -> None:
    with pytest.raises(ValueError, match="invalid"):
        ArtifactStore(tmp_path).path_for(kind, entity_id, name)


@pytest.mark.parametrize("entity_id", ["..", ".", ".tmp-abc"])
def test_ids_that_are_special_names_get_a_plain_folder(tmp_path: Path, entity_id: str) -> None:
    path = ArtifactStore(tmp_path).path_for("datasources", entity_id, "data.parquet")
    assert path.parent.parent == tmp_path / "datasources"
    assert path.parent.name.startswith("%2E")


def test_atomic_write_and_failed_write(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert not store.exists("evaluations", "ev-1", "report.json")
    with store.open_write("evaluations", "ev-1", "report.json") as stream:
        stream.write(b"{}")
        assert not store.exists("evaluations", "ev-1", "report.json")
    with pytest.raises(RuntimeError):
        with store.open_write("evaluations", "ev-1", "report.json") as stream:
            stream.write(b'{"half')
            raise RuntimeError("failed")
    with store.open_read("evaluations", "ev-1", "report.json") as stream:
        assert stream.read() == b"{}"
    assert os.listdir(tmp_path / "evaluations" / "ev-1") == ["report.json"]


def test_missing_artifact_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ArtifactStore(tmp_path).open_read("mlmodels", "ml-1", "model.bin")


def test_parquet_round_trip_through_writer(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    table = pa.table({"__file": pa.array([0, 0, 1], pa.int32()), "a": ["x", None, "z"]})
    with store.open_write("datasources", "ds-1", "data.parquet") as sink:
        pq.write_table(table, sink)
    assert pq.read_table(store.path_for("datasources", "ds-1", "data.parquet")).equals(table)


def test_appends_add_at_the_end(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    for line in (b"one\n", b"two\n"):
        with store.open_append("logs", "ds-1", "job.log") as log:
            log.write(line)
    assert store.path_for("logs", "ds-1", "job.log").read_bytes() == b"one\ntwo\n"


def test_json_documents_round_trip_as_the_json_module_reads_them(tmp_path: Path) -> None:
    """write_json/read_json keep what json.dumps/json.loads kept: NumPy numbers as numbers
    (not their str), integer keys as strings, unknown objects as their str."""
    import json

    import numpy as np

    store = ArtifactStore(tmp_path)
    document = {"n": np.int64(3), "x": np.float64(0.1), "a": np.arange(3), "k": {1: "one"},
                "nested": [{"f": 1.5e-300, "s": "é\u2028"}], "other": Path("p")}
    store.write_json("datasources", "ds-1", "doc.json", document)
    expected = json.loads(json.dumps({**document, "n": 3, "x": 0.1, "a": [0, 1, 2]}, default=str))
    assert store.read_json("datasources", "ds-1", "doc.json") == expected


def test_json_documents_written_by_the_json_module_with_nan_still_read(tmp_path: Path) -> None:
    """Earlier versions wrote with the json module, which writes NaN (not JSON, which orjson
    refuses): such a stored document still reads."""
    import math

    store = ArtifactStore(tmp_path)
    with store.open_write("evaluations", "ev-1", "report.json") as out:
        out.write(b'{"auc": NaN, "n": 2}')
    found = store.read_json("evaluations", "ev-1", "report.json")
    assert math.isnan(found["auc"]) and found["n"] == 2
    with pytest.raises(FileNotFoundError):
        store.read_json("evaluations", "ev-2", "report.json")


def test_temporary_files_of_other_writers_are_kept_until_stale(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    writers = [store.open_write("MLModel", name, "model.bin") for name in ("fresh", "stale")]
    for writer in writers:
        writer.write(b"partial")
    fresh, stale = (next(store.path_for("MLModel", name, "x").parent.glob(".tmp-*")) for name in ("fresh", "stale"))
    os.utime(stale, (1, 1))
    assert store.remove_temporary_files(idle_seconds=3600) == 1
    assert fresh.exists() and not stale.exists()
    assert store.remove_temporary_files() == 1 and not fresh.exists()


@pytest.mark.parametrize("store", ["artifacts", "objects"])
def test_a_large_local_write_stops_while_its_disk_is_nearly_full(tmp_path: Path, store: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2 MB gzip file made a 2.7 GB copy per datasource until the disk was full: a local
    write looks at the free space every SPACE_CHECK_BYTES and stops below DISK_RESERVE, leaving
    nothing behind; small writes never look."""
    import shutil

    from openaml.storage import LocalObjectStore, objects

    monkeypatch.setattr(objects, "SPACE_CHECK_BYTES", 1000)
    free = shutil.disk_usage(tmp_path).free

    def writer() -> Any:
        if store == "artifacts":
            return ArtifactStore(tmp_path).open_write("DataSource", "ds-1", "data.arrows")
        (tmp_path / "bucket").mkdir(exist_ok=True)
        return LocalObjectStore(tmp_path).open_write("s3://bucket/out/result.csv")

    monkeypatch.setattr(objects, "DISK_RESERVE", free + (1 << 30))  # more than there is
    with writer() as out:
        out.write(b"x" * 999)  # under SPACE_CHECK_BYTES: not looked at
    with pytest.raises(objects.DiskFull, match="GiB free, less than the"), writer() as out:
        for _ in range(5):
            out.write(b"x" * 600)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "data.arrows" if store == "artifacts" else "result.csv"]  # the small one alone, no temporary file
    monkeypatch.setattr(objects, "DISK_RESERVE", 0)
    with writer() as out:
        out.write(b"x" * 5000)


@pytest.mark.parametrize("store", ["artifacts", "objects"])
@pytest.mark.parametrize("ending", ["closed", "aborted"])
def test_a_write_that_the_full_disk_ends_leaves_no_temporary_file(tmp_path: Path, store: str, ending: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk also fails the flush of the last bytes when the writer closes: the writer's
    clean-up closed the file first, failed the same way, and left the temporary file in the
    user's output folder until the next start."""
    import errno
    import io

    from openaml.storage import LocalObjectStore, objects

    class FullDisk(io.BufferedWriter):
        def close(self) -> None:
            super().close()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(io.FileIO(fd, "w")))
    if store == "artifacts":
        writer = ArtifactStore(tmp_path).open_write("DataSource", "ds-1", "data.arrows")
    else:
        (tmp_path / "bucket").mkdir()
        writer = LocalObjectStore(tmp_path).open_write("s3://bucket/out/result.csv")
    with pytest.raises(Exception) as raised:  # noqa: PT011 - which one depends on the ending
        with writer as out:
            out.write(b"x" * 5000)
            if ending == "aborted":
                raise RuntimeError("the job failed")
    assert objects.no_space_left(raised.value) is (ending == "closed")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_failed_copy_tells_the_sinks_error_and_nothing_writes_to_it_later(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The Arrow buffer in front of a datasource's copy flushed into its aborted writer as it
    was destroyed: an error inside a destructor, after which the interpreter failed elsewhere."""
    from openaml.ml.data.materialized import open_writer
    from openaml.storage import objects

    monkeypatch.setattr(objects, "SPACE_CHECK_BYTES", 1000)
    monkeypatch.setattr(objects, "DISK_RESERVE", 1 << 62)
    batch = pa.record_batch({"x": pa.array(["y" * 100] * 1000)})
    with pytest.raises(objects.DiskFull, match="GiB free"):  # through Arrow, whose flush fails
        with ArtifactStore(tmp_path).open_write("DataSource", "ds-1", "data.arrows") as sink, \
                open_writer(sink, batch.schema) as writer:
            for _ in range(5):
                writer.write_batch(batch)
    assert not list(tmp_path.rglob("*.arrows")) and not list(tmp_path.rglob(".tmp-*"))
    aborted = ArtifactStore(tmp_path).open_write("DataSource", "ds-2", "data.arrows")
    aborted.abort()
    assert aborted.write(b"late") == 4  # dropped
    done = ArtifactStore(tmp_path).open_write("DataSource", "ds-3", "data.arrows")
    done.close()
    with pytest.raises(ValueError, match="closed"):
        done.write(b"late")


def test_job_logs_are_as_private_as_the_other_artifacts(tmp_path: Path) -> None:
    """Logs were created 0644 (a datasource's log shows its rejected lines), other artifacts 0600."""
    store = ArtifactStore(tmp_path)
    with store.open_append("DataSource", "ds-1", "job.log") as out:
        out.write(b"line\n")
    with store.open_append("DataSource", "ds-1", "job.log") as out:
        out.write(b"more\n")
    with store.open_write("DataSource", "ds-1", "ingest.json") as out:
        out.write(b"{}")
    for name in ("job.log", "ingest.json"):
        assert store.path_for("DataSource", "ds-1", name).stat().st_mode & 0o077 == 0, name
    assert store.path_for("DataSource", "ds-1", "job.log").read_bytes() == b"line\nmore\n"
