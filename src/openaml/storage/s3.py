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
"""

from __future__ import annotations

import builtins
import io
import tempfile
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from openaml.storage.objects import CommittingWriter, ObjectInfo, ObjectStore
from openaml.storage.uris import ObjectNotFoundError, StorageError, parse_s3_uri, shown

SPOOL_BYTES = 8 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


class S3ObjectStore(ObjectStore):
    """Object storage on an S3 endpoint; `endpoint_url=None` means AWS for the region."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        session = session or boto3.session.Session()
        # Path-style addressing: custom endpoints (an IP and port) cannot serve bucket subdomains.
        s3_config: Any = {"addressing_style": "path"} if endpoint_url else {}
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                s3=s3_config,
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        # The health probe must answer quickly, so it gets its own client without retries.
        self._probe = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                s3=s3_config, connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}
            ),
        )

    def list(self, uri_prefix: str) -> builtins.list[ObjectInfo]:
        location = parse_s3_uri(uri_prefix)
        found: builtins.list[ObjectInfo] = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.key
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    found.append(ObjectInfo(f"s3://{location.bucket}/{key}", key, item["Size"]))
        except ClientError as err:
            if _code(err) in _MISSING:
                return []
            raise _storage_error(uri_prefix, "cannot list", err) from err
        except BotoCoreError as err:
            raise _storage_error(uri_prefix, "cannot list", err) from err
        found.sort(key=lambda info: info.key.encode("utf-8"))
        return found

    def stat(self, uri: str) -> ObjectInfo | None:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            return None
        try:
            head = self._client.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as err:
            if _code(err) in _MISSING:
                return None
            raise _storage_error(uri, "cannot read", err) from err
        except BotoCoreError as err:
            raise _storage_error(uri, "cannot read", err) from err
        return ObjectInfo(str(location), location.key, head["ContentLength"])

    def open_read(self, uri: str) -> BinaryIO:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            raise ObjectNotFoundError(f"{shown(uri)}: no such object (the URI names a folder)")
        try:
            response = self._client.get_object(Bucket=location.bucket, Key=location.key)
        except ClientError as err:
            if _code(err) in _MISSING:
                raise ObjectNotFoundError(f"{shown(uri)}: no such object") from err
            raise _storage_error(uri, "cannot read", err) from err
        except BotoCoreError as err:
            raise _storage_error(uri, "cannot read", err) from err
        return io.BufferedReader(_BodyReader(response["Body"], uri), 1024 * 1024)

    def open_write(self, uri: str) -> BinaryIO:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            raise StorageError(f"{shown(uri)}: cannot write an object whose key ends with '/'")
        sink = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)

        def commit() -> None:
            try:
                sink.seek(0)
                self._client.upload_fileobj(sink, location.bucket, location.key)
            except (ClientError, BotoCoreError) as err:
                raise _storage_error(uri, "cannot write", err) from err
            finally:
                sink.close()

        return CommittingWriter(cast(BinaryIO, sink), commit, sink.close)  # type: ignore[return-value]

    def delete(self, uri: str) -> None:
        location = parse_s3_uri(uri)
        if location.is_prefix:
            return
        try:
            self._client.delete_object(Bucket=location.bucket, Key=location.key)
        except ClientError as err:
            if _code(err) not in _MISSING:
                raise _storage_error(uri, "cannot delete", err) from err
        except BotoCoreError as err:
            raise _storage_error(uri, "cannot delete", err) from err

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


class _BodyReader(io.RawIOBase):
    """A raw stream over a botocore StreamingBody, turning transfer errors into StorageError."""

    def __init__(self, body: Any, uri: str) -> None:
        super().__init__()
        self._body = body
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except BotoCoreError as err:
            raise _storage_error(self._uri, "cannot read", err) from err
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _storage_error(uri: str, action: str, err: Exception) -> StorageError:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        reason = f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    else:
        reason = str(err)
    return StorageError(f"{shown(uri)}: {action}: {reason}")
