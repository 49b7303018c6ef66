"""Front ends sharing a store, and job leases: each job claimed once, finished only by its holder,
requeued only when its holder is gone.

Each test runs on SQLite (a temporary file) and on PostgreSQL (a fresh database; skipped without
OPENAML_TEST_POSTGRES_URL). "Front ends" are separate Store objects (their own connection
pools) on the same database, racing from threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from openaml.store import EntityKind, EntityRecord, Status, Store, open_store
from openaml.store.leases import FrontEnd, Leases, machine, process_start
from openaml.store.tables import entities, front_ends, job_leases, tags

KIND = EntityKind.MLMODEL
JOBS = 30
CLAIMERS = 8  # threads per front end


@pytest.fixture
def stores(store_url: str) -> Iterator[tuple[Store, Store]]:
    """Two front ends' stores on one emptied database."""
    first, second = open_store(store_url), open_store(store_url)
    with first.engine.begin() as conn:
        for table in (tags, entities, job_leases, front_ends):
            conn.execute(table.delete())
    yield first, second
    first.close()
    second.close()


def pending(store: Store, *ids: str) -> None:
    for entity_id in ids:
        store.insert(EntityRecord(kind=KIND, id=entity_id, status=Status.PENDING, created_at=1,
                                  last_updated_at=1, created_by="test", request={}))


def front_end(name: str, host: str | None = None, pid: int = 1) -> FrontEnd:
    return FrontEnd(name, host or machine(), pid, True)


