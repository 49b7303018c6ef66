"""Jobs on a Dask cluster (`openaml serve --executor dask --dask-scheduler tcp://HOST:8786`).

The front end keeps scheduling and recording: it claims each job under its lease as in local
mode, then hands the job to the cluster as one Dask task (`run_job`) and waits for its result
on a job thread. A worker process opens the service's stores from the same settings (once per
process, `open_runtime`), runs the job's task as the front end would, and returns its typed
result, or raises the task's error; the front end writes the job's end. The worker reads the
job's cancellation from the store: its entity deleted, or its lease no longer the front end's
(the front end stopped, or lost it). Workers must therefore reach the same database and data
folder as the front end (a shared file system, or one machine), and the users' data (the same
S3 endpoint, or the data folder's embedded store): `connect_cluster` checks that each worker
sees the data folder, unless jobs do not use it (users' data on S3, artifacts under
--artifacts-uri, the database on a server), and refuses to start otherwise.

A worker that dies mid-job: the scheduler runs the task again on another worker (up to its
`allowed-failures`), from scratch, under the same lease. The scheduler lost: the job fails
with a message that says so.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from openaml.extras import require_extra
from openaml.jobs.engine import JOB_KINDS, Job, Task, patience_for
from openaml.jobs.memory import MIN_BUDGET, WORKER_PROCESS_BYTES, release_memory
from openaml.jobs.record_info import read_spec
from openaml.jobs.shared_work import SharedWork
from openaml.jobs.specs import DataSourceSpec, Result
from openaml.jobs.tasks import Located, ProgressRecorder, Tasks, read_key
from openaml.ml.data import ByteRange, PartialIngest, Partition, RangeCount, merged_partials, number_partitions
from openaml.ml.errors import InputError
from openaml.ml.training import Cancelled
from openaml.ml.training.parallel import PassSum, fit_parallel
from openaml.ml.training.sgd import LinearState
from openaml.runtime import Runtime, open_runtime, prepare_job_process
from openaml.settings import ConfigurationError, Settings
from openaml.store import EntityKind, EntityRecord
from openaml.store.leases import Leases

log = logging.getLogger(__name__)
CONNECT_SECONDS = 30     # to reach the scheduler, and for a first worker to join it
DASK_PORT = 8786  # a scheduler's port when its address names none
WAIT_SECONDS = 0.5       # a job thread's wait for its task between checks of its cancellation
SETTLE_SECONDS = 30.0    # a stopped job's wait for its running tasks before its clean-up
RECONNECT_SECONDS = 5.0  # between two tries to connect again once Dask has given a connection up
_PROBE_PREFIX = ".openaml-probe-"

P = ParamSpec("P")
R = TypeVar("R")
Peers = Callable[[tuple[str, str], Job], set[str]]  # Tasks.datasource_peers
_runtimes: dict[str, Runtime] = {}  # a worker process's runtime, by the settings (repr) it runs
_runtimes_lock = threading.Lock()


def _worker_task(function: Callable[P, R]) -> Callable[P, R]:
    """A function that runs as a Dask task: the memory it freed goes back to the OS after
    it (jobs.memory.release_memory), so that an idle worker is not paused for good."""
    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            release_memory()

    return run


class Cancellable(Protocol):
    """What a wait for a task asks of its job (or jobs): whether to give up, the names, and
    where to say why it waits."""

    record: EntityRecord

    def cancelled(self) -> bool: ...

    def log_line(self, line: str) -> None: ...


@dataclass
class Cluster:
    """A connected Dask client, and the settings its workers run jobs with. Datasource jobs of
    the same data are gathered here as local mode gathers them (`SharedWork`, with the
    front end's `peers`), and read by one task."""

    client: Any  # distributed.Client
    settings: Settings
    threads: int  # worker threads when connected: jobs that may run at once
    shared_reads: SharedWork[Job, Result] = field(default_factory=SharedWork)
    _reconnecting: threading.Lock = field(default_factory=threading.Lock)  # held by the thread that does
    _closed: threading.Event = field(default_factory=threading.Event)

    def state(self) -> dict[str, Any]:
        """Whether the client is connected to the scheduler (its own state: no call to the
        scheduler, which might not answer), and the worker threads there were at start-up."""
        return {"connected": self._client().status == "running", "threads_at_start": self.threads}

    def _client(self) -> Any:
        """The client. Dask's gives its connection up for good after CONNECT_SECONDS without the
        scheduler (every job created later failed with "Internal error (ClosedClientError)"
        until the server was restarted): then a thread makes a new one as soon as the
        scheduler answers again, trying every RECONNECT_SECONDS."""
        client = self.client
        if client.status in ("closing", "closed") and not self._closed.is_set() \
                and self._reconnecting.acquire(blocking=False):
            threading.Thread(target=self._reconnect, name="openaml-dask-reconnect", daemon=True).start()
        return client

    def _reconnect(self) -> None:
        """Connect again (with `_reconnecting` held, released at the end)."""
        try:
            while not self._closed.is_set():
                try:
                    client = new_client(self.settings.dask_scheduler or "")
                except Exception:  # noqa: BLE001 - not answering yet, whatever the way
                    self._closed.wait(RECONNECT_SECONDS)
                    continue
                old, self.client = self.client, client
                with suppress(Exception):
                    old.close()
                log.warning("connected again to the Dask scheduler at %s", self.settings.dask_scheduler)
                return
        finally:
            self._reconnecting.release()

    def tasks(self, peers: Peers) -> dict[EntityKind, Task]:
        """The job kinds, each run as a task on the cluster; `peers` (Tasks.datasource_peers)
        names the datasource jobs a datasource job waits for, to read their data once."""
        tasks: dict[EntityKind, Task] = {kind: partial(self._run, kind) for kind in JOB_KINDS}
        tasks[EntityKind.DATASOURCE] = partial(self._run_datasource, peers)
        tasks[EntityKind.MLMODEL] = self._run_training
        tasks[EntityKind.EVALUATION] = partial(self._run_by_partition, Tasks.score_evaluation,
                                               Tasks.finish_evaluation)
        tasks[EntityKind.BATCH_PREDICTION] = partial(self._run_by_partition, Tasks.predict_partition,
                                                     Tasks.finish_batch_prediction)
        return tasks

    def _run_datasource(self, peers: Peers, job: Job) -> Result:
        """A datasource job, read with the others of its data that run here or are about to."""
        spec = read_spec(job.record, DataSourceSpec)
        if spec.staged:  # staged for this job alone
            return self._run(EntityKind.DATASOURCE, job)
        key = read_key(spec)
        result, _ = self.shared_reads.join(key, job.record.id, job, lambda: peers(key, job),
                                             self._read_group, job.idle)
        return result

    def _read_group(self, jobs: Sequence[Job]) -> list[Result | Exception]:
        """Run datasource jobs of the same data: a result or an error each. Data larger than
        a partition are read in partitions, a task each (`_read_partitioned`); others by one
        task. The wait ends early only once every one of them is cancelled."""
        runs = [(j.record.id, j.owner or "", j.lease or "") for j in jobs]
        together = _Together(jobs)
        located, ranges = self._task(together, "plan", plan_datasource, self.settings, runs)
        if len(ranges) > 1:
            return self._read_partitioned(together, runs, located, ranges)
        return cast(list[Result | Exception], self._task(together, "read", run_datasources, self.settings, runs))

    def _read_partitioned(self, jobs: _Together, runs: list[tuple[str, str, str]], located: Located,
                          ranges: list[ByteRange]) -> list[Result | Exception]:
        """Count the records of every range (a task each), number them, read each partition
        for every job (a task each, writing its part of each job's data), merge what they
        found pairwise in input order (a tree of tasks: no worker holds every partition's
        statistics), and write the reports."""
        with self._cancelling() as submit:
            # each step gets its own object alone: the list of many files sent to every step
            # would grow with their square
            counted = [submit(jobs, f"count-{k}", count_datasource_range, self.settings, runs,
                              located[part.file_index], part) for k, part in enumerate(ranges)]
            counts = [self.wait(future, jobs) for future in counted]
            partitions = number_partitions(ranges, counts)
            total = sum(count.records for count in counts)
            found = [submit(jobs, f"part-{k}", ingest_datasource_partition, self.settings, runs,
                            located[partition.range.file_index], partition, total, k)
                     for k, partition in enumerate(partitions)]
            merged = _tree(submit, jobs, "merge", merge_partition_results, found)
            finished = submit(jobs, "finish", finish_datasources, self.settings, runs, located, merged,
                              len(partitions))
            try:
                return cast(list[Result | Exception], self.wait(finished, jobs))
            except BaseException:
                self._clean_up(jobs, remove_datasource_parts, self.settings, runs, len(partitions))
                raise

    @contextmanager
    def _cancelling(self) -> Iterator[Callable[..., Any]]:
        """`_submit` for the tasks of one step; those still pending when the step fails (or is
        cancelled) are cancelled, not left to run."""
        submitted: list[Any] = []

        def submit(jobs: Cancellable, step: str, function: Callable[..., Any], *args: Any) -> Any:
            # only those not done yet are kept: a future held keeps its result in the cluster
            submitted[:] = [future for future in submitted if not future.done()]
            submitted.append(self._submit(jobs, step, function, *args))
            return submitted[-1]

        try:
            yield submit
        except BaseException:
            with suppress(Exception):
                self.client.cancel([f for f in submitted if not f.done()])
            raise

    def _run_training(self, job: Job) -> Result:
        """A training: data-parallel when the cluster had two worker threads or more at
        start-up and its datasource was read in partitions and is not small
        (Tasks.prepare_parallel_training), else one task. Each pass runs as a task per
        group of partitions, one group per worker thread there was at start-up; the front end
        mixes their models (ml.training.parallel.fit_parallel) and records the progress."""
        run = (job.record.id, job.owner or "", job.lease or "")
        if self.threads < 2:  # one worker at a time: a single training, which keeps its features
            return self._run(EntityKind.MLMODEL, job)
        model = EntityKind.MLMODEL.value
        prepared = self._task(job, "prepare", job_step, self.settings, model, run, Tasks.prepare_parallel_training)
        if prepared is None:
            return self._run(EntityKind.MLMODEL, job)
        setup, start, partitions = prepared
        groups = [list(range(partitions))[g::min(self.threads, partitions)]
                  for g in range(min(self.threads, partitions))]
        job.log_line(f"training on {len(groups)} Dask workers at once, over {partitions} partitions")

        with self._cancelling() as submit:
            def run_pass(state: LinearState, pass_number: int, averaging: bool) -> PassSum:
                added = [submit(job, f"pass-{pass_number}-{g}", job_step, self.settings, model, run,
                                Tasks.train_parallel_pass, setup, state, pass_number, averaging, group)
                         for g, group in enumerate(groups)]
                return cast(PassSum, self.wait(_tree(submit, job, f"add-{pass_number}", operator.add, added), job))

            with ProgressRecorder(job) as progress:
                state = fit_parallel(setup, start, run_pass, progress)
        return cast(Result, self._task(job, "save", job_step, self.settings, model, run, Tasks.save_parallel_model,
                                       setup, state))

    def _run_by_partition(self, each: Callable[..., Any], merge: Callable[..., Any], job: Job) -> Result:
        """An evaluation or a batch prediction: a task (`each`) for each partition of its
        datasource's data and one (`merge`) for what they give, or one task for data in one
        part."""
        kind = job.record.kind
        run = (job.record.id, job.owner or "", job.lease or "")
        partitions = self._task(job, "plan", job_step, self.settings, kind.value, run, Tasks.source_partitions)
        if partitions < 2:
            return self._run(kind, job)
        job.log_line(f"reading the {partitions} partitions of the data on the Dask workers")
        parts: list[Any] = []
        try:
            with self._cancelling() as submit:
                parts = [submit(job, f"part-{k}", job_step, self.settings, kind.value, run, each, k)
                         for k in range(partitions)]
                return cast(Result, self.wait(submit(job, "merge", job_step, self.settings, kind.value, run, merge,
                                                     parts), job))
        except BaseException:
            if kind is EntityKind.BATCH_PREDICTION:  # the pieces its partitions wrote, once none writes more
                self._settled(parts)
                self._clean_up(job, job_step, self.settings, kind.value, run, Tasks.remove_batch_pieces)
            raise

    def _settled(self, futures: list[Any]) -> None:
        """Wait (at most SETTLE_SECONDS) for the tasks of `futures` that still run to end: they
        stop at their next look at their job's deletion. A piece a partition wrote after the
        clean-up stayed for good."""
        from distributed import wait

        with suppress(Exception):  # best effort, as the clean-up
            wait(futures, timeout=SETTLE_SECONDS)

    def _clean_up(self, jobs: Cancellable, function: Callable[..., Any], *args: Any) -> None:
        """Run a task that removes what a failed or stopped step left, without waiting for it."""
        from distributed import fire_and_forget

        with suppress(Exception):  # best effort: the failure itself is what the job reports
            fire_and_forget(self._submit(jobs, "clean-up", function, *args))

    def _task(self, jobs: Cancellable, step: str, function: Callable[..., Any], *args: Any) -> Any:
        """Run one step of a job (or of jobs waited for together) as a task; its result."""
        return self.wait(self._submit(jobs, step, function, *args), jobs)

    def _submit(self, jobs: Cancellable, step: str, function: Callable[..., Any], *args: Any) -> Any:
        """Submit one step of a job as a task (futures among `args` are passed as their results)."""
        from distributed.client import ClosedClientError

        record = jobs.record
        try:
            return self._client().submit(function, *args, pure=False,
                                         key=f"openaml-{record.kind.value}-{record.id}-{step}-{uuid.uuid4().hex[:8]}")
        except (OSError, CancelledError, ClosedClientError) as exc:
            raise self._lost(exc) from exc

    def close(self) -> None:
        self._closed.set()
        self.client.close()

    def _run(self, kind: EntityKind, job: Job) -> Result:
        """Submit the job, then wait for its task to end; the job's own cancellation ends the
        wait (the task ends by itself: it reads the same from the store). The task's own
        error is the job's; a failure of the cluster ends it with a message that says so."""
        return cast(Result, self._task(job, "run", run_job, self.settings, kind.value, job.record.id,
                                       job.owner or "", job.lease or ""))

    def wait(self, future: Any, job: Cancellable) -> Any:
        """The result of the job's task once it ends, or its error; the job's cancellation
        (Job.cancelled, asked every WAIT_SECONDS) ends the wait with an InputError."""
        ended = threading.Event()
        future.add_done_callback(lambda _: ended.set())  # whatever ends it: result, error, loss
        said = False
        while not ended.wait(WAIT_SECONDS):
            if job.cancelled():
                future.cancel()
                raise InputError(f"{job.record.kind.value} {job.record.id} stopped before its end")
            if not said and self._client().status != "running":  # the client reconnects for a while
                said = True
                job.log_line(f"The Dask scheduler at {self.settings.dask_scheduler} does not answer: the job "
                             "waits for it to answer again, and fails if the connection is given up")
        return self._result(future)

    def _result(self, future: Any) -> Any:
        """The result of an ended task, or its error."""
        from distributed import KilledWorker

        if future.status == "finished":
            return future.result()
        if future.status != "error":  # cancelled, or lost with the scheduler
            raise self._lost(CancelledError(future.status))
        try:
            future.result()
        except KilledWorker as exc:
            raise InputError(f"Every Dask worker that ran this job died ({exc}); see the workers' logs "
                             "(a worker's memory limit is the usual cause)") from exc
        raise AssertionError("a failed task without an error")  # pragma: no cover - Dask raises above

    def _lost(self, exc: BaseException) -> InputError:
        return InputError(f"The Dask scheduler at {self.settings.dask_scheduler} lost this job's task, or the "
                          f"connection to it ({type(exc).__name__}); create the entity again")


def connect_cluster(settings: Settings) -> Cluster:
    """Connect to the scheduler of `settings`, wait for a worker, and check that every worker
    sees the data folder. ConfigurationError when any of that fails."""
    distributed = require_extra("dask", "distributed", "--executor dask")
    if not settings.dask_scheduler:
        raise ConfigurationError("--executor dask needs --dask-scheduler (OPENAML_DASK_SCHEDULER): the "
                                 "address of a Dask scheduler, e.g. tcp://127.0.0.1:8786")
    try:
        client = new_client(settings.dask_scheduler)
    except (OSError, TimeoutError) as exc:
        raise ConfigurationError(f"cannot reach the Dask scheduler at {settings.dask_scheduler}: {exc}") from None
    except ValueError as exc:  # Dask's reading of the address
        raise ConfigurationError(f"--dask-scheduler {settings.dask_scheduler}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - something else answers there (an HTTP server: a traceback after 62 s)
        raise ConfigurationError(f"--dask-scheduler {settings.dask_scheduler} does not answer as a Dask scheduler "
                                 f"({type(exc).__name__})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (TimeoutError, distributed.TimeoutError):
            raise ConfigurationError(f"no Dask worker joined the scheduler at {settings.dask_scheduler} "
                                     f"within {CONNECT_SECONDS} s") from None
        workers_large_enough({address: int(info.get("memory_limit") or 0)
                              for address, info in client.scheduler_info()["workers"].items()})
        if uses_data_folder(settings):
            workers_seeing(probe_folder(client.run, settings.data_dir), settings.data_dir)
        threads = sum(client.nthreads().values())
    except BaseException:
        client.close()
        raise
    worker_settings = replace(settings, access_keys={}, credentials_file=None)  # the API's secrets stay here
    distributed.fire_and_forget([client.submit(warm_worker, worker_settings, workers=[address], pure=False,
                                               key=f"openaml-warm-up-{uuid.uuid4().hex[:8]}")
                                 for address in client.nthreads()])
    return Cluster(client, worker_settings, threads)


def workers_large_enough(limits: dict[str, int]) -> None:
    """ConfigurationError naming the workers whose memory limit (bytes; 0: none) is under what
    a worker's own process and one job's least budget take: such a worker sat paused by its
    nanny (at 80 % of its limit) with a job that stayed INPROGRESS, saying nothing."""
    least = WORKER_PROCESS_BYTES + MIN_BUDGET
    small = sorted(address for address, limit in limits.items() if 0 < limit < least)
    if small:
        raise ConfigurationError(f"the Dask workers {', '.join(small)} have a memory limit under {least >> 20} MiB, "
                                 f"what a worker's own process ({WORKER_PROCESS_BYTES >> 20} MiB) and a job "
                                 f"({MIN_BUDGET >> 20} MiB at least) take: start them with --memory-limit 512MiB "
                                 "or more")


def new_client(address: str) -> Any:
    """A Dask client of the scheduler at `address`, reached first (`reach_scheduler`)."""
    import distributed

    reach_scheduler(address)
    return distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)


def reach_scheduler(address: str) -> None:
    """OSError unless a TCP connection to the scheduler's `address` (tcp:// or tls://; others
    are left to Dask) opens within CONNECT_SECONDS; ValueError for an address Dask cannot
    read. Dask's Client retries an address that refuses until its timeout, and a Ctrl-C
    meanwhile left a half-made Client whose clean-up at exit waited 60 s; a refused address
    now fails at once, before any Client is made."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(address)
    get_backend(scheme)  # ValueError for a scheme Dask does not know
    if scheme in ("tcp", "tls"):
        socket.create_connection(parse_host_port(location, default_port=DASK_PORT), timeout=CONNECT_SECONDS).close()


def uses_data_folder(settings: Settings) -> bool:
    """Whether jobs read or write the data folder: the embedded object store, artifacts on
    local disk, or a SQLite database."""
    return (not settings.s3_endpoint_url or not settings.artifacts_uri
            or (settings.database_url or "").startswith("sqlite"))


def probe_folder(run: Callable[..., dict[str, Any]], folder: Path) -> dict[str, bool]:
    """Whether each worker reads the file this process writes into `folder` (`run`: a Dask
    client's `run`, which calls a function on every worker)."""
    token = uuid.uuid4().hex
    probe = folder / f"{_PROBE_PREFIX}{token}"
    probe.write_text(token)
    try:
        return {address: bool(seen) for address, seen in run(reads_token, str(probe), token).items()}
    finally:
        probe.unlink(missing_ok=True)


def workers_seeing(answers: dict[str, bool], folder: Path) -> None:
    """ConfigurationError unless every worker of `answers` (probe_folder's) sees `folder`."""
    blind = sorted(address for address, seen in answers.items() if not seen)
    if blind:
        raise ConfigurationError(
            f"the Dask workers {', '.join(blind)} do not see the data folder {folder}: jobs run on the "
            "workers, which must share the front end's data folder (a shared file system, or one "
            "machine) and database")


def reads_token(path: str, token: str) -> bool:
    """On a worker: whether `path` holds `token`."""
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


@_worker_task
def warm_worker(settings: Settings) -> None:
    """On a worker: open its runtime and run the start-up warm-up (`jobs.warmup`)."""
    from openaml.jobs.warmup import warm_up

    runtime = _runtime(settings)
    warm_up(execution=runtime.execution)


@_worker_task
def run_job(settings: Settings, kind: str, entity_id: str, owner: str, lease: str) -> Result:
    """On a worker: run the job of entity `kind`/`entity_id` as the run `lease` of the front
    end `owner`; it stops once that run's lease is gone (the front end stopped, or lost it)."""
    runtime = _runtime(settings)
    entity_kind = EntityKind(kind)
    return runtime.tasks.by_kind()[entity_kind](_job(runtime, entity_kind, entity_id, owner, lease))


def _job(runtime: Runtime, kind: EntityKind, entity_id: str, owner: str, lease: str, quiet: bool = False) -> Job:
    """The Job a worker runs for the front end `owner`'s run `lease`; it logs where it runs
    unless `quiet` (a short step of a job)."""
    record = runtime.store.get(kind, entity_id)
    if record is None:
        raise InputError(f"{kind.value} {entity_id} does not exist any more")
    leases = Leases(runtime.store)
    job = Job(record, runtime.store, partial(_log, runtime, record),
              stopping=lambda: not leases.holds(lease), owner=owner, lease=lease, others=_others_here,
              store_patience=patience_for(runtime.job_lease_seconds))
    if not quiet:
        job.log_line(f"running on the Dask worker {_worker_name()}")
    return job


@_worker_task
def run_datasources(settings: Settings, runs: list[tuple[str, str, str]]) -> list[Result | Exception]:
    """On a worker: run datasource jobs of the same data together (id, owner, lease each),
    as `run_job` runs one; each one's result or error."""
    runtime = _runtime(settings)
    jobs = _jobs(runtime, runs, quiet=False)
    if all(job is None for job in jobs):
        raise InputError("Every datasource of this read was deleted")
    results = iter(runtime.tasks.build_datasources([job for job in jobs if job is not None]))
    return [InputError("The datasource was deleted") if job is None else next(results) for job in jobs]


@_worker_task
def remove_datasource_parts(settings: Settings, runs: list[tuple[str, str, str]], parts: int) -> None:
    """On a worker: delete the part files that datasource jobs whose read failed wrote."""
    runtime = _runtime(settings)
    for job in _jobs(runtime, runs):
        if job is not None:
            runtime.tasks.remove_parts(job, parts)


@_worker_task
def plan_datasource(settings: Settings, runs: list[tuple[str, str, str]]) -> tuple[Located, list[ByteRange]]:
    """On a worker: the objects of the datasource jobs' data and the byte ranges they are read in."""
    runtime = _runtime(settings)
    return runtime.tasks.plan_partitions(_live_job(runtime, runs), settings.partition_bytes)


@_worker_task
def count_datasource_range(settings: Settings, runs: list[tuple[str, str, str]], planned: tuple[str, str, int],
                           part: ByteRange) -> RangeCount:
    """On a worker: the records and lines of one range of the datasource jobs' data."""
    runtime = _runtime(settings)
    return runtime.tasks.count_partition(_live_job(runtime, runs), planned, part)


@_worker_task
def ingest_datasource_partition(settings: Settings, runs: list[tuple[str, str, str]], planned: tuple[str, str, int],
                                partition: Partition, total: int, index: int) -> list[PartialIngest | None]:
    """On a worker: read one partition for datasource jobs of the same data (Tasks.ingest_partition)."""
    runtime = _runtime(settings)
    return runtime.tasks.ingest_partition(_jobs(runtime, runs, quiet=False), planned, partition, total, index)


@_worker_task
def merge_partition_results(first: list[PartialIngest | None],
                            then: list[PartialIngest | None]) -> list[PartialIngest | None]:
    """On a worker: what consecutive partitions found, job by job (None: a job gone)."""
    return [None if a is None or b is None else merged_partials(a, b) for a, b in zip(first, then, strict=True)]


@_worker_task
def finish_datasources(settings: Settings, runs: list[tuple[str, str, str]], located: Located,
                       merged: list[PartialIngest | None], parts: int) -> list[Result | Exception]:
    """On a worker: the datasource jobs' reports from what their partitions found (Tasks.finish_partitions)."""
    runtime = _runtime(settings)
    return list(runtime.tasks.finish_partitions(_jobs(runtime, runs), located, merged, parts))


@contextmanager
def _deletion_ends(kind: EntityKind, run: tuple[str, str, str]) -> Iterator[None]:
    """A step of a job that stops because its entity was deleted (Cancelled) fails with a
    message, as the job's own task does (tasks._ended_by_deletion)."""
    try:
        yield
    except Cancelled:
        raise InputError(f"{kind.value} {run[0]} was deleted") from None


def _jobs(runtime: Runtime, runs: list[tuple[str, str, str]], quiet: bool = True) -> list[Job | None]:
    """The datasource jobs of a read, None for those whose entity is gone (the others go on)."""
    jobs: list[Job | None] = []
    for run in runs:
        try:
            jobs.append(_job(runtime, EntityKind.DATASOURCE, *run, quiet=quiet))
        except InputError:
            jobs.append(None)
    return jobs


def _live_job(runtime: Runtime, runs: list[tuple[str, str, str]]) -> Job:
    """One datasource job of a read whose entity is still there."""
    live = [job for job in _jobs(runtime, runs) if job is not None]
    if not live:
        raise InputError("Every datasource of this read was deleted")
    return live[0]


@_worker_task
def job_step(settings: Settings, kind: str, run: tuple[str, str, str], step: Callable[..., Any], *args: Any) -> Any:
    """On a worker: a step of the job `run` of entity `kind`, a method of Tasks called with the
    job and `args` (Tasks.score_evaluation, ...); the entity deleted meanwhile ends it with a
    message, as the job's own task does (tasks._ended_by_deletion)."""
    runtime = _runtime(settings)
    entity = EntityKind(kind)
    with _deletion_ends(entity, run):
        return step(runtime.tasks, _job(runtime, entity, *run, quiet=True), *args)


def _tree(submit: Callable[..., Any], jobs: Cancellable, step: str, combine: Callable[[Any, Any], Any],
          futures: list[Any]) -> Any:
    """The results of `futures` combined pairwise in order, by a tree of tasks (log2 levels),
    so that no one task or process holds them all; the future of the whole."""
    level = 0
    while len(futures) > 1:
        level += 1
        futures = [submit(jobs, f"{step}-{level}-{k}", combine, *futures[k:k + 2]) if k + 1 < len(futures)
                   else futures[k] for k in range(0, len(futures), 2)]
    return futures[0]


class _Together:
    """Jobs waited for as one: cancelled once every one of them is."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs, self.record = jobs, jobs[0].record

    def cancelled(self) -> bool:
        return all(job.cancelled() for job in self.jobs)

    def log_line(self, line: str) -> None:
        for job in self.jobs:
            job.log_line(line)


def _log(runtime: Runtime, record: EntityRecord, line: str) -> None:
    """Append to the job's log; a line that cannot be written never fails the job (as in the
    front end's engine)."""
    try:
        runtime.write_log(record, line)
    except Exception:  # noqa: BLE001 - the log is a convenience, the store holds the truth
        log.exception("cannot write the log of %s %s", record.kind.value, record.id)


def _runtime(settings: Settings) -> Runtime:
    """This worker process's runtime for `settings`, opened on first use, in a process set up
    as a server's for jobs (`prepare_job_process`: Dask workers ran theirs on huge pages). It
    gathers no datasource jobs itself: their front end gathers them (`Cluster._run_datasource`)."""
    key = repr(settings)
    with _runtimes_lock:
        if key not in _runtimes:
            _sees_the_store(settings)
            prepare_job_process()
            worker = _worker()
            threads = int(worker.state.nthreads) if worker is not None else 1
            limit = worker.memory_manager.memory_limit if worker is not None else None
            _runtimes[key] = open_runtime(settings, workers=threads, share_work=False,
                                          memory_limit=int(limit) if limit else None,  # Dask's limit
                                          process_bytes=WORKER_PROCESS_BYTES)
        return _runtimes[key]


def _sees_the_store(settings: Settings) -> None:
    """InputError unless this worker sees the SQLite store the server made (the start-up probe
    of the data folder does not see a worker that joins later: opening the store there made an
    empty one, and jobs failed saying their entities had been deleted or did not exist)."""
    from sqlalchemy import make_url

    url = make_url(settings.database_url or settings.default_database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise InputError(f"The Dask worker {_worker_name()} does not see the server's store {url.database}: "
                         f"start the workers where the data folder {settings.data_dir} is the server's")


def _worker() -> Any | None:
    """The Dask worker this code runs on, or None (a test calls run_job directly)."""
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def _others_here() -> int:
    """How many other tasks the Dask worker this code runs on executes now (0 off a worker)."""
    worker = _worker()
    return max(0, worker.state.executing_count - 1) if worker is not None else 0


def _worker_name() -> str:
    worker = _worker()
    return str(worker.address) if worker is not None else f"process {os.getpid()}"
