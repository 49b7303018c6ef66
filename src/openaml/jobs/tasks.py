"""The work of each job kind: the only code that does both I/O (store, objects) and ML."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, nullcontext, suppress
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, cast

import pyarrow as pa

from openaml.jobs.data_copy import DATA_FILE, PARTS_FILE, data_file_names, part_file
from openaml.jobs.engine import Job, Task
from openaml.jobs.models import MODEL_FILE, EndpointScorer, LoadedModels, Scorer, read_model
from openaml.jobs.record_info import (
    progress_info,
    read_result,
    read_secret,
    read_spec,
    read_threshold,
)
from openaml.jobs.retention import release_data
from openaml.jobs.shared_work import SharedWork
from openaml.jobs.specs import (
    BatchPredictionResult,
    BatchPredictionSpec,
    DataSourceResult,
    DataSourceSpec,
    EvaluationResult,
    EvaluationSpec,
    MLModelResult,
    MLModelSpec,
    Result,
    ScoreThreshold,
    Source,
    StagedQuery,
)
from openaml.ml.data import (
    FAST_PATHS,
    ByteRange,
    DataError,
    DataObject,
    IngestReport,
    ParseOptions,
    PartialIngest,
    Partition,
    RangeCount,
    Target,
    count_partition,
    ingest,
    ingest_many,
    ingest_partition,
    merge_partitions,
    plan_partitions,
    read_materialized,
    rejected_lines,
)
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.errors import InputError
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.metrics.evaluation import EvaluationScores, ScoredRecords, finish_evaluation, score_records
from openaml.ml.model import Model
from openaml.ml.prediction import batch_predict
from openaml.ml.prediction.batch import ResultWriter, write_empty_result
from openaml.ml.prediction.scoring import Consumer, ScoredSlice, score_alone, score_pass
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import Schema
from openaml.ml.training import Cancelled, train_model
from openaml.ml.training.parallel import PassSum, first_state, train_pass
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.sgd import MEMORY_BYTES, LinearState
from openaml.ml.training.stop import ShouldStop, check
from openaml.ml.training.train import TrainingSetup, prepare_training
from openaml.storage import Artifacts, ObjectStore, StorageError, folder_uri, join_uri
from openaml.storage.databases import (
    DatabaseConfig,
    NoRowsError,
    QueryStopped,
    StagingError,
    stage_query,
    staged_parts,
)
from openaml.storage.objects import CommittingWriter
from openaml.store import EntityKind, EntityRecord, Status, Store
from openaml.store.leases import Leases

INGEST_FILE = "ingest.json"
REPORT_FILE = "report.json"
LOG_FILE = "job.log"
# the JSON report each kind's job stores (the /reports route, the console)
REPORT_FILES = {EntityKind.DATASOURCE: INGEST_FILE, EntityKind.EVALUATION: REPORT_FILE}
COPY_BYTES = 1 << 20  # a batch prediction's pieces are copied into its results this much at a time
CANCEL_CHECK_SECONDS = 0.2  # Job.cancelled() reads the store: asked at most this often
PROGRESS_SECONDS = 0.5  # a training's progress is stored at most this often, and at its end
SCORING_KINDS = (EntityKind.EVALUATION, EntityKind.BATCH_PREDICTION)


class Tasks:
    """The four job kinds, plus model loading for real-time endpoints."""

    def __init__(
        self, store: Store, objects: ObjectStore, artifacts: Artifacts, databases: DatabaseConfig,
        training_memory: int = MEMORY_BYTES, execution: Execution = ONE_THREAD,
        parsing: ParseOptions = FAST_PATHS, share_work: bool = True,
    ) -> None:
        self.store, self.objects, self.artifacts, self.databases = store, objects, artifacts, databases
        self.training_memory = training_memory  # bytes of records and features a training keeps
        self.execution = execution  # of each job
        self.parsing = parsing  # of each datasource's CSV
        # None: each datasource reads alone, each evaluation and batch prediction scores alone
        self.shared_reads: SharedWork[Target, IngestReport] | None = SharedWork() if share_work else None
        # an evaluation and a batch prediction that may score together start within moments of
        # each other (see _score): the first waits for the other, but not for more
        self.shared_scoring: SharedWork[_UntilDeleted, None] | None = (
            SharedWork(min_gather_seconds=0.0) if share_work else None)
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

    def build_datasource(self, job: Job) -> DataSourceResult:
        record = job.record
        spec, objects = self._located(job)
        with self.artifacts.open_write(record.kind.value, record.id, DATA_FILE) as sink:
            if spec.staged or self.shared_reads is None:  # staged for this job alone, or no sharing
                stop, readers = _Deleted([job]), 1
                report = ingest(objects, spec.schema, spec.rearrangement, spec.compute_statistics, sink,
                                lambda records: check(stop), job.log_line, self.execution, self.parsing)
            else:
                key = read_key(spec)
                target = Target(spec.rearrangement, spec.compute_statistics, sink)
                self._reading[id(target)] = job
                try:
                    report, readers = self.shared_reads.join(
                        key, record.id, target, lambda: self.datasource_peers(key, job),
                        lambda targets: self._read_for(objects, spec.schema, targets), job.idle)
                finally:
                    del self._reading[id(target)]
        return self._reported(job, report, readers)

    def build_datasources(self, jobs: Sequence[Job]) -> list[DataSourceResult | Exception]:
        """Datasource jobs of the same data and schema, none staged, read together (a Dask
        worker's share of a group its front end gathered): each one's result or error."""
        located = [self._located(job) for job in jobs]
        with ExitStack() as stack:
            sinks = [stack.enter_context(self.artifacts.open_write(j.record.kind.value, j.record.id, DATA_FILE))
                     for j in jobs]
            targets = [Target(spec.rearrangement, spec.compute_statistics, sink)
                       for (spec, _), sink in zip(located, sinks, strict=True)]
            for target, job in zip(targets, jobs, strict=True):
                self._reading[id(target)] = job
            try:
                reports = self._read_for(located[0][1], located[0][0].schema, targets)
            except Cancelled:
                reports = [InputError(f"{j.record.kind.value} {j.record.id} was deleted") for j in jobs]
            finally:
                for target in targets:
                    del self._reading[id(target)]
            for sink, report in zip(sinks, reports, strict=True):
                if isinstance(report, Exception):
                    cast(CommittingWriter, sink).abort()
        return [report if isinstance(report, Exception) else self._reported(job, report, len(jobs))
                for job, report in zip(jobs, reports, strict=True)]

    def _located(self, job: Job) -> tuple[DataSourceSpec, list[DataObject]]:
        """The job's spec and its data's objects (a staged query runs first)."""
        spec = read_spec(job.record, DataSourceSpec)
        if spec.query is not None:
            self._stage(job, spec.source, spec.query)
        objects = self._objects(spec)
        job.log_line(f"reading {len(objects)} object(s) from {spec.data_uri}")
        return spec, objects

    def _objects(self, spec: DataSourceSpec) -> list[DataObject]:
        """The objects at the spec's data location (or StorageError). A staged query's are its
        parts alone (`staged_parts`), each keyed by its name: a random split hashes the key
        (data.md §5), and the full key holds the datasource's id, so a split and its
        complement of one query drew different positions, and shared records."""
        if spec.staged:
            parts = staged_parts(self.objects, spec.data_uri)
            if not parts:
                raise StorageError(f"{spec.data_uri}: no staged part of the query (part-00000.csv) is there")
            return [self._object(o.uri, o.key.rpartition("/")[2], o.size) for o in parts]
        return [self._object(o.uri, o.key, o.size) for o in self.objects.resolve_data_location(spec.data_uri)]

    # -- datasources in partitions (cluster.py runs each step as Dask tasks) ------------------

    def plan_partitions(self, job: Job, partition_bytes: int) -> tuple[Located, list[ByteRange]]:
        """The job's data objects, listed once for every step of the read, and the byte ranges
        they are read in, about `partition_bytes` each."""
        objects = self._objects(read_spec(job.record, DataSourceSpec))
        return [(o.uri, o.key, o.size) for o in objects], plan_partitions(objects, partition_bytes)

    def count_partition(self, job: Job, planned: tuple[str, str, int], part: ByteRange) -> RangeCount:
        """The records and lines of one range of the job's data (`planned`: its object, as
        the plan listed it)."""
        spec = read_spec(job.record, DataSourceSpec)
        return count_partition(self._unchanged(planned, part.file_index), part, spec.schema)

    def ingest_partition(self, jobs: Sequence[Job | None], planned: tuple[str, str, int], partition: Partition,
                         total: int, index: int) -> list[PartialIngest | None]:
        """Read one partition of the jobs' data (the same data and schema) for all of them
        (None: a job whose entity is gone): each job's records of it go to its part `index`;
        what each found, to merge."""
        live = [job for job in jobs if job is not None]
        if not live:
            raise InputError("Every datasource of this read was deleted")
        specs = [read_spec(job.record, DataSourceSpec) for job in live]
        objects, stop = self._unchanged(planned, partition.range.file_index), _Deleted(live)
        with ExitStack() as stack:
            sinks = [stack.enter_context(self.artifacts.open_write(j.record.kind.value, j.record.id,
                                                                   part_file(index)))
                     for j in live]
            targets = [Target(spec.rearrangement, spec.compute_statistics, sink)
                       for spec, sink in zip(specs, sinks, strict=True)]
            try:
                found = iter(ingest_partition(objects, partition, total, specs[0].schema, targets,
                                              lambda records: check(stop), self.execution, self.parsing))
            except Cancelled:
                raise InputError(f"every datasource reading {specs[0].data_uri} was deleted") from None
        return [None if job is None else next(found) for job in jobs]

    def finish_partitions(self, jobs: Sequence[Job | None], located: Located,
                          merged: Sequence[PartialIngest | None], parts: int) -> list[DataSourceResult | Exception]:
        """Each job's report from what its partitions found, merged in order, its `parts`
        data files named in PARTS_FILE (removed when the data fail it); each one's result
        or error."""
        objects = self._planned(located)
        results: list[DataSourceResult | Exception] = []
        names = [part_file(k) for k in range(parts)]
        for job, found in zip(jobs, merged, strict=True):
            if job is None or found is None:
                results.append(InputError("The datasource was deleted"))
                continue
            spec = read_spec(job.record, DataSourceSpec)
            report = merge_partitions(objects, spec.schema, [found])
            job.log_line(f"read {len(objects)} object(s) from {spec.data_uri} in {parts} partitions")
            for line in rejected_lines(spec.schema, [found]):
                job.log_line(line)
            if isinstance(report, Exception):
                self.remove_parts(job, parts)
                results.append(report)
            else:
                results.append(self._reported(job, report, len(jobs), names))
        return results

    def remove_parts(self, job: Job, parts: int) -> None:
        """Delete the part files a datasource read in partitions wrote before it failed."""
        for k in range(parts):
            self.artifacts.remove(job.record.kind.value, job.record.id, part_file(k))

    def _planned(self, located: Located) -> list[DataObject]:
        """The objects a read planned."""
        return [self._object(uri, key, size) for uri, key, size in located]

    def _unchanged(self, planned: tuple[str, str, int], file_index: int) -> dict[int, DataObject]:
        """The object file `file_index` of a read, as the plan listed it, verified unchanged
        (its size): every step reads the object the plan cut, or fails."""
        obj = self._object(*planned)
        now = self.objects.stat(obj.uri)
        if now is None or now.size != obj.size:
            raise DataError(f"{obj.uri} changed while the datasource was read (it had {obj.size:,} bytes, it has "
                            f"{'none: it is gone' if now is None else f'{now.size:,}'}); create it again")
        return {file_index: obj}

    def _object(self, uri: str, key: str, size: int) -> DataObject:
        return DataObject(uri=uri, key=key, size=size, open=partial(self.objects.open_read, uri),
                          open_at=partial(self.objects.open_read, uri))

    def _reported(self, job: Job, report: IngestReport, readers: int,
                  parts: Sequence[str] = (DATA_FILE,)) -> DataSourceResult:
        """Store the job's ingest report and the names of its data files, and log it; its result."""
        if readers > 1:
            job.log_line(f"the data were read once for {readers} datasources")
        kind, entity_id = job.record.kind.value, job.record.id
        self.artifacts.write_json(kind, entity_id, PARTS_FILE, {"parts": list(parts)})
        self.artifacts.write_json(kind, entity_id, INGEST_FILE, report.to_dict())
        if job.cancelled():  # deleted while its read went on for others: its copy, written after, goes
            release_data(self.store, self.artifacts, entity_id)
        job.log_line(
            f"{report.records_read} records read, {report.rejected_records} rejected, "
            f"{report.selected_records} selected; blocks read by path: "
            + ", ".join(f"{path} {count}" for path, count in report.blocks_by_path.items() if count)
        )
        return DataSourceResult(report.data_size_in_bytes, report.number_of_files, tuple(report.files))

    def _read_for(self, objects: list[DataObject], schema: Schema,
                  targets: Sequence[Target]) -> list[IngestReport | Exception]:
        """One read of the data for the jobs of `targets`; it stops once all are deleted."""
        jobs = [self._reading[id(t)] for t in targets]
        stop = _Deleted(jobs)

        def log_rejected(line: str) -> None:
            for job in jobs:
                job.log_line(line)

        return [*ingest_many(objects, schema, targets, lambda records: check(stop), log_rejected,
                             self.execution, self.parsing)]

    def datasource_peers(self, key: tuple[str, str], job: Job) -> set[str]:
        """Ids of the other datasources that read the same data with the same schema as `job`
        and run beside it, or may start now (`_running_with`)."""
        return {r.id for r in self._running_with(EntityKind.DATASOURCE, job)
                if r.id != job.record.id and not (spec := read_spec(r, DataSourceSpec)).staged
                and read_key(spec) == key}

    def scoring_peers(self, key: tuple[str, str], own: str, job: Job) -> set[str]:
        """Names (`_work_name`) of the other evaluations and batch predictions of the same model
        and datasource (`key`) as `job` (named `own`) that run beside it, or may start now
        (`_running_with`)."""
        return {_work_name(r) for kind in SCORING_KINDS for r in self._running_with(kind, job)
                if _work_name(r) != own and (r.model_id, r.datasource_id) == key}

    def _running_with(self, kind: EntityKind, job: Job) -> Iterator[EntityRecord]:
        """The jobs of `kind` that run on the front end of `job` (on any without one), and,
        while its engine may start another job (`Job.room`), those waiting to start (here or on
        another front end; a leader may wait its whole gathering time for one that never
        joins). While every worker is taken none can start: 200 datasources of one file took
        3 times as long as 200 files, each read waiting its gathering time for them."""
        here = Leases(self.store).held(job.owner, kind) if job.owner is not None else None
        yield from (r for r in self.store.with_status((kind,), Status.INPROGRESS) if here is None or r.id in here)
        if job.room():
            yield from self.store.with_status((kind,), Status.PENDING)

    def _stage(self, job: Job, source: Source, query: StagedQuery) -> None:
        url = self.databases.lookup(source.value, query.identifier)
        if url is None:
            raise InputError(f"No database connection is configured for '{query.identifier}'")
        try:
            uris = stage_query(
                url, query.database_name, query.user_name, read_secret(job.record) or "", query.query,
                self.objects, query.staging_uri, job.record.id, should_stop=_Deleted([job]),
            )
        except QueryStopped:
            raise Cancelled from None
        except NoRowsError:
            raise InputError(f"The query on '{query.identifier}' returned no rows: a datasource needs "
                             "at least one record") from None
        except StagingError as exc:
            raise InputError(f"The query on '{query.identifier}' failed: {exc}") from None
        job.log_line(f"staged the query result as {len(uris)} CSV file(s)")

    # -- models -----------------------------------------------------------------------------

    def train_model(self, job: Job) -> MLModelResult:
        spec, statistics, recipe = self._training(job)
        stop = _Deleted([job])
        with ProgressRecorder(job) as progress:
            model = train_model(spec.model_type, spec.schema, recipe, spec.parameters, statistics,
                                self._batches(spec.datasource_id, stop), progress,
                                self.training_memory, stop, self._training_threads(job), job.log_line)
        return self._save_model(job, model)

    def _training(self, job: Job) -> tuple[MLModelSpec, DatasetStatistics | None, str]:
        """The training's spec, its datasource's statistics and the recipe (the default one
        when none was given)."""
        spec = read_spec(job.record, MLModelSpec)
        stored = self.artifacts.read_json(EntityKind.DATASOURCE.value, spec.datasource_id,
                                          INGEST_FILE).get("statistics")
        statistics = DatasetStatistics.from_json(stored) if stored else None
        return spec, statistics, spec.recipe or default_recipe(spec.schema, statistics)

    def _save_model(self, job: Job, model: Model) -> MLModelResult:
        with self.artifacts.open_write(job.record.kind.value, job.record.id, MODEL_FILE) as out:
            model.save(out)
        return MLModelResult(model.size_in_bytes, model.recipe)

    # -- data-parallel training (cluster.py runs each pass on the workers) ------------------

    def prepare_parallel_training(self, job: Job) -> tuple[TrainingSetup, LinearState, int] | None:
        """The fitted setup, the starting state and the number of partitions of a training
        whose datasource was read in partitions; None when it has one, or when its data look
        small enough for a single training to cross-validate them (parallel.first_state), or
        when it trains boosted trees or with SAGA."""
        spec, statistics, recipe = self._training(job)
        parts = self._parts(spec.datasource_id)
        if len(parts) < 2 or spec.parameters.trees is not None or spec.parameters.optimizer == "saga":
            return None  # boosted trees and SAGA (its records in memory): in one task
        stop = _Deleted([job])
        setup = prepare_training(spec.model_type, spec.schema, recipe, spec.parameters, statistics,
                                 self._batches(spec.datasource_id, stop), stop, self.execution)
        start = first_state(setup, self._part_sources(spec.datasource_id, range(len(parts)), stop),
                            self.training_memory, self.execution)
        return None if start is None else (setup, start, len(parts))

    def train_parallel_pass(self, job: Job, setup: TrainingSetup, state: LinearState, pass_number: int,
                            averaging: bool, partitions: Sequence[int]) -> PassSum:
        """One pass of a data-parallel training over some partitions of its datasource, as a
        sum to add to the other workers'."""
        spec = read_spec(job.record, MLModelSpec)
        stop = _Deleted([job])
        return PassSum.of(train_pass(setup, state, pass_number, averaging,
                                     self._part_sources(spec.datasource_id, partitions, stop),
                                     self.training_memory, stop, self._training_threads(job)))

    def save_parallel_model(self, job: Job, setup: TrainingSetup, state: LinearState) -> MLModelResult:
        """Store the model of a data-parallel training's final weights."""
        return self._save_model(job, setup.model(state))

    def load_scorer(self, model_id: str) -> tuple[Scorer, float]:
        return EndpointScorer(self.models.get(model_id)), self._threshold(model_id)

    def _threshold(self, model_id: str) -> float:
        """The model's ScoreThreshold now (0.5 when it is gone)."""
        record = self.store.get(EntityKind.MLMODEL, model_id)
        return (read_threshold(record) if record else ScoreThreshold()).value

    # -- evaluations and batch predictions --------------------------------------------------

    def evaluate(self, job: Job) -> EvaluationResult:
        spec = read_spec(job.record, EvaluationSpec)
        loaded = self.models.get(spec.model_id)  # held by both steps
        scores = EvaluationScores(loaded.model)
        self._score(job, loaded.model, spec.model_id, self._scored_datasource(loaded.model, spec.datasource_id).id,
                    scores)
        return self.finish_evaluation(job, [scores.scored()], loaded.model)

    def score_evaluation(self, job: Job, partition: int | None = None) -> ScoredRecords:
        """The evaluation's scores of its datasource's records (of one partition of them)."""
        spec = read_spec(job.record, EvaluationSpec)
        loaded = self.models.get(spec.model_id)  # held while the job runs: shared
        source = self._scored_datasource(loaded.model, spec.datasource_id)
        stop = _Deleted([job])
        batches = (self._batches(source.id, stop)() if partition is None
                   else self._part_sources(source.id, [partition], stop)[0][1]())
        return score_records(loaded.model, batches, stop, self._scoring(job))

    def finish_evaluation(self, job: Job, parts: Sequence[ScoredRecords],
                          model: Model | None = None) -> EvaluationResult:
        """The evaluation's metric and report from the scores of its records, in order."""
        record = job.record
        spec = read_spec(record, EvaluationSpec)
        source = self._datasource(spec.datasource_id)
        model = model if model is not None else self.models.get(spec.model_id).model
        source_spec = read_spec(source, DataSourceSpec)
        result = finish_evaluation(model, source_spec.schema, parts,
                                   self._training_data(spec.model_id, source.id, source_spec),
                                   self._threshold(spec.model_id))
        self.artifacts.write_json(record.kind.value, record.id, REPORT_FILE, result.report.to_json())
        for alert in result.report.alerts:  # evaluation-and-prediction.md §1.4: in the log too
            job.log_line(f"alert: {alert}")
        return EvaluationResult(result.metrics)

    def _training_data(self, model_id: str, source_id: str, source_spec: DataSourceSpec) -> bool:
        """Whether a datasource holds the model's training records: it is the training
        datasource, or reads the same data with the same split."""
        model = self.store.get(EntityKind.MLMODEL, model_id)
        trained_on = read_spec(model, MLModelSpec).datasource_id if model is not None else None
        if trained_on is None or trained_on == source_id:
            return trained_on == source_id
        training = self.store.get(EntityKind.DATASOURCE, trained_on)
        if training is None:
            return False
        given = read_spec(training, DataSourceSpec)
        return (given.data_uri, given.rearrangement) == (source_spec.data_uri, source_spec.rearrangement)

    def _training_threads(self, job: Job) -> Execution:
        """The threads of a training (or of a pass of one on a Dask worker): its SGD steps stay
        on one thread while other jobs (or a worker's other tasks) run beside it."""
        return replace(self.execution, crowded=lambda: job.others() > 0)

    def _scoring(self, job: Job) -> Execution:
        """The threads of an evaluation's or batch prediction's scoring: one when other jobs
        run beside it (an evaluation and a batch prediction of one model start together): two
        jobs of two threads each on two cores scored the tabular benchmark's 600,000 evaluation
        records in 1.45-1.53 s, of one thread each in 1.26-1.40 s."""
        return ONE_THREAD if job.others() else self.execution

    def _score(self, job: Job, model: Model, model_id: str, source_id: str, consumer: Consumer) -> None:
        """Score the datasource's records for `consumer` (an evaluation's or a batch
        prediction's), in one pass with the other evaluations and batch predictions of the
        same model and datasource that run now (they start together once the model is
        trained): the 600,000 records of the tabular benchmark took 1.04-1.34 s for each job
        scoring on its own."""
        if self.shared_scoring is None:
            stop = _Deleted([job])
            score_alone(model, self._batches(source_id, stop)(), consumer, stop, self._scoring(job))
            return
        key, name = (model_id, source_id), _work_name(job.record)
        _, scorers = self.shared_scoring.join(
            key, name, _UntilDeleted(consumer, job), lambda: self.scoring_peers(key, name, job),
            lambda consumers: self._score_for(model, source_id, consumers), job.idle)
        if scorers > 1:
            job.log_line(f"the records were scored once for {scorers} evaluations and batch predictions "
                         "of this model and datasource")

    def _score_for(self, model: Model, source_id: str,
                   consumers: Sequence[_UntilDeleted]) -> list[None | Exception]:
        """One scoring pass for the jobs of `consumers`; each one leaves it, and its job ends,
        once it fails or its job is deleted (SharedWork.settle), and the pass stops once all
        have."""
        shared = self.shared_scoring
        assert shared is not None

        def gone() -> bool:
            return all(c.gone for c in consumers)

        return score_pass(model, self._batches(source_id, gone)(), consumers, gone, self._scoring(consumers[0].job),
                          lambda k, error: shared.settle(_work_name(consumers[k].job.record), error))

    def source_partitions(self, job: Job) -> int:
        """How many partitions the data of an evaluation's or batch prediction's datasource has."""
        spec: EvaluationSpec | BatchPredictionSpec = (
            read_spec(job.record, EvaluationSpec) if job.record.kind is EntityKind.EVALUATION
            else read_spec(job.record, BatchPredictionSpec))
        return len(self._parts(self._datasource(spec.datasource_id).id))

    def batch_predict(self, job: Job) -> BatchPredictionResult:
        batch = self._batch_prediction(job)
        with _Outputs(self.objects, batch.results.__getitem__) as outputs:
            writer = ResultWriter(batch.model, batch.schema, batch.threshold, outputs.open)
            try:
                self._score(job, batch.model, batch.model_id, batch.source_id, writer)
            finally:
                writer.close()
            for index in range(len(batch.files)):
                if index not in outputs.writers:  # an input file without records: header only
                    write_empty_result(batch.model, batch.schema, outputs.open(index))
        return self._batch_predicted(job, batch, writer.total, writer.invalid)

    def predict_partition(self, job: Job, partition: int) -> tuple[int, int, list[int]]:
        """A batch prediction's result lines of one partition of its data, without header, as
        a piece per input file (pieces_uri); (records, rejected records, those files)."""
        batch = self._batch_prediction(job)
        with _Outputs(self.objects, partial(_piece_uri, batch.base, job.record.id, partition)) as outputs:
            stop = _Deleted([job])
            records = self._part_sources(batch.source_id, [partition], stop)[0][1]()
            total, invalid = batch_predict(batch.model, records, batch.schema, batch.threshold, outputs.open,
                                           stop, self._scoring(job), with_header=False)
        return total, invalid, sorted(outputs.writers)

    def finish_batch_prediction(self, job: Job, pieces: Sequence[tuple[int, int, list[int]]]
                                ) -> BatchPredictionResult:
        """Each input file's result: its header, then the pieces of its partitions in order
        (concatenated gzip members: decompressed, what one task writes), the pieces removed.
        A batch prediction deleted meanwhile writes no result and no manifest (api-behavior.md
        §2.18: they were written after its deletion, the pieces left to its clean-up)."""
        batch = self._batch_prediction(job)
        stop = _Deleted([job])
        with _Outputs(self.objects, batch.results.__getitem__) as outputs:
            for index in range(len(batch.results)):
                check(stop)
                out = outputs.open(index)
                write_empty_result(batch.model, batch.schema, out)
                for partition, (_, _, files) in enumerate(pieces):
                    if index in files:
                        with self.objects.open_read(_piece_uri(batch.base, job.record.id, partition, index)) as piece:
                            shutil.copyfileobj(piece, out, COPY_BYTES)
            if job.cancelled():  # asked of the store itself before anything is committed
                raise Cancelled
        done = self._batch_predicted(job, batch, sum(p[0] for p in pieces), sum(p[1] for p in pieces))
        self.remove_batch_pieces(job)
        return done

    def remove_batch_pieces(self, job: Job) -> None:
        """Delete whatever pieces a batch prediction by partition left (after its results,
        or after a failed or stopped run)."""
        base = folder_uri(read_spec(job.record, BatchPredictionSpec).output_uri)
        for piece in self.objects.list(_piece_uri(base, job.record.id, 0, 0).rsplit("/", 1)[0] + "/"):
            self.objects.delete(piece.uri)

    def _batch_prediction(self, job: Job) -> _BatchPrediction:
        """What a batch prediction reads and writes."""
        spec = read_spec(job.record, BatchPredictionSpec)
        threshold = self._threshold(spec.model_id)
        model = self.models.get(spec.model_id).model  # held while the job runs: shared
        source = self._scored_datasource(model, spec.datasource_id)
        read = read_result(source, DataSourceResult)
        files = list(read.files) if read else []
        base, source_spec = folder_uri(spec.output_uri), read_spec(source, DataSourceSpec)
        return _BatchPrediction(model, spec.model_id, threshold, source.id, source_spec.schema,
                                files, base, _result_uris(base, job.record.id, files, source_spec.data_uri))

    def _batch_predicted(self, job: Job, batch: _BatchPrediction, total: int, invalid: int) -> BatchPredictionResult:
        """Write the manifest of a batch prediction whose results are written; its result."""
        manifest = dict(zip(batch.files, batch.results, strict=True))
        self.objects.write_bytes(join_uri(batch.base, f"batch-prediction/{job.record.id}.manifest"),
                                 json.dumps(manifest, separators=(",", ":")).encode())
        return BatchPredictionResult(total, invalid)

    # -- helpers ----------------------------------------------------------------------------

    def _scored_datasource(self, model: Model, source_id: str) -> EntityRecord:
        """The datasource an evaluation or a batch prediction scores; InputError when its schema
        has none of the attributes the model reads: every record would score as if all its
        values were missing (a batch prediction COMPLETED with the model's bias for every
        record, found by an outside test of the console)."""
        source = self._datasource(source_id)
        reads = model.pipeline.attributes
        if reads and not reads & set(read_spec(source, DataSourceSpec).schema.names):
            listed = ", ".join(sorted(reads)[:5]) + (", ..." if len(reads) > 5 else "")
            raise InputError(f"DataSource {source_id} has none of the attributes the model reads ({listed}): "
                             "its records would all score as if every value were missing; use a datasource "
                             "of the training data's schema (its target may be left out)")
        return source

    def _datasource(self, source_id: str) -> EntityRecord:
        source = self.store.get(EntityKind.DATASOURCE, source_id)
        if source is None:
            raise InputError(f"DataSource {source_id} does not exist")
        return source

    def _batches(self, source_id: str, should_stop: ShouldStop) -> Callable[[], Iterator[pa.RecordBatch]]:
        """The datasource's records; reading raises Cancelled between batches once should_stop
        answers True."""
        names = self._parts(source_id)
        return lambda: (batch for name in names for batch in self._read_part(source_id, name, should_stop))

    def _part_sources(self, source_id: str, partitions: Sequence[int],
                      should_stop: ShouldStop) -> list[tuple[int, Callable[[], Iterator[pa.RecordBatch]]]]:
        """(number, its records) of some partitions of a datasource read in partitions."""
        names = self._parts(source_id)
        return [(k, partial(self._read_part, source_id, names[k], should_stop)) for k in partitions]

    def _parts(self, source_id: str) -> list[str]:
        return data_file_names(self.artifacts, source_id)

    def _read_part(self, source_id: str, name: str, should_stop: ShouldStop) -> Iterator[pa.RecordBatch]:
        source = self.artifacts.source(EntityKind.DATASOURCE.value, source_id, name)
        with nullcontext(source) if isinstance(source, Path) else source:  # a stream closes when left
            for batch in read_materialized(source):
                check(should_stop)
                yield batch


