"""A datasource's copy of its selected records: DATA_FILE, or the part files that a read in
partitions wrote, listed in PARTS_FILE."""

from __future__ import annotations

from openaml.storage import Artifacts
from openaml.store import EntityKind

DATA_FILE = "data.arrows"
PARTS_FILE = "parts.json"  # a datasource read in partitions: {"parts": [its data files, in order]}


def data_file_names(artifacts: Artifacts, source_id: str) -> list[str]:
    """The names of a datasource's data files, in order."""
    kind = EntityKind.DATASOURCE.value
    if not artifacts.exists(kind, source_id, PARTS_FILE):
        return [DATA_FILE]  # written before data files were listed
    return list(artifacts.read_json(kind, source_id, PARTS_FILE)["parts"])


def part_file(index: int) -> str:
    """The data file of partition `index` of a datasource read in partitions."""
    return f"data-{index:05d}.arrows"
