"""S3ObjectStore: a real S3-compatible server (AWS S3, or moto/MinIO-style at an endpoint URL).

Why boto3 and not `pyarrow.fs.S3FileSystem`: boto3 is already a dependency (the protocol
layer uses botocore), it reads credentials through the standard AWS chain exactly like the AWS
CLI (environment, shared files and profiles, SSO, container and instance roles), its errors
carry S3's own codes, and `get_object` already streams: the body is wrapped in a buffered
reader, so a large object is read with bounded memory. pyarrow's C++ client would add a second
credential chain and a process-wide S3 subsystem to initialize and finalize. s3fs is not used
because aiobotocore pins botocore (see the dependency notes).

Writes are spooled (in memory up to 8 MiB, then a temporary file) and uploaded on close with
boto3's managed transfer (multipart for large objects); S3 makes an object visible only when
its upload completes, so writes are atomic.

Transient failures (no connection, a dropped connection, a timeout, HTTP 5xx, throttling) are
retried here rather than by botocore, whose attempts would each be capped but whose total time
is not: every request, upload, and read of a body gets exponential backoff with jitter for up to
`RETRY_SECONDS` from its first failure, then fails with "S3 unavailable after N attempts".
A body whose connection breaks is read on from where it stopped (a range request, on condition
that the object is still the same), so a long read survives a short outage.
"""

from __future__ import annotations

import builtins
import io
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from openaml.storage.objects import CommittingWriter, Level, ObjectInfo, ObjectStore
from openaml.storage.uris import (
    ObjectNotFoundError,
    S3UnavailableError,
    S3Uri,
    StorageError,
    parse_s3_uri,
    shown,
)

SPOOL_BYTES = 8 * 1024 * 1024
RETRY_SECONDS = 30.0  # how long a failing request is retried, from its first failure
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_CHANGED = {"412", "PreconditionFailed"}
# botocore's own lists of transient and throttling errors (botocore.retries.standard), plus S3's.
_TRANSIENT_CODES = {
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "Throttling",
    "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "EC2ThrottledException",
    "InternalError", "ServiceUnavailable",
}
_TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
_TRANSIENT_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)

T = TypeVar("T")


