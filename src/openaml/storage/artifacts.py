"""ArtifactStore: the service's own files, kept as `root/KIND/ENTITY_ID/NAME` on local disk.

Materialized datasources (Parquet), statistics JSON, model artifacts, evaluation reports and
job logs stay on the server's disk even when user data lives on S3: they are written and read
only by this server, often, and must survive restarts with the metadata store beside them.
Conventional kinds: `datasources`, `mlmodels`, `evaluations`, `batchpredictions`, `logs`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from openaml.storage.objects import CommittingWriter

# Entity IDs are `[a-zA-Z0-9_.-]+` in the service model; every part is one plain path component.
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_TEMP_PREFIX = ".tmp-"


class ArtifactStore:
    """Files of the service under a data directory, with atomic replacement on write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, kind: str, entity_id: str, name: str) -> Path:
        """The file for one artifact; each part must be a plain name (ValueError otherwise)."""
        return self._folder(kind, entity_id) / _component(name, "artifact name")

    def exists(self, kind: str, entity_id: str, name: str) -> bool:
        return self.path_for(kind, entity_id, name).is_file()

    def open_read(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """Open for reading; FileNotFoundError when the artifact was never written."""
        return open(self.path_for(kind, entity_id, name), "rb")

    def open_write(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """A writer that replaces the artifact when closed cleanly, and leaves it untouched if
        the `with` block raises."""
        target = self.path_for(kind, entity_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
        sink = os.fdopen(handle, "wb")

        def commit() -> None:
            sink.close()
            os.replace(temp_name, target)

        def discard() -> None:
            sink.close()
            Path(temp_name).unlink(missing_ok=True)

        return CommittingWriter(sink, commit, discard)  # type: ignore[return-value]

    def open_append(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """Open for appending (job logs grow while the job runs), creating it when missing."""
        target = self.path_for(kind, entity_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "ab")

    def remove_tree(self, kind: str, entity_id: str) -> None:
        """Delete every artifact of one entity; nothing happens when there is none."""
        shutil.rmtree(self._folder(kind, entity_id), ignore_errors=True)

    def _folder(self, kind: str, entity_id: str) -> Path:
        return self.root / _component(kind, "artifact kind") / _component(entity_id, "entity id")


def _component(value: str, what: str) -> str:
    plain = isinstance(value, str) and _COMPONENT.fullmatch(value) and value not in (".", "..")
    if not plain or value.startswith(_TEMP_PREFIX):
        raise ValueError(
            f"invalid {what} {value!r}: expected 1-128 letters, digits, '_', '.' or '-'"
            " (not '.', '..' or a name starting with '.tmp-')"
        )
    return value
