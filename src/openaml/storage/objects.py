"""The ObjectStore protocol, the data-location resolution of data.md §2, and atomic writers.

Stores speak whole `s3://BUCKET/KEY` URIs. Listing is recursive and in lexicographic byte
order of the key (the order S3 itself lists in), which defines record order for splitting.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from openaml.storage.uris import StorageError, parse_s3_uri, shown

IGNORED_SUFFIXES = (".schema", ".manifest")
LEVEL_ENTRIES = 1000  # entries of one folder level first_data_file looks at
# A local write stops while its disk has less than this free, looked at every SPACE_CHECK_BYTES
# it writes: a 2 MB gzip file made a 2.7 GB copy per datasource, and every datasource of it
# another, until the disk was full and the store, logs and models could not be written.
DISK_RESERVE = 1 << 30
SPACE_CHECK_BYTES = 64 << 20


class DiskFull(StorageError):
    """A local write would leave its disk with less than DISK_RESERVE free."""


NO_SPACE_MESSAGE = ("A disk the service writes to (its data folder's, its database's or an output's) "
                    "is full: free space, or delete datasources and batch outputs no longer needed, "
                    "then try again")
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NO_SPACE_STATES = ("SQLITE_FULL", "53100")  # the store's own words: SQLite's error name, PostgreSQL's SQLSTATE


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the errors it was raised from (__cause__, else __context__), each once."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        yield found
        found = found.__cause__ or found.__context__


def no_space_left(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, says that a disk was full: a write's
    ENOSPC or EDQUOT, SQLite's "database or disk is full", PostgreSQL's disk_full, DiskFull."""
    for found in error_chain(exc):
        orig = getattr(found, "orig", None)  # a SQLAlchemy error's driver error
        if (isinstance(found, DiskFull) or (isinstance(found, OSError) and found.errno in NO_SPACE_ERRNOS)
                or str(getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)) in NO_SPACE_STATES):
            return True
    return False


def space_left(folder: Path) -> bool:
    """Whether the disk of `folder` has at least DISK_RESERVE free (True when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free >= DISK_RESERVE
    except OSError:
        return True


def space_check(folder: Path) -> Callable[[], None]:
    """DiskFull while the disk of `folder` has less than DISK_RESERVE free."""

    def check() -> None:
        free = shutil.disk_usage(folder).free
        if free < DISK_RESERVE:
            raise DiskFull(f"The disk of {folder} has {free / 2**30:.2f} GiB free, less than the "
                           f"{DISK_RESERVE / 2**30:g} GiB the service keeps: the write stopped before the "
                           "disk was full (free space, or delete datasources and batch outputs no longer needed)")

    return check


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its full URI, its key (without the bucket) and its size in bytes."""

    uri: str
    key: str
    size: int


@dataclass(frozen=True)
class Level:
    """One level of a folder: the folders below it (their s3:// URIs, ending with "/"), its
    objects, and whether more entries than listed are there."""

    folders: builtins.list[str]
    objects: builtins.list[ObjectInfo]
    truncated: bool


