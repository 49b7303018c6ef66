"""The service's own files (materialized datasources, statistics, models, evaluation reports,
job logs), named KIND/ENTITY_ID/NAME: `Artifacts` is what the service asks of them.

`ArtifactStore` keeps them on local disk under a root (the default: DATA_DIR/artifacts), with
atomic replacement on write. Several front ends, or Dask workers, on other machines share them
through a shared file system, or keep them in an object store instead
(`object_artifacts.ObjectArtifactStore`, `--artifacts-uri s3://...`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from openaml.storage.objects import replacing_file

# Entity IDs are `[a-zA-Z0-9_.-]+` in the service model; every part is one plain path component.
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_TEMP_PREFIX = ".tmp-"
# An id that is no safe folder name ('.', '..', '.tmp-*') is stored with its leading dot written
# as `%2E`: '%' never occurs in an id, so the mapping is one-to-one and other ids keep their name.
_ESCAPED_DOT = "%2E"


class Artifacts(ABC):
    """The service's files by kind, entity and name. A write replaces the artifact when closed
    cleanly and leaves it untouched if the `with` block raises; a read of a missing artifact
    raises FileNotFoundError."""

    @abstractmethod
    def exists(self, kind: str, entity_id: str, name: str) -> bool: ...

    @abstractmethod
    def open_read(self, kind: str, entity_id: str, name: str) -> BinaryIO: ...

    @abstractmethod
    def open_write(self, kind: str, entity_id: str, name: str) -> BinaryIO: ...

    @abstractmethod
    def open_append(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """A writer of what to add at the end (job logs grow while the job runs)."""

    @abstractmethod
    def remove(self, kind: str, entity_id: str, name: str) -> None:
        """Delete the artifact, if there is one (not an appended one)."""

    @abstractmethod
    def holds_entities(self) -> bool:
        """Whether any entity has files here."""

    def remove_temporary_files(self, idle_seconds: float | None = None) -> int:
        """Delete what writes interrupted by a crash left behind; how many files (none here)."""
        return 0

    def source(self, kind: str, entity_id: str, name: str) -> Path | BinaryIO:
        """What an Arrow reader reads the artifact from best: a stream (here), or a path."""
        return self.open_read(kind, entity_id, name)

    def write_json(self, kind: str, entity_id: str, name: str, document: Any) -> None:
        """Replace the artifact with `document` as compact JSON (NumPy scalars and arrays as
        numbers, other unknown objects as their str). By orjson: a datasource's statistics
        (about 1 MB of sketches) took 35 ms by the json module, 3 ms so."""
        with self.open_write(kind, entity_id, name) as out:
            out.write(orjson.dumps(document, default=str,
                                   option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))

    def read_json(self, kind: str, entity_id: str, name: str) -> Any:
        """The JSON document of the artifact; FileNotFoundError when it was never written."""
        with self.open_read(kind, entity_id, name) as stream:
            text = stream.read()
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # written by an earlier version: NaN was written as NaN
            return json.loads(text)


class ArtifactStore(Artifacts):
    """Files of the service under a local folder, with atomic replacement on write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, kind: str, entity_id: str, name: str) -> Path:
        """The file for one artifact; each part must be a plain name (ValueError otherwise)."""
        return self.root.joinpath(*artifact_parts(kind, entity_id, name))

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
        return replacing_file(target, _TEMP_PREFIX, self.root)  # type: ignore[return-value]

    def source(self, kind: str, entity_id: str, name: str) -> Path:
        """The artifact's path: Arrow reads the file itself."""
        return self.path_for(kind, entity_id, name)

    def remove(self, kind: str, entity_id: str, name: str) -> None:
        self.path_for(kind, entity_id, name).unlink(missing_ok=True)

    def open_append(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """Open for appending, creating it when missing."""
        target = self.path_for(kind, entity_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        # private as every other artifact (mkstemp's 0600): a datasource's log shows rejected lines
        return os.fdopen(os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")

    def holds_entities(self) -> bool:
        kinds = self.root.iterdir() if self.root.is_dir() else iter(())
        return any(kind.is_dir() and any(entity.is_dir() and any(f.is_file() for f in entity.iterdir())
                                         for entity in kind.iterdir()) for kind in kinds)

    def remove_temporary_files(self, idle_seconds: float | None = None) -> int:
        """Delete the temporary files that writes left behind when the process died mid-write
        (at start-up, before any job runs here), or only those unchanged for `idle_seconds`
        (other front ends may be writing the others); returns how many were removed."""
        return remove_files(self.root.glob(f"*/*/{_TEMP_PREFIX}*"), idle_seconds)


def remove_files(paths: Iterable[Path], idle_seconds: float | None = None) -> int:
    """Delete the regular files (not links) among `paths`, or those unchanged for
    `idle_seconds`; how many."""
    removed = 0
    limit = None if idle_seconds is None else time.time() - idle_seconds
    for path in paths:
        with contextlib.suppress(OSError):
            found = path.lstat()
            if stat.S_ISREG(found.st_mode) and (limit is None or found.st_mtime < limit):
                path.unlink()
                removed += 1
    return removed


def storage_name(entity_id: str) -> str:
    """The folder name of an entity id: the id itself, or with an escaped leading dot where the
    id would be a special or temporary name ('.', '..', '.tmp-*'). ValueError for a non-id."""
    if not isinstance(entity_id, str) or not _COMPONENT.fullmatch(entity_id):
        raise ValueError(f"invalid entity id {entity_id!r}: expected 1-128 letters, digits, '_', '.' or '-'")
    if entity_id in (".", "..") or entity_id.startswith(_TEMP_PREFIX):
        return _ESCAPED_DOT + entity_id[1:]
    return entity_id


def artifact_parts(kind: str, entity_id: str, name: str) -> tuple[str, str, str]:
    """The folder names and file name an artifact is stored under (ValueError for a kind or
    name that is no plain name, or an entity id that is no id)."""
    return _component(kind, "artifact kind"), storage_name(entity_id), _component(name, "artifact name")


def _component(value: str, what: str) -> str:
    plain = isinstance(value, str) and _COMPONENT.fullmatch(value) and value not in (".", "..")
    if not plain or value.startswith(_TEMP_PREFIX):
        raise ValueError(
            f"invalid {what} {value!r}: expected 1-128 letters, digits, '_', '.' or '-'"
            " (not '.', '..' or a name starting with '.tmp-')"
        )
    return value
