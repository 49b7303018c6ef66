"""The job engine one scheduling pass at a time (schedule_once), each job run to its end while
the pass submits it: dependencies, failure propagation, deletion, recovery and the messages
of failed jobs."""

import threading
from concurrent.futures import Executor, Future
from pathlib import Path

import pytest

from openaml.jobs.engine import RERUN_NOTE, Job, JobEngine
from openaml.jobs.record_info import read_secret, result_info, secret_info
from openaml.jobs.specs import EvaluationResult
from openaml.ml.errors import InputError
from openaml.store import EntityKind, EntityRecord, Status
from openaml.store.database import open_store

DS, ML, EV, BP = (EntityKind.DATASOURCE, EntityKind.MLMODEL, EntityKind.EVALUATION,
                  EntityKind.BATCH_PREDICTION)


class _OneAtATime(Executor):
    """Runs each submitted job to its end, on a thread of its own (jobs lower their thread's
    priority), before submit returns."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the future
                future.set_exception(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return future


class _World:
    """A store, an engine over it and the jobs each task ran, in order."""

    def __init__(self, tmp_path: Path, fail: dict[str, BaseException] | None = None,
                 kinds: tuple[EntityKind, ...] = (DS, ML, EV, BP)) -> None:
        self.store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
        self.ran: list[str] = []
        self.logs: dict[str, list[str]] = {}
        self.fail = fail or {}

        def task(job: Job) -> EvaluationResult:
            self.ran.append(job.record.id)
            if job.record.id in self.fail:
                raise self.fail[job.record.id]
            return EvaluationResult({"done": job.record.id})

        self.engine = JobEngine(self.store, _OneAtATime(), {kind: task for kind in kinds}, 1,
                                lambda: 5, lambda record, line: self.logs.setdefault(
                                    record.id, []).append(line))

    def add(self, kind: EntityKind, entity_id: str, status: Status = Status.PENDING,
            datasource: str | None = None, model: str | None = None, secret: str | None = None) -> None:
        assert self.store.insert(EntityRecord(
            kind=kind, id=entity_id, status=status, created_at=1, last_updated_at=1,
            created_by="test", request={}, datasource_id=datasource, model_id=model,
            info=secret_info(secret) if secret else {}))

    def status(self, kind: EntityKind, entity_id: str) -> tuple[Status, str | None]:
        found = self.store.status(kind, entity_id)
        assert found is not None
        return found


def test_a_job_runs_only_once_its_inputs_completed(tmp_path: Path) -> None:
    world = _World(tmp_path)
    world.add(EV, "ev", datasource="ds-eval", model="ml")   # created first, runs last
    world.add(ML, "ml", datasource="ds")
    world.add(DS, "ds")
    world.add(DS, "ds-eval")
    for _ in range(4):
        world.engine.schedule_once()
    assert world.ran.index("ds") < world.ran.index("ml") < world.ran.index("ev")
    assert world.ran.index("ds-eval") < world.ran.index("ev")
    assert sorted(world.ran) == ["ds", "ds-eval", "ev", "ml"]   # each once
    for kind, entity_id in ((DS, "ds"), (ML, "ml"), (EV, "ev")):
        assert world.status(kind, entity_id) == (Status.COMPLETED, None)
        assert world.store.get(kind, entity_id).info == result_info(EvaluationResult({"done": entity_id}))


def test_a_job_waits_while_an_input_is_pending_or_running(tmp_path: Path) -> None:
    world = _World(tmp_path)
    world.add(DS, "ds", Status.INPROGRESS)   # running (elsewhere)
    world.add(ML, "ml", datasource="ds")      # waits for it
    world.add(DS, "ds-eval", Status.COMPLETED)
    world.add(EV, "ev", datasource="ds-eval", model="ml")  # waits for the pending model
    world.engine.schedule_once()
    assert world.ran == []
    assert world.status(ML, "ml")[0] is world.status(EV, "ev")[0] is Status.PENDING


def test_a_failure_fails_every_job_downstream_with_its_reason(tmp_path: Path) -> None:
    world = _World(tmp_path, {"ds": InputError("The data location has no readable file")})
    world.add(DS, "ds")
    world.add(ML, "ml", datasource="ds")
    world.add(DS, "ds-eval")
    world.add(EV, "ev", datasource="ds-eval", model="ml")
    world.add(BP, "bp", datasource="ds", model="ml")
    for _ in range(3):
        world.engine.schedule_once()
    assert world.status(DS, "ds") == (Status.FAILED, "The data location has no readable file")
    assert world.status(ML, "ml") == (
        Status.FAILED, "DataSource ds is FAILED: The data location has no readable file")
    for kind, entity_id in ((EV, "ev"), (BP, "bp")):
        status, message = world.status(kind, entity_id)
        assert status is Status.FAILED and message.startswith("MLModel ml is FAILED: DataSource ds")
    assert "ml" not in world.ran and "ev" not in world.ran and "bp" not in world.ran


@pytest.mark.parametrize("gone", ["deleted", "missing"])
def test_a_job_whose_input_is_deleted_or_missing_fails(tmp_path: Path, gone: str) -> None:
    world = _World(tmp_path)
    if gone == "deleted":
        world.add(DS, "ds", Status.DELETED)
    world.add(ML, "ml", datasource="ds")
    world.engine.schedule_once()
    expected = "DataSource ds is DELETED" if gone == "deleted" else "DataSource ds does not exist"
    assert world.status(ML, "ml") == (Status.FAILED, expected)
    assert world.ran == []


def test_jobs_a_crash_interrupted_run_again_from_scratch(tmp_path: Path) -> None:
    world = _World(tmp_path)
    world.add(DS, "ds", Status.INPROGRESS)
    world.add(DS, "done", Status.COMPLETED)
    assert [r.id for r in world.engine.recover()] == ["ds"]
    assert world.status(DS, "ds") == (Status.PENDING, None)
    assert len(world.logs["ds"]) == 1 and world.logs["ds"][0].startswith(RERUN_NOTE)
    world.engine.schedule_once()
    assert world.ran == ["ds"]
    assert world.status(DS, "ds") == (Status.COMPLETED, None)
    assert world.engine.recover() == []


def _raise_key_error() -> None:
    raise KeyError("schema")


def _a_bug() -> Exception:
    try:
        _raise_key_error()
    except KeyError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize("error", [_a_bug(), ValueError("could not convert string to float"),
                                   ZeroDivisionError("division by zero")])
def test_a_bug_fails_its_job_as_an_internal_error_with_the_traceback_in_its_log(
        tmp_path: Path, error: Exception) -> None:
    """Not an InputError: its text is not for the user (a ValueError included)."""
    world = _World(tmp_path, {"ds": error})
    world.add(DS, "ds")
    world.engine.schedule_once()
    name = type(error).__name__
    assert world.status(DS, "ds") == (
        Status.FAILED, f"Internal error ({name}): the job's log holds the details")
    traceback = [line for line in world.logs["ds"] if line.startswith("Traceback")]
    assert len(traceback) == 1 and name in traceback[0]
    if isinstance(error, KeyError):
        assert "_raise_key_error" in traceback[0]
    assert world.logs["ds"][-1].startswith("DataSource ds: FAILED: Internal error")


def test_an_input_error_fails_its_job_with_its_message_alone(tmp_path: Path) -> None:
    world = _World(tmp_path, {"ml": InputError("sgd.maxPasses must be from 1 to 100")})
    world.add(DS, "ds", Status.COMPLETED)
    world.add(ML, "ml", datasource="ds")
    world.engine.schedule_once()
    assert world.status(ML, "ml") == (Status.FAILED, "sgd.maxPasses must be from 1 to 100")
    assert not any(line.startswith("Traceback") for line in world.logs["ml"])


def test_a_kind_without_a_task_fails_with_a_clear_message(tmp_path: Path) -> None:
    world = _World(tmp_path, kinds=(DS,))
    world.add(DS, "ds", Status.COMPLETED)
    world.add(ML, "ml", datasource="ds")
    world.engine.schedule_once()
    assert world.status(ML, "ml") == (Status.FAILED, "MLModel jobs are not supported by this server yet")


def test_a_paused_engine_starts_nothing_until_resumed(tmp_path: Path) -> None:
    world = _World(tmp_path)
    world.add(DS, "ds")
    world.engine.pause()
    world.engine.schedule_once()
    assert world.ran == [] and world.status(DS, "ds")[0] is Status.PENDING
    world.engine.resume()
    world.engine.schedule_once()
    assert world.ran == ["ds"]


def test_a_secret_serves_its_job_until_the_job_ends(tmp_path: Path) -> None:
    """A staged query's password is erased when its job completes or fails, or fails by a
    failed input, never before (a job run again after a stop stages its query again)."""
    world = _World(tmp_path, {"fails": InputError("The query on 'db' failed")})
    seen: dict[str, str | None] = {}
    task = world.engine.tasks[DS]

    def staging(job: Job) -> EvaluationResult:
        seen[job.record.id] = read_secret(world.store.get(DS, job.record.id))
        return task(job)

    world.engine.tasks = {**world.engine.tasks, DS: staging}
    world.add(DS, "completes", secret="pw-1")
    world.add(DS, "fails", secret="pw-2")
    world.add(DS, "failed-input", Status.FAILED)
    world.add(ML, "orphan", datasource="failed-input", secret="pw-3")
    world.engine.schedule_once()
    assert seen == {"completes": "pw-1", "fails": "pw-2"}
    for kind, entity_id in ((DS, "completes"), (DS, "fails"), (ML, "orphan")):
        assert read_secret(world.store.get(kind, entity_id)) is None, entity_id
