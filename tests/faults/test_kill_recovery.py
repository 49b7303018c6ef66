"""SIGKILL the server at random moments of each job kind, and once more while it re-runs them.

All trials share one data directory and one port: each kills the server while a job of its
kind runs (at a moment drawn between 0 and the job's calibrated duration), restarts it,
optionally kills it again while it re-runs the interrupted job and restarts it once more, then
checks that every entity so far has ended COMPLETED or FAILED, that no temporary file is left,
that the store is intact and fully readable, and that no partial batch output is visible
(also right after each kill, before the restart).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from openaml.storage import LocalObjectStore
from tests.api.conftest import make_client
from tests.faults.checks import (
    api_problems,
    integrity,
    output_problems,
    statistics_problems,
    temp_files,
)
from tests.faults.conftest import FULL_TRIALS, PROFILE, SEED
from tests.faults.report import FaultReport, KillPoint, Trial
from tests.faults.server import ServerProcess
from tests.faults.workload import (
    ACTIVE,
    BUCKET,
    ENDPOINT_DELAY_SECONDS,
    KINDS,
    Workload,
    data_files,
    records_per_file,
    wait_settled,
)

SETTLE_SECONDS = 180  # bound on the wait for every entity to end after a restart


@dataclass(frozen=True)
class Plan:
    number: int
    kind: str
    recovery_kill: bool  # kill again while the restarted server re-runs the job

    def __str__(self) -> str:
        return f"{self.number:02d}-{self.kind}{'-recovery' if self.recovery_kill else ''}"


def plans(profile: str, seed: int) -> list[Plan]:
    """quick: each kind once, one job (not the endpoint, a timer) also killed during recovery;
    full: FULL_TRIALS trials over the kinds and `chain` (a whole workflow at once), a quarter
    of them killed twice."""
    rng = random.Random(seed)
    if profile != "full":
        kinds = rng.sample(KINDS, len(KINDS))
        twice = rng.choice([i for i, kind in enumerate(kinds) if kind != "endpoint"])
        return [Plan(i + 1, kind, i == twice) for i, kind in enumerate(kinds)]
    pool = [*KINDS, "chain"]
    kinds = [pool[i % len(pool)] for i in range(FULL_TRIALS)]
    rng.shuffle(kinds)
    twice = set(rng.sample(range(FULL_TRIALS), max(1, FULL_TRIALS // 4)))
    return [Plan(i + 1, kind, i in twice) for i, kind in enumerate(kinds)]


@dataclass
class Cluster:
    server: ServerProcess
    workload: Workload
    objects: LocalObjectStore
    expected: dict[str, float]  # job kind -> seconds from its create call to its end
    rng: random.Random


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("faults")
    data_dir, logs = base / "data", base / "logs"
    inputs = data_dir / "s3" / BUCKET / "data"
    inputs.mkdir(parents=True)
    logs.mkdir()
    for name, data in data_files().items():
        (inputs / name).write_bytes(data)
    server = ServerProcess(data_dir, logs,
                           env={"OPENAML_ENDPOINT_DELAY_SECONDS": str(ENDPOINT_DELAY_SECONDS)})
    server.start()
    try:
        workload = Workload(make_client(server.url))
        yield Cluster(server, workload, LocalObjectStore(data_dir / "s3"), calibrate(workload),
                      random.Random(SEED))
    finally:
        server.stop()


def calibrate(workload: Workload) -> dict[str, float]:
    """Run each job kind once, uninterrupted; these runs also make the base entities."""
    expected: dict[str, float] = {}
    for kind, name in [("statistics", workload.base_source), ("model", workload.base_model),
                       ("datasource", "calibration-ds"), ("evaluation", "calibration-ev"),
                       ("batch", "calibration-bp"), ("endpoint", "")]:
        watched = workload.start(kind, name)
        started = time.monotonic()
        statuses = wait_settled(workload, watched, SETTLE_SECONDS)
        expected[kind] = time.monotonic() - started
        assert set(statuses.values()) <= {"COMPLETED", "READY"}, (kind, statuses)
    expected["chain"] = expected["statistics"] + expected["model"] + expected["batch"]
    return expected


def kill_within(cluster: Cluster, watched: list[tuple[str, str]], phase: str, kind: str,
                share: tuple[float, float] = (0.0, 1.0)) -> KillPoint:
    """Poll the watched entities until a random moment of the job's expected duration, then
    SIGKILL the server. During recovery the moment is counted from when the re-run begins
    (the restarted server puts interrupted jobs back to PENDING before it runs them)."""
    expected = cluster.expected[kind]
    at = cluster.rng.uniform(*share) * expected
    seen = statuses(cluster.workload, watched)
    deadline = time.monotonic() + SETTLE_SECONDS
    while phase == "recovery" and "INPROGRESS" not in seen and "UPDATING" not in seen:
        assert time.monotonic() < deadline, f"the interrupted job never ran again: {seen}"
        if not any(status in ACTIVE for status in seen.split("/")):
            break  # already ended: the kill then hits a server at rest
        time.sleep(0.02)
        seen = statuses(cluster.workload, watched)
    watcher = Watcher(cluster.workload, watched, seen)
    started = time.monotonic()
    watcher.start()
    time.sleep(at)
    cluster.server.kill()
    killed = time.monotonic() - started
    watcher.stop.set()
    watcher.join(timeout=30)
    return KillPoint(phase, kind, round(killed, 3), round(expected, 3), watcher.seen)


def statuses(workload: Workload, watched: list[tuple[str, str]]) -> str:
    return "/".join(workload.status(api_kind, entity_id) for api_kind, entity_id in watched)


class Watcher(threading.Thread):
    """Polls the watched entities until stopped or the server is gone; `seen` is the last answer."""

    def __init__(self, workload: Workload, watched: list[tuple[str, str]], seen: str) -> None:
        super().__init__(name="fault-watcher", daemon=True)
        self.workload, self.watched, self.seen = workload, watched, seen
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.seen = statuses(self.workload, self.watched)
            except (BotoCoreError, ClientError, KeyError):
                # killed while it asked (a KeyError: the kill cut the answer after its status
                # line, and botocore parses an empty 200 as a result without members)
                return
            self.stop.wait(0.02)


def crash_state(cluster: Cluster, trial: Trial) -> None:
    """What a kill left on disk: temporary files (counted) and partial outputs (none allowed)."""
    trial.temp_files_after_kill += len(temp_files(cluster.server.data_dir))
    problems = batch_problems(cluster, completed=set())
    trial.partial_outputs += len(problems)
    assert not problems, f"partial batch output visible after a kill: {problems}"


def batch_problems(cluster: Cluster, completed: set[str]) -> list[str]:
    records = records_per_file()
    return [problem for batch_id, output in cluster.workload.outputs.items()
            for problem in output_problems(cluster.objects, batch_id, output,
                                           batch_id in completed, records)]


PLANS = plans(PROFILE, SEED)


@pytest.mark.parametrize("plan", PLANS, ids=str)
def test_kill_during_a_job_then_restart(plan: Plan, cluster: Cluster, fault_report: FaultReport) -> None:
    trial = Trial(plan.number, plan.kind)
    fault_report.trials.append(trial)
    started = time.monotonic()
    server, workload = cluster.server, cluster.workload
    if server.process is None:  # an earlier trial failed with the server down
        server.start()
    first_start = server.starts
    watched = workload.start(plan.kind, f"t{plan.number:02d}-{plan.kind}")
    # A job to be re-run must have been interrupted: the first of two kills falls mid-job.
    share = (0.2, 0.7) if plan.recovery_kill else (0.0, 1.0)
    trial.kills.append(kill_within(cluster, watched, "job", plan.kind, share))
    crash_state(cluster, trial)
    server.start()
    if plan.recovery_kill:
        trial.kills.append(kill_within(cluster, watched, "recovery", plan.kind))
        crash_state(cluster, trial)
        server.start()

    everything = [(api_kind, entity_id) for api_kind, ids in workload.entities.items()
                  for entity_id in ids]
    if workload.endpoint_wanted:
        everything.append(("Endpoint", workload.base_model))
    final = wait_settled(workload, everything, SETTLE_SECONDS)
    trial.outcome = "/".join(final[entity_id if api_kind != "Endpoint" else f"endpoint:{entity_id}"]
                             for api_kind, entity_id in watched)
    trial.messages = {entity_id: str(workload.get(api_kind, entity_id).get("Message"))
                      for api_kind, entity_id in watched
                      if api_kind != "Endpoint" and final[entity_id] == "FAILED"}
    leftovers = temp_files(server.data_dir)
    trial.temp_files_after_restart = len(leftovers)
    trial.integrity = integrity(server.data_dir / "openaml.db")
    trial.entities_checked, problems = api_problems(workload)
    completed = {entity_id for entity_id, status in final.items() if status == "COMPLETED"}
    output = batch_problems(cluster, completed)
    trial.partial_outputs += len(output)
    problems += output + statistics_problems(workload, server.url)
    if workload.endpoint_wanted:
        problems += endpoint_problems(workload, server.url)
    trial.errors_logged = server.logged_errors(since_start=first_start)
    learn(cluster, plan.kind, watched)
    trial.seconds = round(time.monotonic() - started, 2)

    assert not leftovers, f"temporary files after the restart: {leftovers}"
    assert trial.integrity == "ok"
    assert not problems
    assert not trial.errors_logged
    assert set(final.values()) <= {"COMPLETED", "FAILED", "READY"}, final


def learn(cluster: Cluster, kind: str, watched: list[tuple[str, str]]) -> None:
    """Keep a kind's expected duration at its fastest run seen (the re-run after the kill), so
    that kills still fall inside jobs when the calibration ran on a busier machine."""
    if kind in ("endpoint", "chain"):
        return
    found = cluster.workload.get(*watched[0])
    if found["Status"] == "COMPLETED":
        ran = (found["FinishedAt"] - found["StartedAt"]).total_seconds()
        cluster.expected[kind] = min(cluster.expected[kind], max(ran, 0.05))
        cluster.expected["chain"] = min(cluster.expected["chain"], cluster.expected["statistics"]
                                        + cluster.expected["model"] + cluster.expected["batch"])


def endpoint_problems(workload: Workload, url: str) -> list[str]:
    """The endpoint asked for is READY again, and predicts."""
    info = workload.ml.get_ml_model(MLModelId=workload.base_model)["EndpointInfo"]
    if info["EndpointStatus"] != "READY":
        return [f"the endpoint of {workload.base_model} is {info['EndpointStatus']}"]
    answer: Any = workload.ml.predict(MLModelId=workload.base_model, PredictEndpoint=url,
                                      Record={"id": "r1", "x1": "0.5", "c": "red", "words": "good"})
    return [] if "predictedLabel" in answer["Prediction"] else [f"Predict answered {answer}"]


def test_the_plans_cover_every_job_kind_and_a_kill_during_recovery() -> None:
    for profile in ("quick", "full"):
        chosen = plans(profile, SEED)
        assert {plan.kind for plan in chosen} >= set(KINDS)
        assert any(plan.recovery_kill for plan in chosen)
    assert len(plans("full", SEED)) == FULL_TRIALS


def test_temp_file_detection_sees_both_prefixes(tmp_path: Path) -> None:
    (tmp_path / "artifacts" / "MLModel" / "m").mkdir(parents=True)
    (tmp_path / "artifacts" / "MLModel" / "m" / ".tmp-abc").write_bytes(b"x")
    (tmp_path / "s3" / "bucket" / "out").mkdir(parents=True)
    (tmp_path / "s3" / "bucket" / "out" / ".openaml-tmp-abc").write_bytes(b"x")
    (tmp_path / "s3" / "bucket" / "out" / "whole.gz").write_bytes(b"x")
    assert temp_files(tmp_path) == ["artifacts/MLModel/m/.tmp-abc", "s3/bucket/out/.openaml-tmp-abc"]
