"""The job engine's worker limit: a job waiting idle on another's work frees its worker."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from openaml.jobs.engine import THREADS_PER_WORKER, Job, JobEngine
from openaml.jobs.record_info import read_progress, read_secret, secret_info
from openaml.jobs.specs import DataSourceResult
from openaml.jobs.tasks import PROGRESS_SECONDS, ProgressRecorder
from openaml.ml.errors import InputError
from openaml.ml.training.progress import TrainingProgress
from openaml.store import EntityKind, EntityRecord, Status, Store
from openaml.store.database import open_store

DONE = DataSourceResult(0, 0, ())


def _pending(store, entity_id: str, secret: str | None = None) -> None:
    store.insert(EntityRecord(kind=EntityKind.DATASOURCE, id=entity_id, status=Status.PENDING,
                              created_at=1, last_updated_at=1, created_by="test", request={},
                              info=secret_info(secret) if secret else {}))


def _run(tmp_path: Path, task, ids: list[str], log_writer=lambda record, line: None,
         in_progress: tuple[str, ...] = (), workers: int = 1, store: Store | None = None) -> dict[str, Status]:
    reader = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")  # the engine's store may not answer
    store = store or reader
    for entity_id in ids:
        _pending(store, entity_id)
    for entity_id in in_progress:  # left INPROGRESS by a crash
        store.update(EntityKind.DATASOURCE, entity_id, {"status": Status.INPROGRESS})
    with ThreadPoolExecutor(THREADS_PER_WORKER * workers) as executor:
        engine = JobEngine(store, executor, {EntityKind.DATASOURCE: task}, workers, lambda: 2,
                           log_writer, poll_seconds=0.01)
        engine.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                found = {i: reader.get(EntityKind.DATASOURCE, i).status for i in ids}
                if all(s in (Status.COMPLETED, Status.FAILED) for s in found.values()):
                    break
                time.sleep(0.01)
        finally:
            engine.stop()
    return found


def test_an_idle_job_lets_another_start_on_its_worker(tmp_path: Path) -> None:
    other_ran = threading.Event()

    def task(job: Job) -> DataSourceResult:
        if job.record.id == "waits":
            with job.idle():  # one worker: "works" can start only if this frees it
                assert other_ran.wait(5)
        else:
            other_ran.set()
        return DONE

    assert _run(tmp_path, task, ["waits", "works"]) == {"waits": Status.COMPLETED, "works": Status.COMPLETED}


def test_a_job_knows_how_many_others_run_beside_it_not_counting_idle_ones(tmp_path: Path) -> None:
    """Job.others: an evaluation and a batch prediction that start together score on one
    thread each (Tasks._scoring); a job waiting on another's work (idle) is not counted."""
    together = threading.Barrier(2, timeout=5)
    went_idle, seen = threading.Event(), {}

    def task(job: Job) -> DataSourceResult:
        together.wait()  # both running
        seen[f"{job.record.id} beside"] = job.others()
        together.wait()
        if job.record.id == "a":
            with job.idle():
                went_idle.set()
                together.wait()
        else:
            assert went_idle.wait(5)
            seen["b while a waits"] = job.others()
            together.wait()
        return DONE

    assert _run(tmp_path, task, ["a", "b"], workers=2) == {"a": Status.COMPLETED, "b": Status.COMPLETED}
    assert seen == {"a beside": 1, "b beside": 1, "b while a waits": 0}


def test_scoring_runs_on_one_thread_beside_other_jobs(tmp_path: Path) -> None:
    from openaml.jobs.tasks import Tasks
    from openaml.ml.execution import ONE_THREAD, Execution

    tasks = Tasks.__new__(Tasks)  # only its execution matters here
    tasks.execution = Execution(2)
    record = EntityRecord(kind=EntityKind.EVALUATION, id="ev", status=Status.INPROGRESS, created_at=1,
                          last_updated_at=1, created_by="test", request={}, info={})
    alone = Job(record, None, lambda line: None)  # type: ignore[arg-type]
    beside = Job(record, None, lambda line: None, others=lambda: 1)  # type: ignore[arg-type]
    assert tasks._scoring(alone) == Execution(2) and tasks._scoring(beside) is ONE_THREAD


def test_a_busy_job_keeps_its_worker(tmp_path: Path) -> None:
    running = threading.Lock()
    overlapped = []

    def task(job: Job) -> DataSourceResult:
        overlapped.append(not running.acquire(blocking=False))
        time.sleep(0.05)
        running.release()
        return DONE

    assert set(_run(tmp_path, task, ["a", "b", "c"]).values()) == {Status.COMPLETED}
    assert overlapped == [False, False, False]


