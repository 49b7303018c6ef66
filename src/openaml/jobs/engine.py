"""The job engine: PENDING entities run once their dependencies are COMPLETED.

One scheduler thread scans PENDING entities whenever something changes (or every
`poll_seconds`), fails those whose dependency failed or was deleted, and claims runnable ones
with a compare-and-set PENDING -> INPROGRESS under a lease (store/leases.py) before handing them
to the executor. Several engines (front ends, on any machines) may share one store: each job
is claimed by exactly one of them. A heartbeat thread renews this engine's leases and its
front end's registration every third of a lease; a job whose lease it lost (another front end
took it over) is cancelled here. Jobs left INPROGRESS by a front end that died (its lease
expired, or its process on this machine is gone) go back to PENDING and run again from scratch
(spec README, "Persistence"), at the start of an engine and at each of its heartbeats.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from openaml.jobs.priority import run_below_requests
from openaml.jobs.record_info import read_secret, result_info, secret_info
from openaml.jobs.repeated_failures import RepeatedFailures
from openaml.jobs.specs import Result
from openaml.ml.errors import InputError
from openaml.storage.objects import NO_SPACE_MESSAGE, error_chain, no_space_left
from openaml.store import EntityKind, EntityRecord, Status, Store
from openaml.store.database import unavailable
from openaml.store.leases import FrontEnd, JobKey, Leases, new_token

log = logging.getLogger(__name__)
JOB_KINDS = (EntityKind.DATASOURCE, EntityKind.MLMODEL, EntityKind.EVALUATION,
             EntityKind.BATCH_PREDICTION)
ACTIVE = (Status.PENDING, Status.INPROGRESS)
STOP_SECONDS = 10.0  # JobEngine.stop waits this long for the scheduler and the running jobs
LEASE_MS = 30_000     # a claimed job's lease; renewed every third of it
FORGET_LEASES = 20    # front ends not seen for this many leases are removed from the store
STORE_RETRY_SECONDS = 0.5  # between tries of a job's end while the store does not answer
STORE_RERUNS = 3  # runs again of a job the store failed, in a row here; one more such run fails it
T = TypeVar("T")


def patience_for(lease_seconds: float) -> float:
    """How long a job goes on while its store does not answer (Job.store_patience): two thirds
    of a lease, so that it stops before its lease could go to another front end."""
    return 2 * lease_seconds / 3


# the log line of a job run again once the front end running it stopped (a restart; or its end,
# and another front end takes the job over)
RERUN_NOTE = "The front end that ran this job stopped before the job ended: it runs again"
# ... and of one whose lease ran out while it ran here (the store did not take the heartbeats)
LAPSED_NOTE = ("This front end's lease on the job ran out while the job ran here (the store did not take "
               "its heartbeats, see the server's log): it runs again")
# Jobs waiting on another job's work (see Job.idle) leave their worker to a new job: the
# executor needs up to this many threads per worker.
THREADS_PER_WORKER = 2


@dataclass
class Job:
    """What a running task sees: its entity, a way to report progress, and cancellation."""

    record: EntityRecord
    store: Store
    log_line: Callable[[str], None]
    waiting: Callable[[bool], None] = lambda idle: None
    stopping: Callable[[], bool] = lambda: False  # whether the engine stops, or lost the job's lease
    owner: str | None = None  # the front end running the job
    lease: str | None = None  # the token of this run's lease (store/leases.py)
    others: Callable[[], int] = lambda: 0  # the other jobs running beside it, not waiting
    room: Callable[[], bool] = lambda: False  # whether the engine may start another job now
    store_patience: float = patience_for(LEASE_MS / 1000)  # seconds cancelled() waits on a silent store
    _silent_since: float | None = field(default=None, init=False, repr=False)

    @contextmanager
    def idle(self) -> Iterator[None]:
        """While inside, the job waits for work another job does for it (a shared read or
        scoring pass) and uses neither CPU nor memory: the engine may start another job in its
        place."""
        self.waiting(True)
        try:
            yield
        finally:
            self.waiting(False)

    def progress(self, info: Mapping[str, Any]) -> None:
        """Merge `info` (jobs/record_info.py's) into the entity while it runs; a store that
        does not answer misses this progress, not the job (the next progress is written)."""
        try:
            self.store.update(self.record.kind, self.record.id, {}, only_if=[Status.INPROGRESS], info=info,
                              held_by=self.lease)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("%s %s: its progress was not stored (%s)", self.record.kind.value, self.record.id, exc)

    def cancelled(self) -> bool:
        """Whether the job should end now: its entity was deleted, the server stops, or
        another front end took the job over. A store that does not answer for a moment ends
        no job; one silent for `store_patience` seconds does, before its lease could have
        gone to another front end (which would run the job beside this run)."""
        try:
            if self.stopping():
                return True
            current = self.store.get(self.record.kind, self.record.id)
        except Exception as exc:
            if not unavailable(exc):
                raise
            now = time.monotonic()
            self._silent_since = self._silent_since or now
            return now - self._silent_since >= self.store_patience
        self._silent_since = None
        return current is None or current.status is not Status.INPROGRESS


class Task(Protocol):
    def __call__(self, job: Job) -> Result: ...


def _failure_message(exc: BaseException) -> str | None:
    """What a job's failure that is not an InputError says of its cause, where that is the
    service's surroundings, not a bug: a full disk, or a file of its own removed (a user's
    missing input is an InputError); None otherwise."""
    if no_space_left(exc):
        return NO_SPACE_MESSAGE
    missing = next((found for found in error_chain(exc) if isinstance(found, FileNotFoundError)), None)
    if missing is not None:
        return (f"A file of the service's own is missing ({missing.filename or missing}): its data folder "
                "or artifacts were changed outside it; restore them, or create the entities whose files "
                "are gone again")
    return None


def dependencies(record: EntityRecord) -> list[JobKey]:
    if record.kind is EntityKind.MLMODEL:
        return [(EntityKind.DATASOURCE, record.datasource_id or "")]
    if record.kind in (EntityKind.EVALUATION, EntityKind.BATCH_PREDICTION):
        return [(EntityKind.MLMODEL, record.model_id or ""),
                (EntityKind.DATASOURCE, record.datasource_id or "")]
    return []


class JobEngine:
    def __init__(
        self,
        store: Store,
        executor: Executor,
        tasks: Mapping[EntityKind, Task],
        workers: int,
        clock: Callable[[], int],
        log_writer: Callable[[EntityRecord, str], None] = lambda record, line: None,
        poll_seconds: float = 1.0,
        front_end: FrontEnd | None = None,
        lease_ms: int = LEASE_MS,
    ) -> None:
        self.store, self.executor, self.tasks = store, executor, tasks
        self.workers, self.clock, self.log_writer = max(1, workers), clock, log_writer
        self.poll_seconds = poll_seconds
        self.front_end = front_end or FrontEnd.this_process(runs_jobs=True)
        self.leases, self.lease_ms = Leases(store), lease_ms
        self._lost: set[JobKey] = set()  # running here, but the lease went to another run
        self._store_reruns: dict[JobKey, int] = {}  # runs in a row the store failed (STORE_RERUNS)
        self._claiming: set[str] = set()  # tokens of claims under way
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._passing = threading.RLock()  # held by a scheduling pass: pause() waits for it
        self._running: dict[JobKey, str] = {}  # the jobs running here, with their runs' tokens
        self._idle: set[JobKey] = set()  # running, but waiting (Job.idle) or finishing
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._heart: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Register this front end, recover the jobs that dead front ends left, then schedule on
        a thread of the engine's own, and beat on another."""
        self.leases.beat(self.front_end, self.clock())
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="openaml-scheduler", daemon=True)
        self._wake.set()  # the first pass runs at once: interrupted jobs go on without delay
        self._thread.start()
        self._heart = threading.Thread(target=self._beat, name="openaml-heartbeat", daemon=True)
        self._heart.start()

    def recover(self) -> list[EntityRecord]:
        """Put the jobs left INPROGRESS by front ends that died (this one's earlier process,
        among others) back to PENDING, to run again from scratch; those records."""
        recovered = []
        with self._lock:
            here = self._running.keys() | self._lost  # a lease of this process's that ran out
        for kind, entity_id in self.leases.orphaned(JOB_KINDS, self.clock()):
            if self.leases.requeue(kind, entity_id, self.clock()):
                record = self.store.get(kind, entity_id)
                if record is not None:
                    note = LAPSED_NOTE if (kind, entity_id) in here else RERUN_NOTE
                    self._log(record, f"{note} on front end {self.front_end.id}.")
                    recovered.append(record)
        if recovered:
            self.notify()
        return recovered

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Start no more jobs, and end the running ones (Job.cancelled answers True), waiting
        for them up to `timeout` seconds: they stay INPROGRESS, their leases given up, and run
        again on another front end or at the next start."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._heart):
            if thread is not None:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        while self._running and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            with self._lock:
                outlasting = list(self._running.values())  # their writes fail once released
            for token in outlasting:
                self.leases.release(token)
            self.leases.leave(self.front_end.id)
        except Exception:  # noqa: BLE001 - the store is gone: leases and registration time out
            log.exception("cannot give this front end's leases up")

    def _beat(self) -> None:
        """Every third of a lease: renew this front end's registration and leases (a job whose
        lease is lost is cancelled), and recover the jobs of front ends that died."""
        failures = RepeatedFailures("the job lease heartbeat", log)
        while not self._stop.wait(self.lease_ms / 3000):
            try:
                self.beat()
                failures.succeeded()
            except Exception as exc:  # noqa: BLE001 - the heartbeat must survive a store hiccup
                failures.failed(exc)

    def beat(self) -> None:
        """One heartbeat, in the caller's thread. A lease of this front end that no run here
        holds (its release failed) is given up: its job runs again."""
        now = self.clock()
        self.leases.beat(self.front_end, now)
        stored = self.leases.tokens(self.front_end.id)  # read before the runs: a claim after it is a run
        with self._lock:
            running = dict(self._running)
            runs = set(running.values()) | self._claiming
        held = self.leases.renew(self.front_end.id, runs, now, now + self.lease_ms)
        with self._lock:  # a run that ended meanwhile released its lease: it was not lost
            lost = {key for key, token in running.items() if token not in held and self._running.get(key) == token}
            self._lost |= lost
        for kind, entity_id in lost:
            log.warning("%s %s: its lease expired or went to another front end; it stops here",
                        kind.value, entity_id)
        for token in stored - runs:
            self.leases.release(token)
        self.recover()
        self.leases.forget(now - FORGET_LEASES * self.lease_ms)

    def notify(self) -> None:
        self._wake.set()

    def pause(self) -> None:
        """Start no new job until resume() (running jobs go on): for maintenance and tests.
        Returns once a scheduling pass under way has ended, so that nothing it found is
        claimed after the pause (a test that paused one front end before creating a job
        sometimes saw that front end claim it)."""
        self._paused.set()
        with self._passing:
            pass

    def resume(self) -> None:
        self._paused.clear()
        self.notify()

    def queue_depth(self) -> dict[str, int]:
        with self._lock:
            running = len(self._running)
        return {"pending": self.store.count_status(Status.PENDING), "running": running}

    # -- scheduling -------------------------------------------------------------------------

    def _loop(self) -> None:
        failures = RepeatedFailures("a job scheduling pass", log)
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self.schedule_once()
                failures.succeeded()
            except Exception as exc:  # noqa: BLE001 - the scheduler must survive a store hiccup
                failures.failed(exc)

    def schedule_once(self) -> None:
        """One scheduling pass, in the caller's thread: fail the PENDING jobs whose inputs
        failed or are gone, and claim runnable ones (inputs COMPLETED) for the executor while
        workers are free. With an executor that runs each job as it is submitted, the pass
        runs them too: the engine's tests are deterministic that way."""
        with self._passing:
            self._schedule()

    def _schedule(self) -> None:
        if self._paused.is_set():
            return
        for record in self.store.with_status(JOB_KINDS, Status.PENDING):
            if self._stop.is_set() or self._paused.is_set():
                return
            blocker, ready = self._inputs(record)
            if blocker is not None:
                self._finish(record, Status.FAILED, message=blocker, only_if=Status.PENDING)
                continue
            if not ready:
                continue
            if not self._room():
                return
            self._claim(record)

    def _inputs(self, record: EntityRecord) -> tuple[str | None, bool]:
        """(why the job can never run, or None; whether every input is COMPLETED). Reads only
        the inputs' statuses: their info (a datasource's statistics) is large."""
        ready = True
        for kind, entity_id in dependencies(record):
            found = self.store.status(kind, entity_id)
            if found is None:
                return f"{kind.value} {entity_id} does not exist", False
            status, message = found
            if status in (Status.FAILED, Status.DELETED):
                reason = f": {message}" if message else ""
                return f"{kind.value} {entity_id} is {status.value}{reason}", False
            ready &= status is Status.COMPLETED
        return None, ready

    def _claim(self, record: EntityRecord) -> None:
        key, token, now = (record.kind, record.id), new_token(), self.clock()
        with self._lock:
            if key in self._running:  # requeued while it still runs here: another front end's to run
                return
            self._claiming.add(token)
        claimed = False
        try:
            claimed = self.leases.claim(
                record.kind, record.id, self.front_end.id, token,
                {"started_at": now, "last_updated_at": now, "finished_at": None, "message": None},
                now + self.lease_ms)
        finally:
            with self._lock:
                self._claiming.discard(token)
                if claimed:
                    self._running[key] = token
        if not claimed:
            return
        try:
            self.executor.submit(self._run, record, token)
        except RuntimeError:  # the executor is shutting down: the job runs again elsewhere or later
            self._release(key, token)

    def _log(self, record: EntityRecord, line: str) -> None:
        """Append to the job's log; a log that cannot be written never fails a job or the engine."""
        try:
            self.log_writer(record, line)
        except Exception:  # noqa: BLE001 - the log is a convenience, the store holds the truth
            log.exception("cannot write the log of %s %s", record.kind.value, record.id)

    def _room(self) -> bool:
        """Whether a worker is free for another job: fewer jobs run than workers, not counting
        those waiting on another's work or whose task has returned, and fewer than
        THREADS_PER_WORKER a worker in all."""
        with self._lock:
            return (len(self._running.keys() - self._idle) < self.workers
                    and len(self._running) < THREADS_PER_WORKER * self.workers)

    def _others(self, key: JobKey) -> int:
        """How many other jobs run here now, not waiting on another's work."""
        with self._lock:
            return len(self._running.keys() - self._idle - {key})

    def _run(self, claimed: EntityRecord, token: str) -> None:
        """Run one claimed job to its end; whatever happens, the worker is freed."""
        try:
            self._execute(self._patiently(lambda: self.store.get(claimed.kind, claimed.id)) or claimed, token)
        except Exception:  # noqa: BLE001 - the store failed while finishing: the job runs again
            log.exception("%s %s could not be finished", claimed.kind.value, claimed.id)
        finally:
            self._release((claimed.kind, claimed.id), token)

    def _release(self, key: JobKey, token: str) -> None:
        """The run ended here (or never started): its worker is free, and its lease given up
        (or, when the store fails, given up by the next heartbeat)."""
        try:
            self.leases.release(token)
        except Exception:  # noqa: BLE001 - beat() releases it
            log.exception("cannot release the lease of %s %s", key[0].value, key[1])
        with self._lock:
            self._running.pop(key, None)
            self._idle.discard(key)
            self._lost.discard(key)
        self.notify()

    def _execute(self, record: EntityRecord, token: str) -> None:
        """Run the task; the entity ends COMPLETED, or as _ended_by says when the task raises."""
        started = time.monotonic()
        run_below_requests()
        try:
            key = (record.kind, record.id)
            job = Job(record, self.store, lambda line: self._log(record, line),
                      lambda idle: self._set_idle(key, idle), lambda: self._stop.is_set() or key in self._lost,
                      self.front_end.id, token, lambda: self._others(key), self._room,
                      store_patience=patience_for(self.lease_ms / 1000))
            job.log_line(f"{record.kind.value} {record.id}: started on front end {self.front_end.id}")
            task = self.tasks.get(record.kind)
            if task is None:
                raise InputError(f"{record.kind.value} jobs are not supported by this server yet")
            result = task(job)
        except Exception as exc:  # noqa: BLE001 - each kind of end is handled below
            self._ended_by(record, token, exc)
        else:
            with self._lock:
                self._store_reruns.pop((record.kind, record.id), None)
            elapsed = int((time.monotonic() - started) * 1000)
            # its worker is free from now: the jobs its completion lets start see room for each
            # other (an evaluation and a batch prediction gathering for one scoring pass)
            self._set_idle(key, True)
            self._finish(record, Status.COMPLETED, info=result_info(result), compute_time=max(elapsed, 1),
                         held_by=token)

    def _ended_by(self, record: EntityRecord, token: str, exc: Exception) -> None:
        """A job whose task raised `exc`: left to the front end that took it over, left
        INPROGRESS while the engine stops (it runs again on another front end or at the next
        start), or else FAILED with the message of an InputError or, for any other exception
        (a bug), "Internal error" and the traceback in the job's log."""
        key = (record.kind, record.id)
        with self._lock:
            reruns = self._store_reruns.pop(key, 0)
        if unavailable(exc) and key not in self._lost and not self._stop.is_set() and reruns < STORE_RERUNS:
            self._log(record, f"The store did not answer while this job ran ({type(exc).__name__}): it runs "
                      "again from its start.")
            if self._patiently(lambda: self.leases.give_back(record.kind, record.id, token, self.clock())):
                with self._lock:
                    self._store_reruns[key] = reruns + 1
                return
        if key in self._lost or (not self._stop.is_set() and not self.leases.holds(token)):
            self._log(record, "This front end lost the job's lease (its heartbeats did not reach the "
                      "store for longer than a lease); another front end runs it.")
        elif self._stop.is_set():
            if not isinstance(exc, InputError):  # e.g. an executor shut down under it; or a bug
                log.warning("%s %s ended as the engine stopped", record.kind.value, record.id, exc_info=exc)
            found = self.store.status(record.kind, record.id)
            if found is not None and found[0] is Status.INPROGRESS:  # not deleted meanwhile
                self._log(record, "The server stopped while this job ran; it runs again on another "
                          "front end or at the next start.")
        elif isinstance(exc, InputError):
            self._finish(record, Status.FAILED, message=str(exc) or type(exc).__name__, held_by=token)
        else:  # the traceback goes to the job's log; the message says what is known of the cause
            message = _failure_message(exc)
            if message is None:  # a bug
                log.error("%s %s failed", record.kind.value, record.id, exc_info=exc)
                message = f"Internal error ({type(exc).__name__}): the job's log holds the details"
            self._log(record, "".join(traceback.format_exception(exc)).rstrip())
            self._finish(record, Status.FAILED, message=message, held_by=token)

    def _patiently(self, call: Callable[[], T]) -> T:
        """call(), tried again while the store does not answer, for up to half a lease (the
        job's lease holds meanwhile) unless the engine stops: a store restarting for a moment
        must not undo a job's work."""
        deadline = time.monotonic() + self.lease_ms / 2000
        while True:
            try:
                return call()
            except Exception as exc:
                if not unavailable(exc) or self._stop.is_set() or time.monotonic() >= deadline:
                    raise
                log.warning("the store did not answer (%s); trying again", exc)
                self._stop.wait(STORE_RETRY_SECONDS)

    def _set_idle(self, key: JobKey, idle: bool) -> None:
        with self._lock:
            if idle:
                self._idle.add(key)
            else:
                self._idle.discard(key)
        if idle:
            self.notify()

    def _finish(
        self,
        record: EntityRecord,
        status: Status,
        *,
        message: str | None = None,
        info: dict[str, Any] | None = None,
        compute_time: int | None = None,
        only_if: Status = Status.INPROGRESS,
        held_by: str | None = None,
    ) -> None:
        """End the job as `status`; a run's end (`held_by`: its token) only while it holds the lease."""
        now = self.clock()
        changes: dict[str, Any] = {"status": status, "finished_at": now, "last_updated_at": now}
        if message is not None:
            changes["message"] = message[:10240]
        if compute_time is not None:
            changes["compute_time"] = compute_time
        # a secret (a staged query's password) serves until the job ends: a job run again
        # after a stop stages its query again
        erased = secret_info(None) if read_secret(record) is not None else {}
        try:
            changed = self._patiently(lambda: self.store.update(
                record.kind, record.id, changes, only_if=[only_if], info={**(info or {}), **erased}, held_by=held_by))
        except Exception as exc:  # noqa: BLE001 - e.g. an info that cannot be stored: fail the job instead
            if status is not Status.COMPLETED or unavailable(exc):
                raise
            log.exception("cannot store the result of %s %s", record.kind.value, record.id)
            changes.update(status=Status.FAILED, message="Internal error: the job's result could not be stored")
            changed = self.store.update(record.kind, record.id, changes, only_if=[only_if], info=erased,
                                        held_by=held_by)
            message = changes["message"]
        if changed:
            self._log(record, f"{record.kind.value} {record.id}: {changes['status'].value}"
                      + (f": {message}" if message else ""))
        elif (found := self.store.status(record.kind, record.id)) is not None and found[0] is Status.DELETED:
            # a job its deletion stopped: its log ends as a COMPLETED or FAILED one does
            self._log(record, f"{record.kind.value} {record.id}: stopped, as it was deleted")
