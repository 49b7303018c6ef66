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
from pathlib import Path

import pytest

from openaml.store import EntityKind, EntityRecord, Status, Store, open_store
from openaml.store.leases import FrontEnd, Leases, machine
from openaml.store.tables import entities, front_ends, job_leases, tags
from tests.conftest import fresh_postgres_database

KIND = EntityKind.MLMODEL
JOBS = 30
CLAIMERS = 8  # threads per front end


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_url, "openaml_leases") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_database"))


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
                if Leases(store).claim(KIND, entity_id, f"fe{index}", {"started_at": 5}, 1_000)]

    with ThreadPoolExecutor(2 * CLAIMERS) as pool:
        claims = list(pool.map(claim_all, range(2 * CLAIMERS)))
    counted = Counter(entity_id for claimed in claims for entity_id in claimed)
    assert counted == Counter(ids)  # every job once, none twice
    for index, claimed in enumerate(claims):
        assert Leases(stores[0]).held(f"fe{index}", KIND) == set(claimed)
    assert {r.status for r in stores[1].with_status([KIND], Status.INPROGRESS)} == {Status.INPROGRESS}
    assert len(stores[1].with_status([KIND], Status.INPROGRESS)) == JOBS


def test_only_the_holder_of_the_lease_finishes_or_reports_on_a_job(stores: tuple[Store, Store]) -> None:
    pending(stores[0], "m")
    assert Leases(stores[0]).claim(KIND, "m", "a", {}, 1_000)
    assert not Leases(stores[1]).claim(KIND, "m", "b", {}, 1_000)
    completed = {"status": Status.COMPLETED}
    assert not stores[1].update(KIND, "m", {}, only_if=[Status.INPROGRESS], info={"x": 1}, held_by="b")
    assert not stores[1].update(KIND, "m", completed, only_if=[Status.INPROGRESS], held_by="b")
    assert stores[0].update(KIND, "m", {}, only_if=[Status.INPROGRESS], info={"x": 2}, held_by="a")
    assert stores[0].update(KIND, "m", completed, only_if=[Status.INPROGRESS], held_by="a")
    record = stores[1].get(KIND, "m")
    assert record.status is Status.COMPLETED and record.info == {"x": 2}


def test_renewing_extends_every_lease_of_its_owner_and_tells_which_are_held(stores: tuple[Store, Store]) -> None:
    pending(stores[0], "m1", "m2", "m3")
    leases = Leases(stores[0])
    for entity_id, owner in (("m1", "a"), ("m2", "a"), ("m3", "b")):
        assert leases.claim(KIND, entity_id, owner, {}, 100)
    assert leases.renew("a", 5_000) == {(KIND, "m1"), (KIND, "m2")}
    assert leases.orphaned([KIND], now=1_000) == [(KIND, "m3")]  # b's lease ran out at 100
    leases.release(KIND, "m2", "a")
    leases.release(KIND, "m1", "b")  # not b's: kept
    assert leases.renew("a", 6_000) == {(KIND, "m1")}


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
        assert leases.claim(KIND, entity_id, owner, {}, expires)
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
    assert first.claim(KIND, "m", "a", {}, 100)
    assert first.orphaned([KIND], now=200) == [(KIND, "m")]  # seen orphaned by both ...
    assert second.requeue(KIND, "m", 200)                     # ... one requeues it ...
    assert second.claim(KIND, "m", "b", {}, 10_000)           # ... and claims it
    assert not first.requeue(KIND, "m", 200)                  # the other's requeue is refused
    record = stores[0].get(KIND, "m")
    assert record.status is Status.INPROGRESS and first.held("b", KIND) == {"m"}


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
