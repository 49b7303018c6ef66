"""The service's artifacts in an object store (`--artifacts-uri s3://BUCKET/PREFIX/`), as
BASE/KIND/ENTITY_ID/NAME, for front ends and Dask workers that share no file system.

A write is an object store's write (nothing is visible before it is committed). An entity id
that is no safe key segment ('.', '..') is stored with its leading dot written as '~', which
no id contains and no store decodes. Objects cannot be appended to, so each process appends to
its own part of an artifact (NAME.parts/WRITER, rewritten whole at each append under a lock of
that part, held by this process alone), and a read of
an artifact that exists only in parts merges them: each part's entries (a line that starts with
a time stamp, and the lines after it that do not) in the order of their stamps, parts in the
order of their names where stamps are equal or missing. Job logs are written so.
"""

from __future__ import annotations

import io
import re
import threading
import uuid
from typing import BinaryIO

from openaml.storage.artifacts import Artifacts, artifact_parts
from openaml.storage.objects import CommittingWriter, ObjectStore
from openaml.storage.uris import ObjectNotFoundError, folder_uri, join_uri

PARTS = ".parts"
_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")


class ObjectArtifactStore(Artifacts):
    """Artifacts under the folder URI `base` of `objects`."""

    def __init__(self, objects: ObjectStore, base: str) -> None:
        self.objects, self.base = objects, folder_uri(base)
        self.writer = uuid.uuid4().hex  # this process's parts
        self._locks: dict[str, threading.Lock] = {}  # one per part: appends to one log wait for each other
        self._locks_lock = threading.Lock()

    def uri(self, kind: str, entity_id: str, name: str) -> str:
        kind_part, _, name_part = artifact_parts(kind, entity_id, name)
        return join_uri(self.base, kind_part, object_name(entity_id), name_part)

    def holds_entities(self) -> bool:
        return any(self.objects.list_level(kind, 1).folders for kind in self.objects.list_level(self.base, 100).folders)

    def exists(self, kind: str, entity_id: str, name: str) -> bool:
        uri = self.uri(kind, entity_id, name)
        return self.objects.stat(uri) is not None or bool(self.objects.list(folder_uri(uri + PARTS)))

    def open_read(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """The artifact read whole, in a seekable stream (a model's zip archive needs one)."""
        uri = self.uri(kind, entity_id, name)
        try:
            return io.BytesIO(self.objects.read_bytes(uri))
        except ObjectNotFoundError:
            parts = sorted(info.uri for info in self.objects.list(folder_uri(uri + PARTS)))
            if not parts:
                raise FileNotFoundError(f"no artifact {kind}/{entity_id}/{name}") from None
            return io.BytesIO(merged([self.objects.read_bytes(part) for part in parts]))

    def source(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        """The artifact as a stream, read as it is consumed (a materialized datasource)."""
        try:
            return self.objects.open_read(self.uri(kind, entity_id, name))
        except ObjectNotFoundError:
            raise FileNotFoundError(f"no artifact {kind}/{entity_id}/{name}") from None

    def open_write(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        return self.objects.open_write(self.uri(kind, entity_id, name))

    def remove(self, kind: str, entity_id: str, name: str) -> None:
        self.objects.delete(self.uri(kind, entity_id, name))

    def open_append(self, kind: str, entity_id: str, name: str) -> BinaryIO:
        part = join_uri(self.uri(kind, entity_id, name) + PARTS, self.writer)
        added = io.BytesIO()

        def commit() -> None:
            with self._locks_lock:
                lock = self._locks.setdefault(part, threading.Lock())
            with lock:
                try:
                    before = self.objects.read_bytes(part)
                except ObjectNotFoundError:
                    before = b""
                self.objects.write_bytes(part, before + added.getvalue())

        return CommittingWriter(added, commit, added.close)  # type: ignore[return-value]



def object_name(entity_id: str) -> str:
    """The key segment of an entity id: the id, or '~' for the leading dot of '.' and '..'."""
    return "~" + entity_id[1:] if entity_id in (".", "..") else entity_id


def merged(parts: list[bytes]) -> bytes:
    """The entries of `parts` in the order of their time stamps (stable: parts in their order)."""
    entries: list[tuple[bytes, int, int, bytes]] = []
    for number, part in enumerate(parts):
        stamp = b""
        for line in part.splitlines(keepends=True):
            found = _STAMP.match(line)
            if found or not entries or entries[-1][1] != number:
                stamp = found.group(0) if found else stamp
                entries.append((stamp, number, len(entries), line))
            else:
                last = entries[-1]
                entries[-1] = (last[0], last[1], last[2], last[3] + line)
    return b"".join(entry[3] for entry in sorted(entries))
