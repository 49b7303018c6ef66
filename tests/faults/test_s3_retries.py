"""S3ObjectStore against a real S3 server (moto) behind a FaultProxy: retries and their limit."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from openaml.storage import ObjectNotFoundError, S3ObjectStore, StorageError
from openaml.storage.s3 import RETRY_SECONDS
from openaml.storage.uris import S3UnavailableError
from tests.faults.proxy import FaultProxy

DATA = os.urandom(300_000)  # larger than one read of the body, so a cut lands inside it


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"retries-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="in/data.bin", Body=DATA)
    return name


def through(proxy: FaultProxy, session: boto3.session.Session, budget: float) -> S3ObjectStore:
    return S3ObjectStore(endpoint_url=proxy.url, session=session, retry_seconds=budget)


OPERATIONS: dict[str, Callable[[S3ObjectStore, str], Any]] = {
    "read": lambda store, bucket: store.read_bytes(f"s3://{bucket}/in/data.bin"),
    "stat": lambda store, bucket: store.stat(f"s3://{bucket}/in/data.bin"),
    "list": lambda store, bucket: store.list(f"s3://{bucket}/in/"),
    "write": lambda store, bucket: store.write_bytes(f"s3://{bucket}/out/new.bin", b"new bytes"),
    "delete": lambda store, bucket: store.delete(f"s3://{bucket}/in/data.bin"),
}


def test_the_default_budget_is_about_thirty_seconds() -> None:
    assert 20 <= RETRY_SECONDS <= 60
    assert S3ObjectStore(endpoint_url="http://127.0.0.1:9").retry_seconds == RETRY_SECONDS


CASES = [(operation, "503") for operation in sorted(OPERATIONS)] + [("read", "drop"), ("write", "drop")]


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_a_short_outage_is_retried_until_it_clears(
    operation: str, mode: str, proxy: FaultProxy, aws_session: boto3.session.Session, bucket: str,
    s3: Any,
) -> None:
    proxy.fail(mode, seconds=60, times=2)
    OPERATIONS[operation](through(proxy, aws_session, budget=10), bucket)
    outcomes = proxy.outcomes()
    assert outcomes[mode] == 2 and outcomes["pass"] >= 1, outcomes
    if operation == "write":
        assert s3.get_object(Bucket=bucket, Key="out/new.bin")["Body"].read() == b"new bytes"


@pytest.mark.parametrize(("operation", "mode"), CASES)
def test_an_outage_past_the_budget_fails_naming_s3_and_the_error(
    operation: str, mode: str, proxy: FaultProxy, aws_session: boto3.session.Session, bucket: str,
    s3: Any,
) -> None:
    proxy.fail(mode, seconds=60)
    with pytest.raises(S3UnavailableError) as failure:
        OPERATIONS[operation](through(proxy, aws_session, budget=0.6), bucket)
    message = str(failure.value)
    attempts = proxy.outcomes()[mode]
    assert attempts >= 2
    reason = {"503": "ServiceUnavailable: Service is unable", "drop": "Connection was closed"}[mode]
    if (operation, mode) == ("stat", "503"):
        reason = "503: Service Unavailable"  # an answer to HEAD has no body, so no error code
    assert f"S3 unavailable after {attempts} attempts in " in message
    assert reason in message and message.startswith("s3://")
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in listed] == ["in/data.bin"]  # nothing written, nothing removed


def test_a_multipart_upload_is_retried_whole_and_a_failed_write_leaves_no_object(
    proxy: FaultProxy, aws_session: boto3.session.Session, bucket: str, s3: Any,
) -> None:
    store = through(proxy, aws_session, budget=10)
    proxy.fail("drop", seconds=60, methods=("PUT",), times=1)  # the first part's upload
    with store.open_write(f"s3://{bucket}/out/big.bin") as out:
        for _ in range(30):  # 9 MB: past the spool (a file) and the multipart threshold
            out.write(DATA)
    assert store.read_bytes(f"s3://{bucket}/out/big.bin") == DATA * 30
    assert any("uploadId=" in path for method, path, _ in proxy.requests() if method == "PUT")
    proxy.fail("503", seconds=60, methods=("PUT",))
    store.retry_seconds = 0.5
    with pytest.raises(S3UnavailableError):
        store.write_bytes(f"s3://{bucket}/out/other.bin", DATA)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="out/other")


def test_errors_that_are_not_transient_fail_at_once(
    proxy: FaultProxy, aws_session: boto3.session.Session, bucket: str,
) -> None:
    store = through(proxy, aws_session, budget=10)
    with pytest.raises(StorageError, match="cannot write: NoSuchBucket") as failure:
        store.write_bytes("s3://no-such-bucket-here/x", b"x")
    assert not isinstance(failure.value, S3UnavailableError)
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes(f"s3://{bucket}/in/missing.bin")
    assert store.stat(f"s3://{bucket}/in/missing.bin") is None
    assert [method for method, _, _ in proxy.requests()] == ["PUT", "GET", "HEAD"]


def test_a_zero_budget_tries_once() -> None:
    store = S3ObjectStore(endpoint_url="http://127.0.0.1:9", retry_seconds=0,
                          session=boto3.session.Session(aws_access_key_id="k",
                                                        aws_secret_access_key="s",
                                                        region_name="us-east-1"))
    with pytest.raises(S3UnavailableError, match="S3 unavailable after 1 attempt in 0 s: Could not connect"):
        store.stat("s3://bucket/x")


def test_a_body_cut_midway_is_read_on_from_where_it_stopped(
    proxy: FaultProxy, aws_session: boto3.session.Session, bucket: str,
) -> None:
    proxy.fail("cut", seconds=60, methods=("GET",), times=2)
    assert through(proxy, aws_session, budget=10).read_bytes(f"s3://{bucket}/in/data.bin") == DATA
    assert [outcome for _, _, outcome in proxy.requests()] == ["cut", "cut", "pass"]


def test_an_object_replaced_while_it_is_read_is_not_read_on(
    proxy: FaultProxy, aws_session: boto3.session.Session, bucket: str, s3: Any,
) -> None:
    def replace() -> None:
        s3.put_object(Bucket=bucket, Key="in/data.bin", Body=DATA[::-1])

    proxy.fail("cut", seconds=60, methods=("GET",), times=1, on_cut=replace)
    with pytest.raises(StorageError, match="the object changed while it was read"):
        through(proxy, aws_session, budget=10).read_bytes(f"s3://{bucket}/in/data.bin")
