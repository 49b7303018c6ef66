"""What `openaml serve` prints when it starts: where things are, and code that works as pasted."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from sqlalchemy import make_url

from openaml import __version__
from openaml.settings import Settings

REGION = "us-east-1"
ANY_KEY = "any"  # any key is accepted while signatures are not verified


def banner_lines(settings: Settings, store_url: str, objects: Mapping[str, Any],
                 unverified: bool) -> list[str]:
    """The start-up banner: sentences about the service, then a boto3 snippet and an AWS CLI
    command, unindented so that they can be pasted as they are."""
    url = settings.base_url
    lines = [
        f"OpenAML {__version__} is serving the Amazon ML API at {url}",
        f"  Web console: {url}/console/",
        f"  Data dir: {settings.data_dir}",
        f"  Metadata: {describe_store(store_url)}",
        f"  Objects: {describe_objects(objects)}",
    ]
    if settings.artifacts_uri:
        lines.append(f"  Artifacts (datasources, models, logs): objects under {settings.artifacts_uri}")
    if unverified:
        lines.append("  Signatures: not verified (loopback address, no access keys configured); "
                     "any access key works.")
        key_id = secret = ANY_KEY
    else:
        lines.append("  Signatures: verified; sign requests with one of the configured access keys.")
        key_id, secret = "YOUR_KEY_ID", "YOUR_SECRET"
    if settings.http_workers > 1:
        lines.append(f"  {settings.http_workers} HTTP processes share the port.")
    if settings.executor == "dask":
        lines.append(f"  Jobs: on the Dask cluster of the scheduler at {settings.dask_scheduler}.")
    lines += [
        f"Try it from Python (boto3 is installed for {sys.executable}):",
        "",
        "import boto3",
        f'ml = boto3.client("machinelearning", endpoint_url="{url}", region_name="{REGION}", '
        f'aws_access_key_id="{key_id}", aws_secret_access_key="{secret}")',
        'print(ml.describe_ml_models()["Results"])',
        "",
        "or with the AWS CLI:",
        "",
        f"AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} aws machinelearning "
        f"describe-ml-models --endpoint-url {url} --region {REGION}",
        "",
    ]
    return lines


def describe_store(store_url: str) -> str:
    """The metadata store in words (a URL's password is already masked by the caller)."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database}"
    return f"the database at {store_url}"


def describe_objects(objects: Mapping[str, Any]) -> str:
    """Where `s3://` URIs lead, from an object store's `describe()`."""
    if objects.get("kind") == "local":
        root = objects.get("root")
        text = (f"s3://BUCKET/KEY is the file {root}/BUCKET/KEY (the embedded object store); "
                "copy a file there to upload it.")
        if not objects.get("reachable"):
            text += f" The folder {root} cannot be written by this server."
        return text
    endpoint, region = objects.get("endpoint"), objects.get("region")
    text = (f"s3:// URIs are objects of the S3 server at {endpoint} (region {region}), "
            "with credentials from the standard AWS chain.")
    if not objects.get("reachable"):
        text += " It cannot be reached now (no answer, or no credentials)."
    return text
