"""The work of each job kind: the only code that does both I/O (store, objects) and ML."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, BinaryIO, cast

import pyarrow as pa

from openaml.jobs.engine import Job, Task
from openaml.jobs.models import MODEL_FILE, EndpointScorer, LoadedModels, Scorer, read_model
from openaml.jobs.shared_reads import SharedReads
from openaml.ml.data import (
    DataObject,
    IngestReport,
    Target,
    ingest,
    ingest_many,
    parse_rearrangement,
    read_materialized,
)
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.errors import InputError
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.metrics import evaluate_model
from openaml.ml.prediction import batch_predict
from openaml.ml.prediction.batch import header_line
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.training import Cancelled, parse_parameters, train_model
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.sgd import MEMORY_BYTES
from openaml.ml.training.stop import ShouldStop, check
from openaml.storage import ArtifactStore, ObjectStore, folder_uri, join_uri
from openaml.storage.databases import DatabaseConfig, StagingError, stage_query
from openaml.store import EntityKind, Status, Store

DATA_FILE = "data.arrows"
INGEST_FILE = "ingest.json"
REPORT_FILE = "report.json"
_STAGED = ("redshift", "rds")  # datasource sources copied to CSV by their own job
CANCEL_CHECK_SECONDS = 0.2  # Job.cancelled() reads the store: asked at most this often


class Tasks:
    """The four job kinds, plus model loading for real-time endpoints."""

    def __init__(
        self, store: Store, objects: ObjectStore, artifacts: ArtifactStore, databases: DatabaseConfig,
        training_memory: int = MEMORY_BYTES, workers: int = 1, execution: Execution = ONE_THREAD,
    ) -> None:
        self.store, self.objects, self.artifacts, self.databases = store, objects, artifacts, databases
        self.training_memory = training_memory  # bytes of records and features a training keeps
        self.workers = workers  # of the job engine
        self.execution = execution  # of each job
        self.shared_reads = SharedReads()
        self.models = LoadedModels(partial(read_model, artifacts))
        self._reading: dict[int, Job] = {}  # id(Target) -> its datasource job, while it reads

    def by_kind(self) -> dict[EntityKind, Task]:
        """The tasks; one whose entity is deleted while it runs stops (Cancelled) and fails."""
        tasks: dict[EntityKind, Task] = {
            EntityKind.DATASOURCE: self.build_datasource,
            EntityKind.MLMODEL: self.train_model,
            EntityKind.EVALUATION: self.evaluate,
            EntityKind.BATCH_PREDICTION: self.batch_predict,
        }
        return {kind: _ended_by_deletion(task) for kind, task in tasks.items()}

    # -- datasources ------------------------------------------------------------------------

    def build_datasource(self, job: Job) -> dict[str, Any]:
        record = job.record
        request, info = record.request, record.info
        if info.get("source") in _STAGED:
            self._stage(job)
        spec = request.get("DataSpec") or request.get("RDSData") or {}
        schema = parse_schema(info["schema"])
        rearrangement = parse_rearrangement(spec.get("DataRearrangement"))
        located = self.objects.resolve_data_location(record.data_uri or "")  # or StorageError
        objects = [
            DataObject(uri=o.uri, key=o.key, size=o.size,
                       open=_opener(self.objects, o.uri))
            for o in located
        ]
        job.log_line(f"reading {len(objects)} object(s) from {record.data_uri}")
        with self.artifacts.open_write(record.kind.value, record.id, DATA_FILE) as sink:
            statistics = bool(request.get("ComputeStatistics"))
            if info.get("source") in _STAGED:  # staged for this job alone
                stop = _Deleted([job])
                report = ingest(objects, schema, rearrangement, statistics, sink,
                                lambda records: check(stop), job.log_line, self.execution)
            else:
                key = (record.data_uri, info["schema"])
                target = Target(rearrangement, statistics, sink)
                self._reading[id(target)] = job
                try:
                    report, readers = self.shared_reads.ingest(
                        key, record.id, target, lambda: self._datasource_peers(key, record.id),
                        lambda targets: self._read_for(objects, schema, targets), job.idle)
                finally:
                    del self._reading[id(target)]
                if readers > 1:
                    job.log_line(f"the data were read once for {readers} datasources")
        document = report.to_dict()
        self._write_json(record.kind, record.id, INGEST_FILE, document)
        job.log_line(
            f"{report.records_read} records read, {report.rejected_records} rejected, "
            f"{report.selected_records} selected"
        )
        return {
            "data_size_in_bytes": report.data_size_in_bytes,
            "number_of_files": report.number_of_files,
            "files": list(report.files),
            "password": None,
        }

    def _read_for(self, objects: list[DataObject], schema: Schema,
                  targets: Sequence[Target]) -> list[IngestReport | Exception]:
        """One read of the data for the jobs of `targets`; it stops once all are deleted."""
        jobs = [self._reading[id(t)] for t in targets]
        stop = _Deleted(jobs)

        def log_rejected(line: str) -> None:
            for job in jobs:
                job.log_line(line)

        return [*ingest_many(objects, schema, targets, lambda records: check(stop), log_rejected,
                             self.execution)]

    def _datasource_peers(self, key: tuple[str | None, Any], own_id: str) -> set[str]:
        """Ids of the other datasources that read the same data with the same schema and run,
        or are waiting for a worker while another one is free."""
        statuses = [Status.INPROGRESS] + ([Status.PENDING] if self.workers > 1 else [])
        return {r.id for status in statuses
                for r in self.store.with_status((EntityKind.DATASOURCE,), status)
                if r.id != own_id and (r.data_uri, r.info.get("schema")) == key
                and r.info.get("source") not in _STAGED}

    def _stage(self, job: Job) -> None:
        record = job.record
        source = record.info["source"]
        spec = record.request["DataSpec"] if source == "redshift" else record.request["RDSData"]
        database = spec["DatabaseInformation"]
        identifier = database.get("ClusterIdentifier") or database.get("InstanceIdentifier")
        url = self.databases.lookup(source, identifier)
        if url is None:
            raise InputError(f"No database connection is configured for '{identifier}'")
        try:
            uris = stage_query(
                url, database["DatabaseName"], spec["DatabaseCredentials"]["Username"],
                record.info.get("password") or "", spec["SelectSqlQuery"], self.objects,
                spec["S3StagingLocation"], record.id,
            )
        except StagingError as exc:
            raise InputError(f"The query on '{identifier}' failed: {exc}") from None
        job.progress(password=None)
        job.log_line(f"staged the query result as {len(uris)} CSV file(s)")

    # -- models -----------------------------------------------------------------------------

    def train_model(self, job: Job) -> dict[str, Any]:
        record = job.record
        source_id = record.datasource_id or ""
        schema = parse_schema(record.info["schema"])
        stored = self._read_json(EntityKind.DATASOURCE, source_id, INGEST_FILE).get("statistics")
        statistics = DatasetStatistics.from_json(stored) if stored else None
        recipe = record.info.get("recipe") or default_recipe(schema, statistics)
        params = parse_parameters(record.request.get("Parameters") or {}, record.model_type or "",
                                  seed=_seed(record.id))

        def progress(state: TrainingProgress) -> None:
            job.progress(training=state.to_json())
            job.log_line(f"pass {state.passes} of {state.max_passes}: loss {state.losses[-1]}")

        stop = _Deleted([job])
        model = train_model(record.model_type or "", schema, recipe, params, statistics,
                            self._batches(source_id, stop), progress, self.training_memory, stop,
                            self.execution)
        with self.artifacts.open_write(record.kind.value, record.id, MODEL_FILE) as out:
            model.save(out)
        return {"size_in_bytes": model.size_in_bytes, "recipe": recipe}

    def load_scorer(self, model_id: str) -> tuple[Scorer, float]:
        scorer = EndpointScorer(self.models.get(model_id))
        record = self.store.get(EntityKind.MLMODEL, model_id)
        return scorer, float((record.info if record else {}).get("score_threshold", 0.5))

    # -- evaluations and batch predictions --------------------------------------------------

    def evaluate(self, job: Job) -> dict[str, Any]:
        record = job.record
        loaded = self.models.get(record.model_id or "")  # held while the job runs: shared
        model = loaded.model
        source = self._datasource(record.datasource_id or "")
        stop = _Deleted([job])
        result = evaluate_model(model, self._batches(source.id, stop)(),
                                parse_schema(source.info["schema"]), stop, self.execution)
        self._write_json(record.kind, record.id, REPORT_FILE, result.report.to_json())
        return {"metrics": result.metrics}

    def batch_predict(self, job: Job) -> dict[str, Any]:
        record = job.record
        model_record = self.store.get(EntityKind.MLMODEL, record.model_id or "")
        threshold = float((model_record.info if model_record else {}).get("score_threshold", 0.5))
        loaded = self.models.get(record.model_id or "")  # held while the job runs: shared
        model = loaded.model
        source = self._datasource(record.datasource_id or "")
        files: list[str] = source.info.get("files") or []
        base = folder_uri(record.request["OutputUri"])
        results = _result_uris(base, record.id, files)
        dataset_schema = parse_schema(source.info["schema"])
        writers: dict[int, BinaryIO] = {}

        def open_output(index: int) -> BinaryIO:
            writers[index] = self.objects.open_write(results[index])
            return cast(BinaryIO, _KeepOpen(writers[index]))

        try:
            stop = _Deleted([job])
            total, invalid = batch_predict(model, self._batches(source.id, stop)(), dataset_schema,
                                           threshold, open_output, stop, self.execution)
            for index in range(len(files)):
                if index not in writers:  # an input file without records: header only
                    with gzip.GzipFile(fileobj=open_output(index), mode="wb", mtime=0) as out:
                        out.write((header_line(model, dataset_schema) + "\n").encode())
            for stream in writers.values():
                stream.close()  # commits the result object
        except BaseException:
            for stream in writers.values():  # aborting one already committed does nothing
                getattr(stream, "abort", stream.close)()
            raise
        manifest = dict(zip(files, results, strict=True))
        self.objects.write_bytes(join_uri(base, f"batch-prediction/{record.id}.manifest"),
                                 json.dumps(manifest, separators=(",", ":")).encode())
        return {"total_record_count": total, "invalid_record_count": invalid}

    # -- helpers ----------------------------------------------------------------------------

    def _datasource(self, source_id: str) -> Any:
        source = self.store.get(EntityKind.DATASOURCE, source_id)
        if source is None:
            raise InputError(f"DataSource {source_id} does not exist")
        return source

    def _batches(self, source_id: str, should_stop: ShouldStop) -> Callable[[], Iterator[pa.RecordBatch]]:
        """The datasource's records; reading raises Cancelled between batches once should_stop
        answers True."""
        path = self.artifacts.path_for(EntityKind.DATASOURCE.value, source_id, DATA_FILE)

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in read_materialized(path):
                check(should_stop)
                yield batch

        return batches

    def _write_json(self, kind: EntityKind, entity_id: str, name: str, document: Any) -> None:
        with self.artifacts.open_write(kind.value, entity_id, name) as out:
            out.write(json.dumps(document, separators=(",", ":"), default=str).encode())

    def _read_json(self, kind: EntityKind, entity_id: str, name: str) -> dict[str, Any]:
        with self.artifacts.open_read(kind.value, entity_id, name) as stream:
            return json.loads(stream.read())


class _Deleted:
    """A should_stop for work done for `jobs`: whether every one of them has been deleted,
    asking the store (Job.cancelled) at most every CANCEL_CHECK_SECONDS."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = list(jobs)
        self.next_check = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self.next_check:
            return False
        self.next_check = now + CANCEL_CHECK_SECONDS
        return all(job.cancelled() for job in self.jobs)