class ProgressRecorder:
    """A training's progress on its job: each pass logged, its state stored (Job.progress)
    at once the first time (a cross-validation's first pass, or else training's), then at
    most every PROGRESS_SECONDS, and the last one when the `with` block ends, however it
    ends (a failed training shows its last pass too). A store write took 1-1.5 ms beside the
    job's work: a pass each was a sixth of a 5,000-record training's time in the service."""

    def __init__(self, job: Job, clock: Callable[[], float] = time.monotonic) -> None:
        self.job, self.clock = job, clock
        self.unstored: TrainingProgress | None = None
        self.next_store = 0.0

    def __call__(self, state: TrainingProgress) -> None:
        self.job.log_line(state.line())
        self.unstored = state
        if self.clock() >= self.next_store:
            self.flush()

    def flush(self) -> None:
        """Store the latest state, unless it is stored already."""
        if self.unstored is not None:
            self.job.progress(progress_info(self.unstored))
            self.unstored = None
            self.next_store = self.clock() + PROGRESS_SECONDS

    def __enter__(self) -> ProgressRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        """Store the last state; when the training failed, a store that fails too hides
        nothing of its error (the job fails with the training's)."""
        if error is None:
            self.flush()
            return
        with suppress(Exception):
            self.flush()


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


class _UntilDeleted:
    """A scoring consumer that leaves the pass (Cancelled) once its job is deleted; `gone`
    once it has seen that."""

    def __init__(self, consumer: Consumer, job: Job) -> None:
        self.consumer, self.job, self.deleted = consumer, job, _Deleted([job])
        self.gone = False

    def prepare(self, scored: ScoredSlice) -> Any:
        return self.consumer.prepare(scored)

    def take(self, prepared: Any) -> None:
        self.gone = self.gone or self.deleted()
        check(lambda: self.gone)
        self.consumer.take(prepared)