def test_a_log_that_cannot_be_written_fails_no_job_and_no_start(tmp_path: Path) -> None:
    def broken_log(record: EntityRecord, line: str) -> None:
        raise ValueError(f"cannot log {record.id}")

    found = _run(tmp_path, lambda job: DONE, ["a", "b", "c"], broken_log, in_progress=("b",))
    assert found == {"a": Status.COMPLETED, "b": Status.COMPLETED, "c": Status.COMPLETED}


def test_a_result_that_cannot_be_stored_fails_the_job_and_frees_the_worker(tmp_path: Path) -> None:
    unstorable = DataSourceResult(0, 1, (object(),))  # type: ignore[arg-type]
    found = _run(tmp_path, lambda job: unstorable if job.record.id == "bad" else DONE, ["bad", "next"])
    assert found == {"bad": Status.FAILED, "next": Status.COMPLETED}


def test_jobs_that_the_stop_ends_stay_inprogress_and_run_again(tmp_path: Path) -> None:
    """Whatever a job raises once the engine stops (its cancellation, or the shut-down
    executors' RuntimeError) leaves it INPROGRESS, for recover() at the next start."""
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    started = threading.Barrier(3)
    logs: list[str] = []

    def task(job: Job) -> DataSourceResult:
        started.wait(5)
        while not job.cancelled():
            time.sleep(0.01)
        if job.record.id == "cancelled":
            raise InputError("DataSource cancelled was deleted")
        raise RuntimeError("cannot schedule new futures after shutdown")

    for entity_id in ("cancelled", "broken"):
        _pending(store, entity_id, secret="password")
    with ThreadPoolExecutor(2 * THREADS_PER_WORKER) as executor:
        engine = JobEngine(store, executor, {EntityKind.DATASOURCE: task}, 2, lambda: 2,
                           lambda record, line: logs.append(f"{record.id}: {line}"), poll_seconds=0.01)
        engine.start()
        started.wait(5)
        engine.stop()
        assert engine.queue_depth()["running"] == 0
    for entity_id in ("cancelled", "broken"):
        record = store.get(EntityKind.DATASOURCE, entity_id)
        assert record.status is Status.INPROGRESS and read_secret(record) == "password"  # to stage again
        assert (f"{entity_id}: The server stopped while this job ran; it runs again on another front end "
                "or at the next start.") in logs
    assert {r.id for r in JobEngine(store, executor, {}, 1, lambda: 3).recover()} == {"cancelled", "broken"}


def test_training_progress_is_stored_at_most_every_interval_and_at_the_end(tmp_path: Path) -> None:
    """Every pass is logged; the store gets the first pass's state, then at most one every
    PROGRESS_SECONDS, and the last state when flushed (once, however often flushed)."""
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    _pending(store, "m")
    store.update(EntityKind.DATASOURCE, "m", {"status": Status.INPROGRESS})
    writes: list[int] = []
    lines: list[str] = []
    real = store.update

    def counted(*args, **kwargs):
        writes.append(TrainingProgress.from_json(kwargs["info"]["training"]).passes)
        return real(*args, **kwargs)

    store.update = counted  # type: ignore[method-assign]
    now = [0.0]
    recorder = ProgressRecorder(Job(store.get(EntityKind.DATASOURCE, "m"), store, lines.append), lambda: now[0])
    state = TrainingProgress(max_passes=10)
    for moment in (0.0, 0.1, 0.2, PROGRESS_SECONDS + 0.05, PROGRESS_SECONDS + 0.1):
        now[0] = moment
        state = state.after(1.0 / (1 + len(state.losses)))
        recorder(state)
    assert writes == [1, 4]
    assert len(lines) == 5 and lines[-1].startswith("pass 5")
    recorder.flush()
    recorder.flush()
    assert writes == [1, 4, 5]
    assert read_progress(store.get(EntityKind.DATASOURCE, "m")).passes == 5


def test_training_progress_is_stored_when_the_training_fails_and_hides_nothing_of_its_error(tmp_path: Path) -> None:
    """Leaving the recorder's block by an error stores the last pass too; a store that fails
    then does not replace the training's error."""
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    _pending(store, "m")
    store.update(EntityKind.DATASOURCE, "m", {"status": Status.INPROGRESS})
    job = Job(store.get(EntityKind.DATASOURCE, "m"), store, lambda line: None)
    state = TrainingProgress(max_passes=10)
    with pytest.raises(InputError, match="pass 3 failed"), ProgressRecorder(job, lambda: 0.0) as recorder:
        for loss in (0.5, 0.4):
            state = state.after(loss)
            recorder(state)
        raise InputError("pass 3 failed")
    assert read_progress(store.get(EntityKind.DATASOURCE, "m")).passes == 2

    def failing(*_args, **_kwargs):
        raise OSError("the store is gone")

    with pytest.raises(InputError, match="pass 4 failed"), ProgressRecorder(job, lambda: 0.0) as recorder:
        recorder(state.after(0.3))  # stored at once
        store.update = failing  # type: ignore[method-assign]
        recorder(state.after(0.3).after(0.2))  # within PROGRESS_SECONDS: left to the end
        raise InputError("pass 4 failed")


