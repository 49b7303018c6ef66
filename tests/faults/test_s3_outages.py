"""A server in S3 mode whose S3 server fails mid-job: 503 bursts, dropped connections, outages.

The server (a real `openaml serve --s3-endpoint-url` process) reaches moto through a
FaultProxy. A fault that clears within the retry budget must end in COMPLETED with whole
outputs; one that outlasts it in FAILED with a message naming S3 and the error, and no object
written. The quick profile runs one 503 burst; the full profile every case.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from openaml.storage import S3ObjectStore
from openaml.storage.s3 import RETRY_SECONDS
from tests.api.conftest import make_client
from tests.faults.checks import output_problems
from tests.faults.conftest import AWS_ENV, PROFILE
from tests.faults.proxy import ALL_METHODS, FaultProxy
from tests.faults.report import FaultReport, S3Case
from tests.faults.server import ServerProcess
from tests.faults.workload import BUCKET, Workload, data_files, records_per_file, wait_settled

# Far longer than botocore's own retries lasted before (4 attempts, with backoffs under
# 0.05, 0.1 and 0.2 s after a 503): the old store failed the job.
BURST_SECONDS = 4.0
SETTLE_SECONDS = RETRY_SECONDS * 2 + 60


@dataclass
class S3Server:
    server: ServerProcess
    proxy: FaultProxy
    workload: Workload
    objects: S3ObjectStore  # straight to moto: what S3 really holds


@pytest.fixture(scope="module")
def s3_server(moto_url: str, s3: Any, aws_session: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    s3.create_bucket(Bucket=BUCKET)
    for name, data in data_files().items():
        s3.put_object(Bucket=BUCKET, Key=f"data/{name}", Body=data)
    proxy = FaultProxy(moto_url).start()
    base = tmp_path_factory.mktemp("faults-s3")
    (base / "logs").mkdir()
    server = ServerProcess(base / "data", base / "logs", ("--s3-endpoint-url", proxy.url), AWS_ENV)
    server.start()
    try:
        workload = Workload(make_client(server.url))
        watched = [workload.datasource(workload.base_source, statistics=True)]
        watched.append(workload.model(workload.base_model, workload.base_source))
        assert set(wait_settled(workload, watched, SETTLE_SECONDS).values()) == {"COMPLETED"}
        yield S3Server(server, proxy, workload,
                       S3ObjectStore(endpoint_url=moto_url, session=aws_session, retry_seconds=0))
    finally:
        server.stop()
        proxy.close()


def run_case(cluster: S3Server, report: FaultReport, name: str, fault: str, seconds: float,
             methods: tuple[str, ...], kinds: tuple[str, ...]) -> S3Case:
    """Arm the fault, start one job of each kind, wait for them; record the case."""
    workload = cluster.workload
    cluster.proxy.heal()
    before = cluster.proxy.outcomes()
    cluster.proxy.fail(fault, seconds, methods)
    started = time.monotonic()
    watched = [entry for kind in kinds for entry in workload.start(kind, f"{name}-{kind}")]
    final = wait_settled(workload, watched, SETTLE_SECONDS)
    cluster.proxy.heal()
    case = S3Case(
        name, f"{fault} for {seconds:.0f} s from the first {'/'.join(methods)}", final,
        {entity_id: str(workload.get(api_kind, entity_id).get("Message"))
         for api_kind, entity_id in watched if final[entity_id] == "FAILED"},
        dict(cluster.proxy.outcomes() - before), round(time.monotonic() - started, 1))
    report.s3_cases.append(case)
    assert case.proxy.get(fault, 0) >= 2, f"the fault did not hit the job: {case}"
    assert not visible_problems(cluster, final)
    assert cluster.server.health() is not None
    return case


def visible_problems(cluster: S3Server, final: dict[str, str]) -> list[str]:
    """Partial or missing outputs of the batch predictions, as S3 itself holds them."""
    return [problem for batch_id, output in cluster.workload.outputs.items()
            for problem in output_problems(cluster.objects, batch_id, output,
                                           final.get(batch_id) == "COMPLETED", records_per_file())]


SHORT = [("burst-503-batch-upload", "503", ("PUT",), "batch")]
if PROFILE == "full":
    SHORT += [("burst-503-ingest", "503", ALL_METHODS, "datasource"),
              ("stopped-ingest", "drop", ALL_METHODS, "statistics"),
              ("stopped-batch-upload", "drop", ("PUT",), "batch")]


@pytest.mark.parametrize(("name", "fault", "methods", "kind"), SHORT, ids=[s[0] for s in SHORT])
def test_a_fault_that_clears_in_time_is_retried_to_success(
    name: str, fault: str, methods: tuple[str, ...], kind: str, s3_server: S3Server,
    fault_report: FaultReport,
) -> None:
    case = run_case(s3_server, fault_report, name, fault, BURST_SECONDS, methods, (kind,))
    assert set(case.outcomes.values()) == {"COMPLETED"}, case


@pytest.mark.skipif(PROFILE != "full", reason="an outage past the retry budget takes its 30 s")
@pytest.mark.parametrize("fault", ["503", "drop"])
def test_an_outage_past_the_retry_budget_fails_the_jobs_naming_s3(
    fault: str, s3_server: S3Server, fault_report: FaultReport,
) -> None:
    case = run_case(s3_server, fault_report, f"outage-{fault}", fault, RETRY_SECONDS + 30,
                    ALL_METHODS, ("datasource", "batch"))
    assert set(case.outcomes.values()) == {"FAILED"}, case
    reason = "ServiceUnavailable" if fault == "503" else "Connection was closed"
    for message in case.messages.values():
        assert "S3 unavailable after" in message and reason in message, message
    batch_id = f"outage-{fault}-batch"
    assert s3_server.objects.list(s3_server.workload.outputs[batch_id]) == []
    # Once S3 is back, the same server runs jobs on it again.
    watched = s3_server.workload.start("batch", f"after-outage-{fault}")
    final = wait_settled(s3_server.workload, watched, SETTLE_SECONDS)
    assert set(final.values()) == {"COMPLETED"} and not visible_problems(s3_server, final)