def _work_name(record: EntityRecord) -> str:
    """A job's name among the jobs that share work (evaluations and batch predictions may
    share ids)."""
    return f"{record.kind.value}:{record.id}"


def _ended_by_deletion(task: Task) -> Task:
    """The task, whose Cancelled (its entity was deleted) ends the job."""

    def run(job: Job) -> Result:
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


Located = list[tuple[str, str, int]]  # (uri, key, size) of the objects a read in partitions planned


def read_key(spec: DataSourceSpec) -> tuple[str, str]:
    """What datasources that may share one read of their data have in common."""
    return spec.data_uri, spec.schema_json


@dataclass(frozen=True)
class _BatchPrediction:
    model: Model
    model_id: str
    threshold: float
    source_id: str
    schema: Schema              # the datasource's
    files: list[str]            # its input files
    base: str                   # the output folder
    results: list[str]          # the result object of each input file


def _piece_uri(base: str, prediction_id: str, partition: int, file_index: int) -> str:
    """Where a partition's result lines for one input file wait to be concatenated."""
    return join_uri(base, f"batch-prediction/.openaml-pieces/{prediction_id}/{partition:05d}-{file_index}.gz")


class _Outputs:
    """Objects written together (`open(index)` -> a writer for the object `uri_of(index)`,
    whose closing is left to this): all committed when the `with` block ends cleanly, all
    aborted otherwise (aborting one already committed does nothing)."""

    def __init__(self, objects: ObjectStore, uri_of: Callable[[int], str]) -> None:
        self.objects, self.uri_of = objects, uri_of
        self.writers: dict[int, BinaryIO] = {}

    def open(self, index: int) -> BinaryIO:
        self.writers[index] = self.objects.open_write(self.uri_of(index))
        return cast(BinaryIO, _KeepOpen(self.writers[index]))

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            if exc_type is None:
                for stream in self.writers.values():
                    stream.close()  # commits the object
                return
        except BaseException:
            self._abort()
            raise
        self._abort()

    def _abort(self) -> None:
        for stream in self.writers.values():
            getattr(stream, "abort", stream.close)()