class _Restarting(Store):
    """A store whose entity reads and writes fail while `down` is set, as those of a
    PostgreSQL server restarting do (its leases, read apart, keep working)."""

    def __init__(self, path: Path) -> None:
        super().__init__(open_store(f"sqlite:///{path}").engine)
        self.down = threading.Event()

    def _answer(self) -> None:
        if self.down.is_set():
            raise OperationalError("SELECT", {}, ConnectionError("server closed the connection unexpectedly"))

    def get(self, *args, **kwargs):
        self._answer()
        return super().get(*args, **kwargs)

    def update(self, *args, **kwargs):
        self._answer()
        return super().update(*args, **kwargs)


def test_a_job_goes_on_while_its_store_does_not_answer_for_a_moment(tmp_path: Path) -> None:
    """Its cancellation check and progress ask nothing of it then, and its end is stored once
    the store answers again: the job runs once (a PostgreSQL restart of about a second failed
    every running job, which ran again from scratch)."""
    store, runs, logs = _Restarting(tmp_path / "jobs.db"), [], []

    def task(job: Job) -> DataSourceResult:
        runs.append(job.record.id)
        store.down.set()
        assert not job.cancelled()
        job.progress({"progress": {"passes": 1}})
        threading.Timer(1.0, store.down.clear).start()
        return DONE

    found = _run(tmp_path, task, ["a"], lambda record, line: logs.append(line), store=store)
    assert found == {"a": Status.COMPLETED} and runs == ["a"]
    assert not any("did not answer" in line for line in logs)


def test_a_job_that_fails_as_its_store_does_not_answer_runs_again_and_says_why(tmp_path: Path) -> None:
    """Not FAILED ("Internal error"), and not left for another front end's takeover, whose log
    line would say that its front end stopped."""
    store, runs, logs = _Restarting(tmp_path / "jobs.db"), [], []

    def task(job: Job) -> DataSourceResult:
        runs.append(job.record.id)
        if len(runs) == 1:
            raise OperationalError("SELECT", {}, ConnectionError("server closed the connection unexpectedly"))
        return DONE

    assert _run(tmp_path, task, ["a"], lambda record, line: logs.append(line), store=store) == {"a": Status.COMPLETED}
    assert runs == ["a", "a"]
    assert "The store did not answer while this job ran (OperationalError): it runs again from its start." in logs
    assert not any("stopped before the job ended" in line for line in logs)


def test_a_job_that_the_store_fails_every_time_fails_after_a_few_runs(tmp_path: Path) -> None:
    """A store that keeps failing a job must not run it again for ever: after STORE_RERUNS runs
    again in a row it fails, saying why."""
    from openaml.jobs.engine import STORE_RERUNS

    runs: list[str] = []

    def task(job: Job) -> DataSourceResult:
        runs.append(job.record.id)
        raise OperationalError("SELECT", {}, ConnectionError("server closed the connection unexpectedly"))

    reader = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    assert _run(tmp_path, task, ["a"]) == {"a": Status.FAILED}
    assert len(runs) == STORE_RERUNS + 1
    assert "Internal error (OperationalError)" in (reader.get(EntityKind.DATASOURCE, "a").message or "")


def test_only_errors_of_a_store_that_did_not_answer_run_a_job_again(tmp_path: Path) -> None:
    """By the error's code: a connection lost, a restart, a lock or the writers waited for too
    long; not a task's own TimeoutError, nor what the store cannot do (a missing table, a
    program limit), which retried would run the job again for ever."""
    import sqlite3

    import psycopg.errors as pg
    from sqlalchemy.exc import DBAPIError, ProgrammingError

    from openaml.store.database import StoreBusy, unavailable

    def wrapped(error: Exception) -> DBAPIError:
        return DBAPIError.instance("SELECT", {}, error, Exception)

    missing_table = None
    try:
        sqlite3.connect(tmp_path / "x.db").execute("SELECT * FROM nowhere")
    except sqlite3.OperationalError as error:
        missing_table = error
    assert missing_table is not None and not unavailable(wrapped(missing_table))
    assert not unavailable(TimeoutError("the task timed out"))
    assert not unavailable(wrapped(pg.ProgramLimitExceeded("index row size exceeds maximum")))
    assert not unavailable(ProgrammingError("SELECT", {}, pg.UndefinedTable("no such table")))
    assert unavailable(StoreBusy("waited")) and unavailable(OperationalError("SELECT", {}, ConnectionError()))
    for error in (pg.AdminShutdown("terminating connection"), pg.LockNotAvailable("lock timeout"),
                  pg.IdleInTransactionSessionTimeout("idle"), pg.TooManyConnections("too many"),
                  pg.SerializationFailure("retry"), pg.OperationalError("connection failed")):
        assert unavailable(wrapped(error)), error


