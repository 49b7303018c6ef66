"""What runs jobs, built from the settings: the stores, the job logs and the tasks. The server
builds one; with `--executor dask`, so does each Dask worker process (`cluster.py`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from openaml.jobs.memory import PROCESS_BYTES, parse_block_bytes, prefer_small_pages, training_budget
from openaml.jobs.priority import single_threaded_blas
from openaml.jobs.tasks import LOG_FILE, Tasks
from openaml.ml.data import FAST_PATHS, GENERAL_PATH
from openaml.ml.execution import Execution
from openaml.settings import Settings
from openaml.storage import Artifacts, ArtifactStore, ObjectArtifactStore, ObjectStore, open_object_store
from openaml.storage.databases import load_database_config
from openaml.store import EntityRecord, Store, open_store


@dataclass(frozen=True)
class Runtime:
    store: Store
    objects: ObjectStore
    artifacts: Artifacts
    tasks: Tasks
    execution: Execution
    job_lease_seconds: float = 30.0  # the front ends' leases (jobs.engine.patience_for)

    def write_log(self, record: EntityRecord, line: str) -> None:
        """Append a time-stamped line to the job log of `record`."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.artifacts.open_append(record.kind.value, record.id, LOG_FILE) as out:
            out.write(f"{stamp} {line}\n".encode())


def prepare_job_process() -> None:
    """What a process that runs jobs (a server's, a Dask worker's) sets for itself: NumPy's large
    arrays on small pages (jobs.memory.prefer_small_pages) and BLAS on the calling thread alone
    (jobs.priority.single_threaded_blas)."""
    prefer_small_pages()
    single_threaded_blas()


def open_runtime(settings: Settings, workers: int, memory_limit: int | None = None,
                 share_work: bool = True, process_bytes: int = PROCESS_BYTES) -> Runtime:
    """The runtime of a process running `workers` jobs at once within `memory_limit` bytes
    (default: the process's limits): each training keeps the settings' training memory, else
    a share of what the process itself (`process_bytes`) leaves of the limit; with a limit
    given (a Dask worker's), datasource jobs parse blocks sized by it too.
    share_work: whether jobs in this process share work (jobs/shared_work.py): datasources of the
    same data read it once, an evaluation and a batch prediction of one model and datasource
    score once."""
    store = open_store(settings.database_url or "")
    objects = open_object_store(settings.s3_endpoint_url, settings.objects_root)
    artifacts: Artifacts = (ObjectArtifactStore(objects, settings.artifacts_uri) if settings.artifacts_uri
                            else ArtifactStore(settings.artifacts_root))
    execution = Execution(threads=max(1, settings.job_threads))
    memory = settings.training_memory or training_budget(workers, memory_limit, process_bytes)
    parsing = FAST_PATHS if settings.csv_fast_paths else GENERAL_PATH
    if memory_limit is not None:  # a Dask worker's: blocks within it (a server keeps one size:
        # the stored batches, and so the training buffers, are then the same on every machine)
        parsing = replace(parsing, block_bytes=parse_block_bytes(workers, memory_limit, process_bytes))
    tasks = Tasks(store, objects, artifacts, load_database_config(settings.databases_file), memory, execution,
                  parsing, share_work)
    return Runtime(store, objects, artifacts, tasks, execution, settings.job_lease_seconds)