class S3ObjectStore(ObjectStore):
    """Object storage on an S3 endpoint; `endpoint_url=None` means AWS for the region."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        session: boto3.session.Session | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.retry_seconds = retry_seconds
        session = session or boto3.session.Session()
        # Path-style addressing: custom endpoints (an IP and port) cannot serve bucket subdomains.
        s3_config: Any = {"addressing_style": "path"} if endpoint_url else {}
        # One attempt per botocore call: the retries are `_Retries`, bounded in time.
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                s3=s3_config,
                connect_timeout=5,
                read_timeout=20,
                retries={"total_max_attempts": 1, "mode": "standard"},
            ),
        )
        # The health probe must answer quickly, so it gets its own client without retries.
        self._probe = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                s3=s3_config, connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1}
            ),
        )

    def list(self, uri_prefix: str) -> builtins.list[ObjectInfo]:
        location = parse_s3_uri(uri_prefix)

        def list_all() -> builtins.list[dict[str, Any]]:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=location.bucket, Prefix=location.key
            )
            return [item for page in pages for item in page.get("Contents", [])]

        try:
            items = self._request(uri_prefix, "cannot list", list_all)
        except ObjectNotFoundError:
            return []
        found = [
            ObjectInfo(f"s3://{location.bucket}/{item['Key']}", item["Key"], item["Size"])
            for item in items
        ]
        found.sort(key=lambda info: info.key.encode("utf-8"))
        return found

    def buckets(self) -> builtins.list[str]:
        found = self._request("s3://", "cannot list the buckets", self._client.list_buckets)
        return sorted(bucket["Name"] for bucket in found.get("Buckets", []))

    def list_level(self, folder_uri: str, limit: int) -> Level:
        location = parse_s3_uri(folder_uri)
        if not location.is_prefix and location.key:
            raise StorageError(f"{shown(folder_uri)}: not a folder (its key must end with '/')")

        def pages() -> Level:
            folders: builtins.list[str] = []
            objects: builtins.list[ObjectInfo] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=location.bucket, Prefix=location.key, Delimiter="/",
                                           PaginationConfig={"PageSize": min(limit, 1000)}):
                folders += [f"s3://{location.bucket}/{p['Prefix']}" for p in page.get("CommonPrefixes", [])]
                objects += [ObjectInfo(f"s3://{location.bucket}/{o['Key']}", o["Key"], o["Size"])
                            for o in page.get("Contents", []) if o["Key"] != location.key]
                if len(folders) + len(objects) >= limit:
                    return Level(folders, objects, bool(page.get("IsTruncated")) or len(folders) + len(objects) > limit)
            return Level(folders, objects, False)

        try:
            found = self._request(folder_uri, "cannot list", pages)
        except ObjectNotFoundError:
            return Level([], [], False)
        folders = sorted(found.folders, key=lambda u: u.encode("utf-8"))
        objects = sorted(found.objects, key=lambda o: o.key.encode("utf-8"))
        extra = max(0, len(folders) + len(objects) - limit)
        if extra:  # keep the first `limit` entries of both, in byte order together
            merged = sorted([(u, None) for u in folders] + [(o.uri, o) for o in objects],
                            key=lambda item: item[0].encode("utf-8"))[:limit]
            folders = [u for u, o in merged if o is None]
            objects = [o for _, o in merged if o is not None]
        return Level(folders, objects, found.truncated or extra > 0)

    def stat(self, uri: str) -> ObjectInfo | None:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            return None
        try:
            head = self._request(
                uri, "cannot read",
                lambda: self._client.head_object(Bucket=location.bucket, Key=location.key),
            )
        except ObjectNotFoundError:
            return None
        return ObjectInfo(str(location), location.key, head["ContentLength"])

    def open_read(self, uri: str, start: int = 0, end: int | None = None) -> BinaryIO:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            raise ObjectNotFoundError(f"{shown(uri)}: no such object (the URI names a folder)")
        ranged = ({"Range": f"bytes={start}-{'' if end is None else end - 1}"}
                  if start or end is not None else {})
        response = self._request(
            uri, "cannot read",
            lambda: self._client.get_object(Bucket=location.bucket, Key=location.key, **ranged),
        )
        return io.BufferedReader(_BodyReader(self, location, response, start), 1024 * 1024)

    def open_write(self, uri: str) -> BinaryIO:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            raise StorageError(f"{shown(uri)}: cannot write an object whose key ends with '/'")
        sink = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)

        def upload() -> None:
            sink.seek(0)
            self._client.upload_fileobj(_KeptOpen(sink), location.bucket, location.key)

        def commit() -> None:
            try:
                self._request(uri, "cannot write", upload, missing_is_error=True)
            finally:
                sink.close()

        return CommittingWriter(cast(BinaryIO, sink), commit, sink.close)  # type: ignore[return-value]

    def delete(self, uri: str) -> None:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            return
        try:
            self._request(
                uri, "cannot delete",
                lambda: self._client.delete_object(Bucket=location.bucket, Key=location.key),
            )
        except ObjectNotFoundError:
            pass

    def describe(self) -> dict[str, Any]:
        """Reachable means the endpoint answered (even with an error such as AccessDenied)."""
        try:
            self._probe.list_buckets()
            reachable = True
        except ClientError:
            reachable = True
        except BotoCoreError:
            reachable = False
        return {
            "kind": "s3",
            "endpoint": self._client.meta.endpoint_url,
            "region": self._client.meta.region_name,
            "reachable": reachable,
        }

    def _request(
        self, uri: str, action: str, call: Callable[[], T], missing_is_error: bool = False
    ) -> T:
        """`call()`, retried while it fails transiently. Failures raise StorageError: a missing
        object or bucket ObjectNotFoundError (unless `missing_is_error`), retries spent
        S3UnavailableError."""
        retries = _Retries(uri, action, self.retry_seconds, missing_is_error)
        while True:
            try:
                return call()
            except (ClientError, BotoCoreError) as err:
                retries.failed(err)

    def _get_rest(self, location: S3Uri, start: int, etag: str | None) -> Any:
        """The body of one object from byte `start` on, if it still has the given ETag."""
        condition = {"IfMatch": etag} if etag else {}
        response = self._client.get_object(
            Bucket=location.bucket, Key=location.key, Range=f"bytes={start}-", **condition
        )
        return response["Body"]


class _Retries:
    """The attempts at one S3 request: after each transient failure `failed` sleeps with
    exponential backoff and jitter, until `budget` seconds have passed since the first one."""

    def __init__(self, uri: str, action: str, budget: float, missing_is_error: bool = False) -> None:
        self.uri, self.action, self.budget = uri, action, budget
        self.missing_is_error = missing_is_error
        self.attempts = 0
        self.first_failure: float | None = None

    def failed(self, err: ClientError | BotoCoreError) -> None:
        """Wait for the next attempt, or raise the StorageError that `err` ends the request with."""
        self.attempts += 1
        if not _transient(err):
            raise self._final(err) from err
        now = time.monotonic()
        if self.first_failure is None:
            self.first_failure = now
        backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (self.attempts - 1))
        delay = backoff * random.uniform(0.5, 1.0)
        spent = now - self.first_failure
        if spent + delay > self.budget:
            raise S3UnavailableError(
                f"{shown(self.uri)}: {self.action}: S3 unavailable after {self.attempts} "
                f"attempt{'s' if self.attempts > 1 else ''} in {spent:.0f} s: {_reason(err)}"
            ) from err
        time.sleep(delay)

    def _final(self, err: ClientError | BotoCoreError) -> StorageError:
        code = _code(err) if isinstance(err, ClientError) else ""
        if code in _MISSING and not self.missing_is_error:
            return ObjectNotFoundError(f"{shown(self.uri)}: no such object")
        if code in _CHANGED:
            return StorageError(f"{shown(self.uri)}: {self.action}: the object changed while it was read")
        return StorageError(f"{shown(self.uri)}: {self.action}: {_reason(err)}")


class _BodyReader(io.RawIOBase):
    """A raw stream over a GetObject body that reads on after a broken connection (a range
    request for the rest, if the object is unchanged) and raises only StorageError."""

    def __init__(self, store: S3ObjectStore, location: S3Uri, response: dict[str, Any],
                 start: int = 0) -> None:
        super().__init__()
        self._store = store
        self._location = location
        self._body: Any = response["Body"]
        self._size = start + int(response["ContentLength"])  # a range's length from `start`
        self._etag: str | None = response.get("ETag")
        self._position = start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        retries = _Retries(str(self._location), "cannot read", self._store.retry_seconds)
        while True:
            try:
                if self._body is None:
                    self._body = self._store._get_rest(self._location, self._position, self._etag)
                data = self._body.read(wanted)
                if not data:  # the connection closed before the announced length
                    raise IncompleteReadError(actual_bytes=self._position, expected_bytes=self._size)
                break
            except (ClientError, BotoCoreError) as err:
                self._drop_body()
                retries.failed(err)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._drop_body()
        super().close()

    def _drop_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            body.close()


class _KeptOpen:
    """The spooled bytes of a write as one upload attempt reads them: s3transfer closes what it
    uploads, and the next attempt needs them again."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink

    def read(self, size: int = -1) -> bytes:
        return cast(bytes, self._sink.read(size))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return cast(int, self._sink.seek(offset, whence))

    def tell(self) -> int:
        return cast(int, self._sink.tell())

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        """The sink is closed by the writer, after the last attempt."""


def _transient(err: ClientError | BotoCoreError) -> bool:
    if isinstance(err, BotoCoreError):
        return isinstance(err, _TRANSIENT_ERRORS)
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _code(err) in _TRANSIENT_CODES or status in _TRANSIENT_STATUSES


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _reason(err: ClientError | BotoCoreError) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return str(err)
