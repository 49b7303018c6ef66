"""What must hold after any crash: no temporary file, an intact store, whole outputs only."""

from __future__ import annotations

import gzip
import json
import sqlite3
import urllib.request
import zlib
from pathlib import Path

from openaml.storage import ObjectStore
from tests.faults.workload import API_KINDS, Workload

ARTIFACT_TEMP = ".tmp-"  # ArtifactStore's prefix, in DATA_DIR/artifacts/KIND/ID/
OBJECT_TEMP = ".openaml-tmp-"  # LocalObjectStore's prefix, under DATA_DIR/s3/


def temp_files(data_dir: Path) -> list[str]:
    """Temporary files of interrupted writes under a data directory."""
    found = [*(data_dir / "artifacts").rglob(ARTIFACT_TEMP + "*"),
             *(data_dir / "s3").rglob(OBJECT_TEMP + "*")]
    return sorted(str(path.relative_to(data_dir)) for path in found)


def integrity(database: Path) -> str:
    """SQLite's `PRAGMA integrity_check` of the store, read-only: "ok" when intact."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return "; ".join(str(row[0]) for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def output_problems(objects: ObjectStore, batch_id: str, output: str, completed: bool,
                    records: dict[str, int]) -> list[str]:
    """What is wrong with the visible output of one batch prediction: a result object that is
    not whole (gzip fails, or not one line per record plus the header), a manifest naming
    results that are not all whole, or (once COMPLETED) a missing result or manifest."""
    expected = {f"{output}batch-prediction/result/{batch_id}-{name}.gz": count
                for name, count in records.items()}
    problems: list[str] = []
    whole: set[str] = set()
    for info in objects.list(f"{output}batch-prediction/result/"):
        if info.uri not in expected:
            problems.append(f"{info.uri}: not a result of {batch_id}")
            continue
        try:
            lines = gzip.decompress(objects.read_bytes(info.uri)).decode().splitlines()
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
            problems.append(f"{info.uri}: partial: {err}")
            continue
        if len(lines) != 1 + expected[info.uri]:
            problems.append(f"{info.uri}: partial: {len(lines)} lines for {expected[info.uri]} records")
            continue
        whole.add(info.uri)
    manifest = f"{output}batch-prediction/{batch_id}.manifest"
    if objects.stat(manifest) is not None:
        listed = set(json.loads(objects.read_bytes(manifest)).values())
        if listed != set(expected) or not listed <= whole:
            problems.append(f"{manifest} names {sorted(listed)}, whole: {sorted(whole)}")
    elif completed:
        problems.append(f"{batch_id} is COMPLETED without {manifest}")
    if completed and whole != set(expected):
        problems.append(f"{batch_id} is COMPLETED with results {sorted(whole)}")
    return problems


def api_problems(workload: Workload) -> tuple[int, list[str]]:
    """Every entity asked for is readable through Get* and listed by Describe*; (count, problems)."""
    problems: list[str] = []
    checked = 0
    for api_kind in API_KINDS:
        wanted = workload.entities[api_kind]
        for entity_id in wanted:
            status = workload.status(api_kind, entity_id)
            checked += 1
            if status not in ("COMPLETED", "FAILED"):
                problems.append(f"{api_kind} {entity_id} is {status}")
        listed = workload.describe(api_kind)
        if sorted(listed) != sorted(wanted):
            problems.append(f"Describe {api_kind}: {sorted(listed)} for {sorted(wanted)}")
    return checked, problems


def statistics_problems(workload: Workload, url: str) -> list[str]:
    """A COMPLETED datasource asked for statistics has them, in its stored report."""
    problems: list[str] = []
    for source in sorted(workload.with_statistics):
        if workload.status("DataSource", source) != "COMPLETED":
            continue
        with urllib.request.urlopen(f"{url}/reports/DataSource/{source}", timeout=30) as answer:
            report = json.load(answer)
        if not report.get("statistics"):
            problems.append(f"DataSource {source} is COMPLETED without statistics")
    return problems
