"""Datasource jobs of one input read it once when they run together, and alone otherwise."""

import io
import threading
import time
from contextlib import contextmanager

import pytest

from openaml.jobs.shared_work import SharedWork
from openaml.ml.data import DataError, Target, parse_rearrangement


def _target() -> Target:
    return Target(parse_rearrangement(None), False, io.BytesIO())


def test_peers_join_one_read_and_get_their_own_results() -> None:
    shared = SharedWork(gather_seconds=5)
    reads: list[int] = []
    results: dict[str, object] = {}
    peers = {"a", "b"}

    def read(targets):
        reads.append(len(targets))
        return [f"report {len(reads)}-{i}" for i in range(len(targets))]

    idle: list[str] = []

    def job(job_id: str) -> None:
        @contextmanager
        def waiting():
            idle.append(job_id)
            yield

        results[job_id] = shared.join("key", job_id, _target(), lambda: peers - {job_id}, read,
                                        waiting)

    threads = [threading.Thread(target=job, args=(i,)) for i in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reads == [2]
    assert sorted(results.values()) == [("report 1-0", 2), ("report 1-1", 2)]
    assert len(idle) == 1  # the job that did not read waited idle


def test_alone_after_the_gathering_and_errors_reach_every_job() -> None:
    shared = SharedWork(gather_seconds=0.05, min_gather_seconds=0)
    report, readers = shared.join("key", "a", _target(), set, lambda targets: ["only"])
    assert (report, readers) == ("only", 1)

    def failing(targets):
        raise DataError("More than 10,000 records were rejected")

    with pytest.raises(DataError, match="10,000"):
        shared.join("key", "b", _target(), set, failing)
    with pytest.raises(DataError, match="no valid record"):  # a target's own error
        shared.join("key", "c", _target(), set, lambda targets: [DataError("no valid record")])
    # a peer that never joins costs at most the gathering time
    assert shared.join("other", "d", _target(), lambda: {"ghost"}, lambda t: ["ok"]) == ("ok", 1)


def test_a_failing_leader_releases_every_job() -> None:
    shared = SharedWork(gather_seconds=5, min_gather_seconds=0.2)
    calls = []

    def peers():
        calls.append(1)
        if len(calls) > 10:  # after about 0.1 s, once b has joined (c never does)
            raise OSError("store busy")
        return {"b", "c"}

    errors: dict[str, BaseException] = {}

    def job(job_id: str, peer_set) -> None:
        try:
            shared.join("key", job_id, _target(), peer_set, lambda targets: ["never"] * len(targets))
        except BaseException as exc:  # noqa: BLE001
            errors[job_id] = exc

    threads = [threading.Thread(target=job, args=("a", peers)),
               threading.Thread(target=job, args=("b", set))]
    threads[0].start()
    time.sleep(0.02)
    threads[1].start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert isinstance(errors["a"], OSError) and isinstance(errors["b"], OSError)
    assert shared.join("key", "c", _target(), set, lambda targets: ["ok"]) == ("ok", 1)


def test_a_leader_reads_as_soon_as_its_peers_have_joined() -> None:
    """Waiting for a Create call on its way (min_gather_seconds) is for a leader alone."""
    shared = SharedWork(gather_seconds=30, min_gather_seconds=30)
    results: dict[str, object] = {}

    def job(job_id: str) -> None:
        results[job_id] = shared.join("key", job_id, _target(), lambda: {"a", "b"} - {job_id},
                                        lambda targets: ["ok"] * len(targets))

    started = time.monotonic()
    threads = [threading.Thread(target=job, args=(i,)) for i in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == {"a": ("ok", 2), "b": ("ok", 2)} and time.monotonic() - started < 20


def test_a_job_settled_during_the_work_stops_waiting_for_the_others() -> None:
    """A job whose part of the work failed (or which was deleted) ends then, not when the work
    for its peers ends: a worker slot and its open outputs are not held meanwhile."""
    shared = SharedWork(gather_seconds=5, min_gather_seconds=0)
    finish = threading.Event()
    ended: dict[str, float] = {}
    outcomes: dict[str, object] = {}

    def work(targets):
        shared.settle("b", ValueError("b's output failed"))
        shared.settle("b", ValueError("a second outcome is ignored"))
        finish.wait(10)
        return ["a's result", ValueError("not this one")]

    def job(job_id: str) -> None:
        try:
            outcomes[job_id] = shared.join("key", job_id, _target(), lambda: {"a", "b"} - {job_id}, work)
        except ValueError as exc:
            outcomes[job_id] = exc
        ended[job_id] = time.monotonic()

    threads = [threading.Thread(target=job, args=(i,)) for i in ("a", "b")]
    threads[0].start()  # a leads: it works for both
    time.sleep(0.05)
    threads[1].start()
    deadline = time.monotonic() + 10
    while "b" not in ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "b" in ended and "a" not in ended
    finish.set()
    for t in threads:
        t.join(timeout=10)
    assert outcomes["a"] == ("a's result", 2)
    assert str(outcomes["b"]) == "b's output failed"


def test_a_leader_without_peers_starts_at_once_when_asked_not_to_wait() -> None:
    """Scoring's gathering (min_gather_seconds=0): an evaluation with no batch prediction of
    its model and datasource running scores without waiting."""
    shared = SharedWork(gather_seconds=30, min_gather_seconds=0)
    started = time.monotonic()
    assert shared.join("key", "a", _target(), set, lambda targets: ["ok"]) == ("ok", 1)
    assert time.monotonic() - started < 5
