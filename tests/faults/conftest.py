"""Fault injection: profiles, a real S3 server (moto) behind a FaultProxy, and the report.

Profiles (env OPENAML_FAULTS): `quick` (default) kills the server once in each job kind, once
more while it re-runs the interrupted jobs, and sends one S3 503 burst; `full` runs
OPENAML_FAULTS_TRIALS kill trials (default 24) and every S3 outage case. OPENAML_FAULTS_SEED
picks the kill moments (default 14). The summary is printed at the end of the run, and written
as JSON to the path in OPENAML_FAULTS_REPORT if set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.faults.proxy import FaultProxy
from tests.faults.report import FaultReport

PROFILE = os.environ.get("OPENAML_FAULTS", "quick")
SEED = int(os.environ.get("OPENAML_FAULTS_SEED", "14"))
FULL_TRIALS = int(os.environ.get("OPENAML_FAULTS_TRIALS", "24"))
REPORT = pytest.StashKey[FaultReport]()
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORT] = FaultReport(profile=PROFILE, seed=SEED)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash[REPORT]
    if not report.trials and not report.s3_cases:
        return
    terminalreporter.write_sep("-", "fault injection summary")
    for line in report.summary_lines():
        terminalreporter.write_line(line)
    path = os.environ.get("OPENAML_FAULTS_REPORT")
    if path:
        Path(path).write_text(json.dumps(report.as_json(), indent=2, sort_keys=True))


@pytest.fixture(scope="session")
def fault_report(pytestconfig: pytest.Config) -> FaultReport:
    return pytestconfig.stash[REPORT]


@pytest.fixture(scope="session")
def aws_session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name="us-east-1")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A real S3 server (moto) on 127.0.0.1."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(moto_url: str, aws_session: boto3.session.Session) -> Any:
    """A client straight to moto, past the proxy: the test's own view of what S3 holds."""
    return aws_session.client("s3", endpoint_url=moto_url)


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_url).start()
    try:
        yield proxy
    finally:
        proxy.close()