def test_a_result_the_store_cannot_take_fails_the_job_at_once(tmp_path: Path) -> None:
    """A permanent refusal of the store (PostgreSQL's program limit) is no outage: the job
    fails ("could not be stored") after one run, as before (it ran again for ever)."""
    import psycopg.errors as pg
    from sqlalchemy.exc import DBAPIError

    class Refusing(_Restarting):
        def update(self, kind, entity_id, changes, **kwargs):
            if changes.get("status") is Status.COMPLETED:
                raise DBAPIError.instance("UPDATE", {}, pg.ProgramLimitExceeded("row too big"), Exception)
            return super().update(kind, entity_id, changes, **kwargs)

    runs: list[str] = []

    def task(job: Job) -> DataSourceResult:
        runs.append(job.record.id)
        return DONE

    reader = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    assert _run(tmp_path, task, ["a"], store=Refusing(tmp_path / "jobs.db")) == {"a": Status.FAILED}
    assert runs == ["a"] and "could not be stored" in (reader.get(EntityKind.DATASOURCE, "a").message or "")


def test_a_job_stops_once_its_store_is_silent_for_longer_than_its_patience(tmp_path: Path) -> None:
    """Not only once its front end's heartbeat learns the lease is lost: a front end cut off
    from the store cannot learn it, and another may run the job after the lease (two runs at
    once, both writing their files)."""
    store = _Restarting(tmp_path / "jobs.db")
    _pending(store, "a")
    job = Job(store.get(EntityKind.DATASOURCE, "a"), store, lambda line: None, store_patience=0.3)
    store.down.set()
    assert not job.cancelled()
    time.sleep(0.4)
    assert job.cancelled()
    store.down.clear()
    store.update(EntityKind.DATASOURCE, "a", {"status": Status.INPROGRESS})
    assert not job.cancelled()  # the store answers again: the silence is over


def _disk_full_sqlite() -> OperationalError:
    import sqlite3

    driver = sqlite3.OperationalError("database or disk is full")
    driver.sqlite_errorname = "SQLITE_FULL"  # as sqlite3 sets it
    return OperationalError("INSERT ...", {}, driver)


@pytest.mark.parametrize("full", [
    lambda: OSError(28, "No space left on device"),  # a write of the data copy, a model, a result
    lambda: OSError(122, "Disk quota exceeded"),
    lambda: ValueError("while writing"),  # raised from one: the chain is read
    _disk_full_sqlite])
def test_a_full_disk_fails_the_job_saying_so_not_as_an_internal_error(tmp_path: Path, full) -> None:
    """ENOSPC came through as "Internal error (OSError)": a full disk is the operator's to
    mend, and the message says so (the traceback stays in the job's log)."""
    from openaml.storage.objects import NO_SPACE_MESSAGE

    logged: list[str] = []

    def task(job: Job) -> DataSourceResult:
        error = full()
        if isinstance(error, ValueError):
            raise error from OSError(28, "No space left on device")
        raise error

    assert _run(tmp_path, task, ["a"], lambda record, line: logged.append(line)) == {"a": Status.FAILED}
    reader = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    assert reader.get(EntityKind.DATASOURCE, "a").message == NO_SPACE_MESSAGE
    assert any("Traceback" in line for line in logged)


def test_a_file_of_the_service_removed_under_it_fails_the_job_saying_so(tmp_path: Path) -> None:
    """A datasource's stored copy removed from the data folder failed the models on it with
    "Internal error (FileNotFoundError)"."""
    def task(job: Job) -> DataSourceResult:
        raise FileNotFoundError(2, "No such file or directory", "/data/artifacts/DataSource/ds-1/ingest.json")

    assert _run(tmp_path, task, ["a"]) == {"a": Status.FAILED}
    message = open_store(f"sqlite:///{tmp_path / 'jobs.db'}").get(EntityKind.DATASOURCE, "a").message or ""
    assert message.startswith("A file of the service's own is missing (/data/artifacts/DataSource/ds-1/ingest.json)")
