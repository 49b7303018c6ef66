"""Store writes that read before they write (tags, info merges) under concurrent writers.

Each test runs on SQLite (a temporary file) and on PostgreSQL (a fresh database; skipped without
OPENAML_TEST_POSTGRES_URL). Racing writers are threads of one process, each on its own pooled
connection; "another process" is a second engine holding an open write transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, create_engine, insert, select, update

from openaml.store import EntityKind, EntityRecord, Status, Store, open_store
from openaml.store.tables import entities, tags

KIND = EntityKind.DATASOURCE
THREADS = 20
LIMIT = 50
HTTP_THREADS = 40  # Starlette's run_in_threadpool limit (AnyIO's default)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store holding one PENDING datasource, "ds", and nothing else."""
    opened = open_store(store_url)
    with opened.engine.begin() as conn:
        conn.execute(tags.delete())
        conn.execute(entities.delete())
    opened.insert(EntityRecord(kind=KIND, id="ds", status=Status.PENDING, created_at=1,
                               last_updated_at=1, created_by="test", request={}))
    yield opened
    opened.close()


@pytest.fixture
def other_engine(store_url: str, store: Store) -> Iterator[Engine]:
    """A second, plain engine on the same database: another process's connection."""
    engine = create_engine(store_url)
    yield engine
    engine.dispose()


