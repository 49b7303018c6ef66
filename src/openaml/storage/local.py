"""LocalObjectStore: `s3://BUCKET/KEY` as the file `root/BUCKET/KEY`, buckets being folders.

Besides the URI rules of `uris.py`, every path is checked after resolving symbolic links: its
real path must stay under the real root, so a link inside the root cannot lead out of it.
A write goes to a hidden temporary file in the target folder (prefix `.openaml-tmp-`, never
listed) and is renamed over the final name on close; writing into a bucket folder that does
not exist yet creates it, for convenience with the default local setup. A missing object or
data location is reported with the path looked at, so that a user can see where to copy it.
A key with a part ("/" to "/") longer than a file name can be (NAME_BYTES) names no object
here: reading finds none, and writing is refused with that reason.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any, BinaryIO

from openaml.storage.artifacts import remove_files
from openaml.storage.objects import (
    Level,
    ObjectInfo,
    ObjectStore,
    replacing_file,
    resolve_data_location,
)
from openaml.storage.uris import (
    ObjectNotFoundError,
    S3Uri,
    StorageError,
    bucket_name_problem,
    key_problem,
    parse_s3_uri,
    shown,
)

TEMP_PREFIX = ".openaml-tmp-"
NAME_BYTES = 255  # the longest file or folder name of the usual file systems (ext4, XFS, APFS)


class LocalObjectStore(ObjectStore):
    """Object storage on a local folder (the default back end, and the default for tests)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list(self, uri_prefix: str) -> builtins.list[ObjectInfo]:
        location = parse_s3_uri(uri_prefix)
        folder, _, rest = location.key.rpartition("/")
        base = folder + "/" if folder else ""
        if _long_part(base):
            return []
        start = self._path(S3Uri(location.bucket, base))
        if not start.is_dir():
            return []
        found: builtins.list[ObjectInfo] = []
        self._walk(start, location.bucket, base, rest, frozenset(), found)
        found.sort(key=lambda info: info.key.encode("utf-8"))
        return found

    def buckets(self) -> builtins.list[str]:
        """The root's folders whose names are bucket names (others are not addressable)."""
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return []
        return sorted(e.name for e in entries if e.is_dir() and bucket_name_problem(e.name) is None)

    def list_level(self, folder_uri: str, limit: int) -> Level:
        location = parse_s3_uri(folder_uri)
        if not location.is_prefix and location.key:
            raise StorageError(f"{shown(folder_uri)}: not a folder (its key must end with '/')")
        if _long_part(location.key):
            return Level([], [], False)
        try:
            entries = sorted(os.scandir(self._path(location)), key=lambda e: e.name.encode("utf-8"))
        except OSError:
            return Level([], [], False)
        folders: builtins.list[str] = []
        objects: builtins.list[ObjectInfo] = []
        for entry in entries:
            key = location.key + entry.name
            if entry.name.startswith(TEMP_PREFIX) or key_problem(key):
                continue
            if len(folders) + len(objects) >= limit:
                return Level(folders, objects, True)
            try:
                if entry.is_dir():
                    folders.append(f"s3://{location.bucket}/{key}/")
                elif entry.is_file():
                    objects.append(ObjectInfo(f"s3://{location.bucket}/{key}", key, entry.stat().st_size))
            except OSError:
                continue
        return Level(folders, objects, False)

    def stat(self, uri: str) -> ObjectInfo | None:
        location = parse_s3_uri(uri)
        if location.is_prefix or _long_part(location.key):
            return None
        path = self._path(location)
        try:
            if path.is_file():
                return ObjectInfo(str(location), location.key, path.stat().st_size)
        except OSError as err:
            raise StorageError(f"{shown(uri)}: {err.strerror}") from err
        return None

    def open_read(self, uri: str, start: int = 0, end: int | None = None) -> BinaryIO:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            raise ObjectNotFoundError(f"{shown(uri)}: no such object (the URI names a folder)")
        if (long := _long_part(location.key)) is not None:
            raise ObjectNotFoundError(f"{shown(uri)}: no such object ({long})")
        try:
            stream = open(self._path(location), "rb")  # noqa: SIM115 - the caller closes it
            stream.seek(start)
            return stream
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise ObjectNotFoundError(
                f"{shown(uri)}: no such object (no file {self._shown_path(location)})") from err
        except OSError as err:
            raise StorageError(f"{shown(uri)}: cannot read: {err.strerror}") from err

    def open_write(self, uri: str) -> BinaryIO:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            raise StorageError(f"{shown(uri)}: cannot write an object whose key ends with '/'")
        if (long := _long_part(location.key)) is not None:
            raise StorageError(f"{shown(uri)}: cannot write: {long}; choose a shorter name, or keep "
                               "the objects in an S3-compatible store")
        target = self._path(location)

        def refused(err: OSError) -> StorageError:
            return StorageError(f"{shown(uri)}: cannot write: {self._write_problem(location, err)}")

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._check_inside(target.parent, uri)
            return replacing_file(target, TEMP_PREFIX, self.root, refused)  # type: ignore[return-value]
        except OSError as err:
            raise refused(err) from err

    def delete(self, uri: str) -> None:
        """Remove the file, then any folders it leaves empty (the bucket folder stays)."""
        location = parse_s3_uri(uri)
        if location.is_prefix or _long_part(location.key):
            return
        path = self._path(location)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        except OSError as err:
            raise StorageError(f"{shown(uri)}: cannot delete: {err.strerror}") from err
        bucket = self._path(S3Uri(location.bucket, ""))
        folder = path.parent
        while folder != bucket and bucket in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def resolve_data_location(self, uri: str) -> builtins.list[ObjectInfo]:
        """As for every store; a location with no data file names the path looked at."""
        location = parse_s3_uri(uri)
        try:
            return resolve_data_location(self, uri)
        except StorageError as err:
            raise StorageError(f"{err}; the embedded object store looked at "
                               f"{self._shown_path(location)}") from None

    def describe(self) -> dict[str, Any]:
        """Reachable: the root is a folder this process may use, or one it may make (a fresh
        data folder has none until the first object is written)."""
        folder = self.root
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        reachable = folder.is_dir() and os.access(folder, os.R_OK | os.W_OK | os.X_OK)
        return {"kind": "local", "root": str(self.root), "reachable": reachable}

    def remove_temporary_files(self, idle_seconds: float | None = None) -> int:
        return remove_files(self.root.rglob(TEMP_PREFIX + "*"), idle_seconds)

    def _write_problem(self, location: S3Uri, err: OSError) -> str:
        """Why an object cannot be written, in S3's terms: a file on the way to it is an
        object (where S3 would keep both, a folder cannot hold a file's name), or a folder has
        its name; else the OS's words."""
        parts = location.key.split("/")
        for n in range(1, len(parts)):
            above = S3Uri(location.bucket, "/".join(parts[:n]))
            if self._path(above).is_file():
                return (f"{shown(str(above))} is an object, not a folder, so this embedded store cannot keep "
                        "objects under it; choose another location")
        if isinstance(err, IsADirectoryError) or self._path(location).is_dir():
            return (f"objects are kept under {shown(str(location))}/, so this embedded store cannot keep an "
                    "object of that name; choose another name")
        return str(err.strerror)

    def _path(self, location: S3Uri) -> Path:
        """The real path of a location, refused when links resolve it outside the root."""
        path = Path(os.path.realpath(self.root / location.bucket / location.key))
        self._check_inside(path, str(location))
        return path

    def _shown_path(self, location: S3Uri) -> str:
        """Where a location's file (or folder) is, for messages: absolute, control characters
        escaped."""
        path = os.path.abspath(self.root / location.bucket / location.key)
        return shown(path + os.sep if location.is_prefix else path)

    def _check_inside(self, path: Path, uri: str) -> None:
        real_root = Path(os.path.realpath(self.root))
        real = Path(os.path.realpath(path))
        if real != real_root and real_root not in real.parents:
            raise StorageError(f"{shown(uri)}: resolves outside the storage root")

    def _walk(
        self,
        folder: Path,
        bucket: str,
        base: str,
        rest: str,
        ancestors: frozenset[Path],
        found: builtins.list[ObjectInfo],
    ) -> None:
        """Collect files under `folder` (key prefix `base`) whose names start with `rest`.

        Linked folders are followed when they stay under the root; a link back to a folder on
        the current path (a cycle) is not.
        """
        real = Path(os.path.realpath(folder))
        if real in ancestors:
            return
        ancestors = ancestors | {real}
        real_root = Path(os.path.realpath(self.root))
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if not name.startswith(rest) or name.startswith(TEMP_PREFIX):
                continue
            key = base + name
            target = Path(os.path.realpath(entry.path))
            if real_root not in target.parents or key_problem(key):
                continue
            try:
                if entry.is_dir():
                    self._walk(target, bucket, key + "/", "", ancestors, found)
                elif entry.is_file():
                    found.append(ObjectInfo(f"s3://{bucket}/{key}", key, entry.stat().st_size))
            except OSError:
                continue


def _long_part(key: str) -> str | None:
    """Why the embedded store can keep no object of this key (a part of it is a longer name
    than a file can have), or None."""
    for part in key.split("/"):
        size = len(part.encode("utf-8"))
        if size > NAME_BYTES:
            return (f"the part {shown(part[:40])}... of its key is {size} bytes long, and this embedded "
                    f"store keeps each part as a file or folder name, of at most {NAME_BYTES} bytes")
    return None