class ObjectStore(Protocol):
    """S3-style object storage addressed by `s3://BUCKET/KEY` URIs.

    Invalid URIs raise StorageError; a missing object raises ObjectNotFoundError from
    `open_read`/`read_bytes` and gives None from `stat`. Writes are atomic: a reader sees the
    old object or the complete new one, never a partial one, and a `with` block that raises
    leaves no object behind. Implementations subclass it to inherit the methods built on
    the others (read_bytes, write_bytes, resolve_data_location).
    """

    def list(self, uri_prefix: str) -> builtins.list[ObjectInfo]:
        """Every object whose key starts with the prefix (recursively), in byte order of key."""
        ...

    def buckets(self) -> builtins.list[str]:
        """The names of the buckets, sorted (the console's browser starts there)."""
        ...

    def list_level(self, folder_uri: str, limit: int) -> Level:
        """The folders and objects right below `folder_uri` (an s3:// folder: its key empty or
        ending with "/"), in byte order, at most `limit` of them together: one level, however
        many objects lie deeper (the console's browser)."""
        ...

    def stat(self, uri: str) -> ObjectInfo | None:
        """The object with exactly this key, or None."""
        ...

    def open_read(self, uri: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A fresh readable binary stream of the stored bytes, from byte `start` (at most the
        object's size) to `end` (excluded; None: the object's end). A store may give bytes
        past `end` (the local folder does): `end` spares it sending what will not be read."""
        ...

    def open_write(self, uri: str) -> BinaryIO:
        """A binary stream whose bytes become the object when it is closed without error."""
        ...

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as stream:
            return stream.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        with self.open_write(uri) as stream:
            stream.write(data)

    def delete(self, uri: str) -> None:
        """Remove the object; removing a missing object is not an error (as in S3)."""
        ...

    def resolve_data_location(self, uri: str) -> builtins.list[ObjectInfo]:
        """The data files a `DataLocationS3` names (data.md §2); see `resolve_data_location`."""
        return resolve_data_location(self, uri)

    def describe(self) -> dict[str, Any]:
        """Kind, root or endpoint, and whether it is reachable now (for a /health endpoint)."""
        ...

    def remove_temporary_files(self, idle_seconds: float | None = None) -> int:
        """Delete what writes interrupted by a crash left behind (only what is unchanged for
        `idle_seconds`, when given: other front ends may be writing); returns how many files.
        Called at start-up, before any job writes here. Stores without such files do nothing."""
        return 0


def resolve_data_location(store: ObjectStore, uri: str) -> builtins.list[ObjectInfo]:
    """Apply data.md §2: a prefix lists its data files, else the exact key, else `<key>/`.

    Under a prefix, folder markers (keys ending in `/`), zero-byte objects, names ending in
    `.schema` or `.manifest`, and the service's own files in the making (a path part starting
    with `.openaml-`: a batch prediction's pieces) are skipped. Raises StorageError when
    nothing is found.
    """
    location = parse_s3_uri(uri)
    if location.is_prefix:
        files = _data_files(store.list(uri))
    else:
        exact = store.stat(uri)
        files = [exact] if exact is not None else _data_files(store.list(uri + "/"))
    if not files:
        raise StorageError(f"{shown(uri)}: " + (_missing_bucket(store, location.bucket) or (
            "the data location is empty or missing (no data file found"
            f"{' under this prefix' if location.is_prefix else ' with this key or under it'})")))
    return files


def _missing_bucket(store: ObjectStore, bucket: str) -> str | None:
    """What to say of a location whose bucket does not exist (it read as an empty location);
    None when it exists, or when the store may not list its buckets."""
    try:
        found = store.buckets()
    except StorageError:
        return None
    return None if bucket in found else f"its bucket {shown(bucket)} does not exist"


def first_data_file(store: ObjectStore, uri: str) -> ObjectInfo:
    """resolve_data_location's first file, found one folder level at a time (a folder of a
    million objects is not listed to read its first: the console's schema guess): depth
    first, in byte order of key, which is the order of the whole listing. Falls back to the
    whole listing where a level holds more than LEVEL_ENTRIES entries."""
    location = parse_s3_uri(uri)
    if not location.is_prefix:
        exact = store.stat(uri)
        if exact is not None:
            return exact
        uri += "/"

    def entries(folder: str) -> Iterator[tuple[str, ObjectInfo | None]] | None:
        level = store.list_level(folder, LEVEL_ENTRIES)
        if level.truncated:
            return None
        return iter(sorted([(u, None) for u in level.folders] + [(o.uri, o) for o in level.objects],
                           key=lambda entry: entry[0].encode("utf-8")))

    first = entries(uri)
    stack = [first] if first is not None else []
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        entry_uri, info = entry
        if info is None:  # a folder: everything in it comes before the entries after it
            inner = entries(entry_uri)
            if inner is None:
                break
            stack.append(inner)
        elif _data_files([info]):
            return info
    return resolve_data_location(store, uri)[0]  # a level too large, or nothing there (raises)


def _data_files(objects: builtins.list[ObjectInfo]) -> builtins.list[ObjectInfo]:
    return [
        info
        for info in objects
        if not info.key.endswith("/") and info.size > 0 and not info.key.endswith(IGNORED_SUFFIXES)
        and "/.openaml-" not in "/" + info.key  # the service's own files being written (batch pieces)
    ]


class CommittingWriter(io.BufferedIOBase):
    """A binary writer over a temporary sink, published by `commit` when closed cleanly.

    Leaving a `with` block by an exception, calling `abort()`, or dropping the writer without
    closing it calls `discard` instead, so a partial object never appears under its name.
    """

    def __init__(
        self, sink: BinaryIO, commit: Callable[[], None], discard: Callable[[], None],
        check_space: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._sink = sink
        self._commit = commit
        self._discard = discard
        self._finished = self._aborted = False
        self._check_space = check_space  # called every SPACE_CHECK_BYTES written
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = memoryview(data).nbytes
        if self._finished:
            if self._aborted:  # what a buffer in front of it flushes late (as it is destroyed) goes too
                return size
            raise ValueError("write to a closed object writer")
        crosses = (self._written + size) // SPACE_CHECK_BYTES > self._written // SPACE_CHECK_BYTES
        if crosses and self._check_space is not None:
            self._check_space()
        self._written += size
        return self._sink.write(data)

    def tell(self) -> int:
        return self._sink.tell()

    def flush(self) -> None:
        if not self._finished:
            self._sink.flush()

    def close(self) -> None:
        """Publish the written bytes (once); on failure discard them and re-raise."""
        if self._finished:
            return
        self._finished = True
        try:
            self._commit()
        except BaseException:
            self._discard()
            raise
        finally:
            super().close()

    def abort(self) -> None:
        """Drop the written bytes, and those written later; the object is left as it was."""
        if self._finished:
            return
        self._finished = self._aborted = True
        try:
            self._discard()
        finally:
            super().close()

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        self.abort()


def replacing_file(target: Path, prefix: str, root: Path,
                   refused: Callable[[OSError], Exception] | None = None) -> CommittingWriter:
    """A CommittingWriter into a new temporary file beside `target` (its name starting with
    `prefix`) that replaces `target` when closed cleanly, its space checked under `root`.
    The temporary file is removed however the write ends: a full disk also fails the final
    flush, which once left it behind. refused(error) is raised (from the error) when the
    flush or the rename fails, instead of the error itself."""
    handle, temp_name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
    sink = os.fdopen(handle, "wb")

    def commit() -> None:
        try:
            sink.close()
            os.replace(temp_name, target)
        except OSError as err:
            Path(temp_name).unlink(missing_ok=True)
            if refused is None:
                raise
            raise refused(err) from err

    def discard() -> None:
        try:
            with contextlib.suppress(OSError):  # the bytes go anyway
                sink.close()
        finally:
            Path(temp_name).unlink(missing_ok=True)

    return CommittingWriter(sink, commit, discard, space_check(root))