def _result_uris(base: str, prediction_id: str, files: list[str], location: str) -> list[str]:
    """Result object per input file (evaluation-and-prediction.md §2.2): named by the file's
    last segment; a later file of the same last segment by its key relative to the datasource's
    `location` (a folder), "/" replaced by "_", and should that be another file's name too
    (x/a.csv beside x_a.csv), with "-2", "-3"... before its extensions: the names the spec
    gives stay exact, and no two files share a result (one file's records were lost so)."""
    folder = folder_uri(location)
    named: list[tuple[str, bool]] = []  # (name, renamed)
    segments: set[str] = set()
    for uri in files:
        segment = uri.rstrip("/").rsplit("/", 1)[-1]
        if segment in segments:
            relative = uri[len(folder):] if uri.startswith(folder) else uri.split("://", 1)[1].split("/", 1)[1]
            named.append((relative.replace("/", "_"), True))
        else:
            segments.add(segment)
            named.append((segment, False))
    taken = {name for name, renamed in named if not renamed}
    uris = []
    for name, renamed in named:
        unique, copy = name, 1
        stem, dot, extensions = name.partition(".")
        while renamed and unique in taken:
            copy += 1
            unique = f"{stem}-{copy}{dot}{extensions}"
        taken.add(unique)
        uris.append(join_uri(base, f"batch-prediction/result/{prediction_id}-{unique}.gz"))
    return uris