def race(action: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Run action(0..threads-1) on as many threads, released together; their results in order."""
    start = threading.Barrier(threads, timeout=60)

    def run(index: int) -> Any:
        start.wait()
        return action(index)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(threads)))


def hold_write(engine: Engine, write: Callable[[sqlalchemy.Connection], None],
               ) -> tuple[threading.Event, threading.Thread]:
    """In a thread: lock the entity's row as a writer does, apply `write`, and commit only when
    the returned event is set. Returns once `write` is done: (release, thread)."""
    holding, release = threading.Event(), threading.Event()

    def run() -> None:
        with engine.begin() as conn:
            conn.execute(select(entities.c.id).where(
                entities.c.kind == KIND.value, entities.c.id == "ds").with_for_update())
            write(conn)
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=run)
    thread.start()
    assert holding.wait(30)
    return release, thread


def insert_tags(keys: list[str]) -> Callable[[sqlalchemy.Connection], None]:
    def write(conn: sqlalchemy.Connection) -> None:
        conn.execute(insert(tags), [
            {"kind": KIND.value, "id": "ds", "key": key, "value": "held", "position": 1000 + i}
            for i, key in enumerate(keys)])
    return write


def test_racing_adds_of_the_same_new_keys_all_succeed_once(store: Store) -> None:
    keys = {f"k{i}": f"v{i}" for i in range(5)}
    assert race(lambda _: store.put_tags(KIND, "ds", keys, LIMIT)) == [True] * THREADS
    assert store.get_tags(KIND, "ds") == list(keys.items())


def test_racing_for_the_last_free_tags_admits_exactly_one(store: Store) -> None:
    assert store.put_tags(KIND, "ds", {f"old{i}": None for i in range(LIMIT - 5)}, LIMIT)
    results = race(lambda n: store.put_tags(KIND, "ds", {f"t{n}-{i}": None for i in range(5)},
                                            LIMIT))
    assert results.count(True) == 1
    found = store.get_tags(KIND, "ds")
    assert len(found) == LIMIT
    winner = results.index(True)
    assert [k for k, _ in found[-5:]] == [f"t{winner}-{i}" for i in range(5)]


def test_racing_adds_and_deletes_keep_positions_unique_and_the_limit(store: Store) -> None:
    def churn(n: int) -> None:
        for round_ in range(5):
            store.put_tags(KIND, "ds", {f"t{n % 7}-{round_}-{i}": str(n) for i in range(9)}, LIMIT)
            store.delete_tags(KIND, "ds", [f"t{(n + 3) % 7}-{round_}-{i}" for i in range(0, 9, 2)])

    race(churn)
    found = store.get_tags(KIND, "ds")
    assert len(found) <= LIMIT
    assert len({k for k, _ in found}) == len(found)
    with store.engine.connect() as conn:
        positions = conn.execute(select(tags.c.position).where(tags.c.id == "ds")).scalars().all()
    assert len(set(positions)) == len(positions)


def test_racing_info_merges_lose_no_key(store: Store) -> None:
    assert store.update(KIND, "ds", {}, info={"first": 0})
    results = race(lambda n: store.update(KIND, "ds", {"last_updated_at": n}, info={f"k{n}": n}))
    assert results == [True] * THREADS
    record = store.get(KIND, "ds")
    assert record is not None
    assert record.info == {"first": 0, **{f"k{n}": n for n in range(THREADS)}}


def test_racing_info_merges_respect_the_status_condition(store: Store) -> None:
    """Half the writers merge only while PENDING; the other half move the entity on."""
    def write(n: int) -> bool:
        if n % 2:
            return store.update(KIND, "ds", {"status": Status.FAILED}, only_if=[Status.PENDING])
        return store.update(KIND, "ds", {}, only_if=[Status.PENDING], info={f"k{n}": n})

    results = race(write)
    record = store.get(KIND, "ds")
    assert record is not None and record.status is Status.FAILED
    assert results[1::2].count(True) == 1
    merged = {f"k{n}": n for n in range(0, THREADS, 2) if results[n]}
    assert record.info == merged


def test_a_tag_add_waits_for_a_concurrent_writer_and_sees_its_tags(
        store: Store, other_engine: Engine) -> None:
    """Another writer fills 48 of 50 tags while an add of 5 waits: the add must then fail."""
    release, holder = hold_write(other_engine, insert_tags([f"h{i}" for i in range(LIMIT - 2)]))
    outcome: list[bool] = []
    adder = threading.Thread(target=lambda: outcome.append(
        store.put_tags(KIND, "ds", {f"n{i}": None for i in range(5)}, LIMIT)))
    adder.start()
    adder.join(0.5)  # the add is waiting for the holder (or, before the fix, already done)
    release.set()
    holder.join(30)
    adder.join(30)
    assert outcome == [False]
    assert len(store.get_tags(KIND, "ds")) == LIMIT - 2


def test_an_info_merge_waits_for_a_concurrent_writer_and_keeps_its_keys(
        store: Store, other_engine: Engine) -> None:
    def write_info(conn: sqlalchemy.Connection) -> None:
        conn.execute(update(entities).where(entities.c.id == "ds").values(info={"held": 1}))

    release, holder = hold_write(other_engine, write_info)
    outcome: list[bool] = []
    merger = threading.Thread(target=lambda: outcome.append(
        store.update(KIND, "ds", {}, info={"mine": 2})))
    merger.start()
    merger.join(0.5)
    release.set()
    holder.join(30)
    merger.join(30)
    assert outcome == [True]
    record = store.get(KIND, "ds")
    assert record is not None and record.info == {"held": 1, "mine": 2}


def test_reads_do_not_wait_for_an_open_write(store: Store, other_engine: Engine) -> None:
    """Describe and the scheduler read while writers work: a held write lock must not stop them."""
    assert store.put_tags(KIND, "ds", {"before": None}, LIMIT)
    release, holder = hold_write(other_engine, insert_tags(["uncommitted"]))
    try:
        seen: list[Any] = []
        reader = threading.Thread(target=lambda: seen.extend([
            store.get_tags(KIND, "ds"), store.status(KIND, "ds"),
            [r.id for r in store.with_status([KIND], Status.PENDING)]]))
        reader.start()
        reader.join(10)
        assert not reader.is_alive(), "a read waited for the open write transaction"
        assert seen == [[("before", None)], (Status.PENDING, None), ["ds"]]
    finally:
        release.set()
        holder.join(30)


def test_every_thread_of_the_server_gets_a_connection_at_once(store: Store) -> None:
    """The HTTP thread pool (40) and the job threads query together; a thread that waited for
    a pooled connection is not served in turn and could time out after 30 s (a 500)."""
    wanted = HTTP_THREADS + 8
    held: list[sqlalchemy.Connection] = []

    def take() -> None:
        for _ in range(wanted):
            held.append(store.engine.connect())

    taker = threading.Thread(target=take)
    taker.start()
    taker.join(10)
    try:
        assert len(held) == wanted, f"only {len(held)} connections at once"
    finally:
        taker.join(60)
        for conn in held:
            conn.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_store_is_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(ValueError, match="in-memory SQLite"):
        open_store(url)
