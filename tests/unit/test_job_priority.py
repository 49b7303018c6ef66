"""Jobs run below requests: a job thread's nice value is raised once, the caller's is not."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from openaml.jobs.engine import THREADS_PER_WORKER, Job, JobEngine
from openaml.jobs.priority import JOB_NICENESS, run_below_requests
from openaml.store import EntityKind, EntityRecord, Status
from openaml.store.database import open_store


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_thread_is_lowered_once_and_its_children_inherit() -> None:
    seen: dict[str, int] = {}

    def job_thread() -> None:
        before = _nice()
        run_below_requests()
        run_below_requests()
        seen["job"] = _nice() - before
        child = threading.Thread(target=lambda: seen.update(child=_nice() - before))
        child.start()
        child.join()

    main_before = _nice()
    thread = threading.Thread(target=job_thread)
    thread.start()
    thread.join()
    expected = min(JOB_NICENESS, 19 - main_before)
    assert seen == {"job": expected, "child": expected}
    assert _nice() == main_before


def test_jobs_of_the_engine_run_lowered(tmp_path: Path) -> None:
    if _nice() > 19 - JOB_NICENESS:
        pytest.skip("this process already runs at the lowest priority")
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.insert(EntityRecord(kind=EntityKind.DATASOURCE, id="d", status=Status.PENDING,
                              created_at=1, last_updated_at=1, created_by="test", request={}))
    ran: dict[str, int] = {}

    def task(job: Job) -> dict:
        ran["nice"] = _nice()
        return {}

    with ThreadPoolExecutor(THREADS_PER_WORKER) as executor:
        engine = JobEngine(store, executor, {EntityKind.DATASOURCE: task}, 1, lambda: 2, poll_seconds=0.01)
        engine.start()
        deadline = time.monotonic() + 10
        while "nice" not in ran and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.stop()
    assert ran["nice"] == _nice() + JOB_NICENESS
