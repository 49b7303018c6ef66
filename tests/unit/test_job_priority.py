"""Jobs run below requests: a job thread's nice value is raised once, the caller's is not."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from openaml.jobs.engine import THREADS_PER_WORKER, Job, JobEngine
from openaml.jobs.priority import JOB_NICENESS, run_below_requests
from openaml.jobs.specs import DataSourceResult
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

    def task(job: Job) -> DataSourceResult:
        ran["nice"] = _nice()
        return DataSourceResult(0, 0, ())

    with ThreadPoolExecutor(THREADS_PER_WORKER) as executor:
        engine = JobEngine(store, executor, {EntityKind.DATASOURCE: task}, 1, lambda: 2, poll_seconds=0.01)
        engine.start()
        deadline = time.monotonic() + 10
        while "nice" not in ran and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.stop()
    assert ran["nice"] == _nice() + JOB_NICENESS


def _blas_threads() -> dict[str, int]:
    """Threads of each BLAS library loaded, NumPy's among them."""
    import numpy as np
    from threadpoolctl import threadpool_info

    np.dot(np.ones(3), np.ones(3))  # NumPy's BLAS is loaded
    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_jobs_use_one_blas_thread():
    """NumPy's BLAS threads spin after each call at normal priority: the job process keeps
    BLAS to the calling thread (a 2 M-row ingest: 5.9 s of CPU spun away, 5.7 -> 3.5 s)."""
    from threadpoolctl import threadpool_limits

    from openaml.jobs.priority import single_threaded_blas

    before = _blas_threads()
    assert before
    try:
        single_threaded_blas()
        assert set(_blas_threads().values()) == {1}
    finally:
        threadpool_limits(limits=max(before.values()), user_api="blas")


def test_ingestion_uses_one_blas_thread(monkeypatch):
    """Ingestion called as a library (not in a job) keeps BLAS to one thread too, as training
    does: every BLAS library loaded when it starts (NumPy's) runs on one thread meanwhile."""
    import io
    import json

    from openaml.ml.data import DataObject, ingest, parse_rearrangement, statistics
    from openaml.ml.schema import parse_schema

    loaded, seen = _blas_threads(), []
    add = statistics.StatisticsBuilder.add
    monkeypatch.setattr(statistics.StatisticsBuilder, "add",
                        lambda self, *a, **k: seen.append(_blas_threads()) or add(self, *a, **k))
    data = b"".join(b"%d,%d\n" % (i, i % 2) for i in range(50))
    schema = parse_schema(json.dumps({"attributes": [{"attributeName": "n", "attributeType": "NUMERIC"},
                                                     {"attributeName": "y", "attributeType": "BINARY"}]}))
    ingest([DataObject("s3://b/d.csv", "d.csv", len(data), lambda: io.BytesIO(data))], schema,
           parse_rearrangement(None), True, io.BytesIO())
    assert loaded and seen and all(threads[path] == 1 for threads in seen for path in loaded)


def test_the_native_libraries_are_found_once_per_process(monkeypatch):
    """threadpoolctl's threadpool_limits looks for the loaded libraries at every call (6-13 ms,
    110 ms the first), which each ingestion and training paid: once the modules are imported,
    the process has found them, and training keeps BLAS to one thread as before."""
    import io
    import json

    import pyarrow as pa
    import threadpoolctl

    from openaml.ml import parse_parameters, train_model
    from openaml.ml.data import DataObject, ingest, parse_rearrangement
    from openaml.ml.schema import parse_schema
    from openaml.ml.training.progress import TrainingProgress

    loaded, seen = _blas_threads(), []
    pools = threadpoolctl.ThreadpoolController()  # reads the threads live, found before counting
    data = b"".join(b"%d,%d\n" % (i, i % 2) for i in range(100))
    schema = parse_schema(json.dumps({"targetAttributeName": "y", "attributes": [
        {"attributeName": "n", "attributeType": "NUMERIC"}, {"attributeName": "y", "attributeType": "BINARY"}]}))

    def record(progress: TrainingProgress) -> None:
        seen.append({pool["filepath"]: pool["num_threads"] for pool in pools.info()})

    def ingest_and_train() -> None:
        sink = io.BytesIO()
        ingest([DataObject("s3://b/d.csv", "d.csv", len(data), lambda: io.BytesIO(data))], schema,
               parse_rearrangement(None), True, sink)
        train_model("BINARY", schema, '{"outputs": ["n"]}', parse_parameters({"sgd.maxPasses": "2"}, "BINARY"),
                    None, lambda: iter(pa.ipc.open_stream(sink.getvalue())), record)

    ingest_and_train()  # the modules they need are imported
    scans: list[None] = []
    look = threadpoolctl.ThreadpoolController.__init__
    monkeypatch.setattr(threadpoolctl.ThreadpoolController, "__init__",
                        lambda self: scans.append(None) or look(self))
    ingest_and_train()
    ingest_and_train()
    assert scans == []
    assert loaded and seen and all(threads[path] == 1 for threads in seen for path in loaded)