def _ended_by_deletion(task: Task) -> Task:
    """The task, whose Cancelled (its entity was deleted) ends the job."""

    def run(job: Job) -> dict[str, Any]:
        try:
            return task(job)
        except Cancelled:
            raise InputError(f"{job.record.kind.value} {job.record.id} was deleted") from None

    return run


class _KeepOpen(io.RawIOBase):
    """A writer whose close() is left to the owner, who commits or aborts the object."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.target.write(data)

    def close(self) -> None:
        self.target.flush()
        super().close()


def _seed(entity_id: str) -> int:
    """A deterministic training seed from the model id: same id and data, same model."""
    return int.from_bytes(hashlib.sha256(entity_id.encode()).digest()[:4], "big")


def _opener(objects: ObjectStore, uri: str) -> Callable[[], BinaryIO]:
    return lambda: objects.open_read(uri)


def _result_uris(base: str, prediction_id: str, files: list[str]) -> list[str]:
    """Result object per input file (evaluation-and-prediction.md §2.2), names made unique."""
    uris: list[str] = []
    used: set[str] = set()
    for uri in files:
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        if name in used:
            name = uri.split("://", 1)[1].split("/", 1)[1].replace("/", "_")
        used.add(name)
        uris.append(join_uri(base, f"batch-prediction/result/{prediction_id}-{name}.gz"))
    return uris