def dead_pid() -> int:
    """The process id of a process that has ended (on this machine)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_racing_front_ends_claim_each_job_exactly_once(stores: tuple[Store, Store]) -> None:
    ids = [f"m{i:02d}" for i in range(JOBS)]
    pending(stores[0], *ids)
    start = threading.Barrier(2 * CLAIMERS, timeout=60)

    def claim_all(index: int) -> list[str]:
        store = stores[index % 2]
        start.wait()
        return [entity_id for entity_id in ids
                if Leases(store).claim(KIND, entity_id, f"fe{index}", f"t{index}-{entity_id}", {"started_at": 5},
                                       1_000)]

    with ThreadPoolExecutor(2 * CLAIMERS) as pool:
        claims = list(pool.map(claim_all, range(2 * CLAIMERS)))
    counted = Counter(entity_id for claimed in claims for entity_id in claimed)
    assert counted == Counter(ids)  # every job once, none twice
    for index, claimed in enumerate(claims):
        assert Leases(stores[0]).held(f"fe{index}", KIND) == set(claimed)
    assert {r.status for r in stores[1].with_status([KIND], Status.INPROGRESS)} == {Status.INPROGRESS}
    assert len(stores[1].with_status([KIND], Status.INPROGRESS)) == JOBS


def test_only_the_run_holding_the_lease_finishes_or_reports_on_a_job(stores: tuple[Store, Store]) -> None:
    """The lease is a run's, not a front end's: a run of the same front end that lost the job
    (requeued and claimed again) writes nothing either."""
    pending(stores[0], "m")
    leases = Leases(stores[0])
    assert leases.claim(KIND, "m", "a", "first", {}, 1_000)
    assert not Leases(stores[1]).claim(KIND, "m", "b", "other", {}, 1_000)
    assert leases.requeue(KIND, "m", now=2_000)               # the first run's lease expired
    assert leases.claim(KIND, "m", "a", "second", {}, 10_000)  # the same front end, a new run
    completed = {"status": Status.COMPLETED}
    for stale in ("first", "other"):
        assert not stores[1].update(KIND, "m", {}, only_if=[Status.INPROGRESS], info={"x": 1}, held_by=stale)
        assert not stores[1].update(KIND, "m", completed, only_if=[Status.INPROGRESS], held_by=stale)
    assert stores[0].update(KIND, "m", {}, only_if=[Status.INPROGRESS], info={"x": 2}, held_by="second")
    assert stores[0].update(KIND, "m", completed, only_if=[Status.INPROGRESS], held_by="second")
    record = stores[1].get(KIND, "m")
    assert record.status is Status.COMPLETED and record.info == {"x": 2}


def test_renewing_extends_the_runs_leases_that_have_not_expired(stores: tuple[Store, Store]) -> None:
    pending(stores[0], "m1", "m2", "m3", "m4")
    leases = Leases(stores[0])
    for entity_id, owner, expires in (("m1", "a", 500), ("m2", "a", 500), ("m3", "b", 100), ("m4", "a", 100)):
        assert leases.claim(KIND, entity_id, owner, f"t-{entity_id}", {}, expires)
    assert leases.tokens("a") == {"t-m1", "t-m2", "t-m4"}
    # m4's lease ran out at 100: it is not renewed, and its job is orphaned for good
    assert leases.renew("a", {"t-m1", "t-m2", "t-m4", "t-m3"}, now=200, expires_at=5_000) == {"t-m1", "t-m2"}
    assert leases.orphaned([KIND], now=1_000) == [(KIND, "m3"), (KIND, "m4")]
    assert leases.renew("a", set(), now=200, expires_at=6_000) == set()
    leases.release("t-m2")
    assert leases.holds("t-m1") and not leases.holds("t-m2")
    assert leases.renew("a", {"t-m1", "t-m2"}, now=300, expires_at=6_000) == {"t-m1"}
    assert leases.held("a", KIND) == {"m1", "m4"}


def test_jobs_without_a_live_holder_are_orphaned(stores: tuple[Store, Store]) -> None:
    """No lease (a crash before leases existed), an expired one, and one whose front end ran on
    this machine and whose process is gone; not a live lease, nor one of a gone process on
    another machine (its pid means nothing here) until it expires."""
    store = stores[0]
    leases = Leases(store)
    gone_here = front_end("gone-here", pid=dead_pid())
    gone_elsewhere = front_end("gone-elsewhere", host="another-machine", pid=dead_pid())
    alive = front_end("alive", pid=os.getpid())
    for fe in (gone_here, gone_elsewhere, alive):
        leases.beat(fe, 10)
    pending(store, "no-lease", "expired", "gone-here", "gone-elsewhere", "alive", "still-pending")
    store.update(KIND, "no-lease", {"status": Status.INPROGRESS})
    for entity_id, owner, expires in (("expired", "alive", 50), ("gone-here", gone_here.id, 10_000),
                                      ("gone-elsewhere", gone_elsewhere.id, 10_000),
                                      ("alive", alive.id, 10_000)):
        assert leases.claim(KIND, entity_id, owner, f"t-{entity_id}", {}, expires)
    assert set(leases.orphaned([KIND], now=100)) == {(KIND, "no-lease"), (KIND, "expired"), (KIND, "gone-here")}
    assert set(leases.orphaned([KIND], now=20_000)) == {
        (KIND, "no-lease"), (KIND, "expired"), (KIND, "gone-here"), (KIND, "gone-elsewhere"), (KIND, "alive")}
    assert leases.orphaned([EntityKind.DATASOURCE], now=20_000) == []
    for entity_id in ("no-lease", "expired", "gone-here"):
        assert Leases(stores[1]).requeue(KIND, entity_id, 100)
        assert store.get(KIND, entity_id).status is Status.PENDING
    assert not Leases(stores[1]).requeue(KIND, "alive", 100)
    assert not Leases(stores[1]).requeue(KIND, "gone-elsewhere", 100)
    assert leases.held(gone_elsewhere.id, KIND) == {"gone-elsewhere"}


def test_a_requeue_of_a_job_claimed_again_meanwhile_leaves_it_to_its_new_holder(
        stores: tuple[Store, Store]) -> None:
    pending(stores[0], "m")
    first, second = Leases(stores[0]), Leases(stores[1])
    assert first.claim(KIND, "m", "a", "t1", {}, 100)
    assert first.orphaned([KIND], now=200) == [(KIND, "m")]  # seen orphaned by both ...
    assert second.requeue(KIND, "m", 200)                     # ... one requeues it ...
    assert second.claim(KIND, "m", "b", "t2", {}, 10_000)     # ... and claims it
    assert not first.requeue(KIND, "m", 200)                  # the other's requeue is refused
    record = stores[0].get(KIND, "m")
    assert record.status is Status.INPROGRESS and first.held("b", KIND) == {"m"}


def test_a_pid_given_to_a_later_process_is_no_live_front_end() -> None:
    """A front end whose pid lives on in another process (started later) is gone; one on
    another machine never is, whatever its pid."""
    here = FrontEnd("x", machine(), os.getpid(), True, process_start(os.getpid()))
    assert not here.gone()
    if here.started is not None:  # Linux
        assert FrontEnd("x", machine(), os.getpid(), True, here.started + 1).gone()
    assert FrontEnd("x", machine(), dead_pid(), True).gone()
    assert not FrontEnd("x", "another-machine#boot", dead_pid(), True).gone()


def test_front_ends_are_live_while_they_beat_and_forgotten_long_after(stores: tuple[Store, Store]) -> None:
    leases = Leases(stores[0])
    a, b = front_end("a"), front_end("b")
    leases.beat(a, 1_000)
    Leases(stores[1]).beat(b, 2_000)
    assert [f.id for f in leases.live(2_000, 1_000)] == ["a", "b"]
    assert [f.id for f in leases.live(2_500, 1_000)] == ["b"]
    leases.beat(a, 4_000)  # beats again: live again, registered once
    assert [f.id for f in leases.live(4_000, 1_000)] == ["a"]
    assert leases.forget(before=3_000) == 1
    assert [f.id for f in leases.live(4_000, 10_000)] == ["a"]
    leases.leave("a")
    assert leases.live(4_000, 10_000) == []


def test_a_run_gives_its_job_back_only_while_it_holds_it_and_the_job_runs(stores: tuple[Store, Store]) -> None:
    """give_back (a run the store failed): PENDING again for a new run; not another run's job;
    and a job deleted meanwhile keeps the run's lease, so that the run ends as a deleted one
    (it logged that another front end ran it)."""
    pending(stores[0], "m", "d")
    leases = Leases(stores[0])
    assert leases.claim(KIND, "m", "a", "run-1", {}, 1_000) and leases.claim(KIND, "d", "a", "run-2", {}, 1_000)
    assert not leases.give_back(KIND, "m", "someone-else", now=2)
    assert leases.give_back(KIND, "m", "run-1", now=2)
    assert stores[1].get(KIND, "m").status is Status.PENDING and not leases.holds("run-1")
    assert stores[0].update(KIND, "d", {"status": Status.DELETED})
    assert not leases.give_back(KIND, "d", "run-2", now=3)
    assert leases.holds("run-2") and stores[1].get(KIND, "d").status is Status.DELETED
