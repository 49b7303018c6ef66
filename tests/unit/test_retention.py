"""The files of a deleted datasource's copy of its records (jobs/retention.py)."""

from __future__ import annotations

from pathlib import Path

from openaml.jobs.data_copy import DATA_FILE, PARTS_FILE, part_file
from openaml.jobs.retention import data_files
from openaml.storage import ArtifactStore


def test_the_copy_is_its_data_file_or_the_parts_listed_and_never_the_statistics_or_log(tmp_path: Path) -> None:
    artifacts = ArtifactStore(tmp_path)
    for name in ("ingest.json", "job.log", DATA_FILE):
        with artifacts.open_write("DataSource", "whole", name) as out:
            out.write(b"x")
    assert data_files(artifacts, "whole") == [DATA_FILE]
    parts = [part_file(k) for k in range(3)]
    artifacts.write_json("DataSource", "parted", PARTS_FILE, {"parts": parts})
    for name in ("ingest.json", *parts[:2]):  # the last part was never written
        with artifacts.open_write("DataSource", "parted", name) as out:
            out.write(b"x")
    assert data_files(artifacts, "parted") == [*parts[:2], PARTS_FILE]
    assert data_files(artifacts, "none") == []
