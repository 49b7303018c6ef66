"""Object storage behind `s3://` URIs, the service's own artifacts, and SQL query staging."""

from __future__ import annotations

from pathlib import Path

from openaml.storage.artifacts import Artifacts, ArtifactStore
from openaml.storage.local import LocalObjectStore
from openaml.storage.object_artifacts import ObjectArtifactStore
from openaml.storage.objects import ObjectInfo, ObjectStore, resolve_data_location
from openaml.storage.s3 import S3ObjectStore
from openaml.storage.uris import (
    ObjectNotFoundError,
    S3UnavailableError,
    S3Uri,
    StorageError,
    folder_uri,
    join_uri,
    parse_s3_uri,
)

AWS_ENDPOINT = "aws"


def open_object_store(
    s3_endpoint_url: str | None, local_root: Path, region: str | None = None
) -> ObjectStore:
    """The configured store: S3 at the endpoint URL when one is set, else the local folder.

    `s3_endpoint_url="aws"` means AWS S3 itself (boto3's endpoint for the region).
    """
    if not s3_endpoint_url:
        return LocalObjectStore(local_root)
    endpoint = None if s3_endpoint_url == AWS_ENDPOINT else s3_endpoint_url
    return S3ObjectStore(endpoint_url=endpoint, region=region)


__all__ = [
    "ArtifactStore",
    "Artifacts",
    "ObjectArtifactStore",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "S3ObjectStore",
    "S3UnavailableError",
    "S3Uri",
    "StorageError",
    "folder_uri",
    "join_uri",
    "open_object_store",
    "parse_s3_uri",
    "resolve_data_location",
]
