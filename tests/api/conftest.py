"""A real OpenAML server on a loopback port and a real boto3 client pointed at it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from openaml.app import Application
from openaml.server.embedded import running_server

# A small BINARY table (a number, a category, the target) and its schema, for entity tests.
XCY_SCHEMA = (
    '{"version":"1.0","targetAttributeName":"y","dataFormat":"CSV",'
    '"dataFileContainsHeader":true,"attributes":['
    '{"attributeName":"x","attributeType":"NUMERIC"},'
    '{"attributeName":"c","attributeType":"CATEGORICAL"},'
    '{"attributeName":"y","attributeType":"BINARY"}]}'
)
XCY_CSV = b"x,c,y\n" + b"".join(f"{i},{'ab'[i % 2]},{int(i % 3 == 0)}\n".encode() for i in range(60))
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                       read_timeout=120)


def make_client(url: str, key: str = "AKIDEXAMPLE", secret: str = "secret") -> Any:
    return boto3.client(
        "machinelearning", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret, config=CLIENT_CONFIG,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    with running_server(data_dir=tmp_path_factory.mktemp("openaml"), workers=2) as app:
        yield app


@pytest.fixture(scope="module")
def ml(server: Application) -> Any:
    return make_client(server.settings.base_url)


@pytest.fixture
def put_object(server: Application) -> Callable[[str, bytes], str]:
    def put(uri: str, data: bytes) -> str:
        server.context.objects.write_bytes(uri, data)
        return uri
    return put


@pytest.fixture
def uid() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(get: Callable[[], dict[str, Any]], timeout: float = 120.0) -> dict[str, Any]:
    """Poll a Get* call until the entity leaves PENDING/INPROGRESS."""
    deadline = time.monotonic() + timeout
    while True:
        result = get()
        if result["Status"] not in ("PENDING", "INPROGRESS"):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still {result['Status']} after {timeout} s: {result}")
        time.sleep(0.05)


def error_code(excinfo: pytest.ExceptionInfo[Any]) -> str:
    return str(excinfo.value.response["Error"]["Code"])
