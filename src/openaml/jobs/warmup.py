"""Warm-up: run every job kind once on a few in-memory rows when the server starts.

The first ingestion, training and prediction in a process pay one-time costs (lazy imports
inside pyarrow and NumPy, kernel set-up) of about a second; doing them at start-up, in the
background, keeps that out of the first user's jobs.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import Counter
from typing import IO

import pyarrow as pa

from openaml.jobs.priority import run_below_requests
from openaml.ml import evaluate_model, parse_parameters, predict_record, train_model
from openaml.ml.data import DataObject, IngestReport, distinct_sketch, ingest, parse_rearrangement, read_materialized
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.model_type import ModelType
from openaml.ml.prediction import RecordScorer, batch_predict
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.training.kernel import one_thread_reason
from openaml.ml.training.sgd import compile_steps

log = logging.getLogger(__name__)

SCHEMA = (
    '{"targetAttributeName":"y","dataFileContainsHeader":true,"attributes":['
    '{"attributeName":"n","attributeType":"NUMERIC"},{"attributeName":"c","attributeType":"CATEGORICAL"},'
    '{"attributeName":"b","attributeType":"BINARY"},{"attributeName":"t","attributeType":"TEXT"},'
    '{"attributeName":"y","attributeType":"BINARY"}]}'
)


def warm_up(done: threading.Event | None = None, execution: Execution = ONE_THREAD,
            stop: threading.Event | None = None) -> dict[str, int] | None:
    """Ingest tiny data sets by every CSV path, train, evaluate and predict a BINARY model and
    a MULTICLASS one of categories alone, as the jobs will (with their `execution`), then set
    `done`. The blocks each CSV path read; None when it failed (only logged: a failed
    warm-up costs speed alone) or was stopped (`stop`, looked at between its steps: a server
    that closes waits for the step under way, not for the rest)."""
    run_below_requests()  # the warm-up is a job too (and starts the compiled code's threads)
    paths: Counter[str] = Counter()
    stopping = stop if stop is not None else threading.Event()

    def step() -> None:
        if stopping.is_set():
            raise _Stopped

    try:
        schema = parse_schema(SCHEMA)
        # the compiled paths for integer fields and the record count (every column an integer)
        integers = "".join(f"{i},{i % 3},{i % 2},{i % 4},{int(i > 10)}\n" for i in range(24))
        pixels = parse_schema(SCHEMA.replace('"TEXT"', '"CATEGORICAL"').replace(
            '"n","attributeType":"NUMERIC"', '"n","attributeType":"CATEGORICAL"'))
        counted, seen = _ingest(pixels, integers, '{"splitting": {"percentBegin": 0, "percentEnd": 70}}',
                                execution, paths)
        step()
        _, unseen = _ingest(pixels, integers, '{"splitting": {"percentBegin": 70, "percentEnd": 100}}',
                            execution, paths)
        # categories alone (MNIST's pixels), MULTICLASS, scored on rows with unseen values
        step()
        _model_jobs(ModelType.MULTICLASS, pixels, '{"outputs": ["ALL_CATEGORICAL"]}', counted, seen, unseen,
                    execution)
        # Arrow's fast path (no spaces or quotes: integer columns) with a sequential split,
        # then the general one (a quote inside a value), then Arrow's with stripping (text
        # with spaces and a quoted comma), whose copy the other jobs read
        plain = "".join(f"{i},{'xyz'[i % 3]},{i % 2},word{i % 4},{int(i > 10)}\n" for i in range(24))
        step()
        _ingest(schema, plain, '{"splitting": {"percentBegin": 0, "percentEnd": 70}}', execution, paths)
        _ingest(schema, plain.replace("word1", 'a"b'), None, execution, paths)
        mixed = "".join(f'{i},{"xyz"[i % 3]},{i % 2},"word{i % 4}, more",{int(i > 10)}\n' for i in range(24))
        report, stored = _ingest(schema, mixed, None, execution, paths)
        step()
        _model_jobs(ModelType.BINARY, schema, default_recipe(schema, report.statistics), report, stored, stored,
                    execution)
        step()
        compile_steps()
        distinct_sketch.string_hashes(pa.array(["a"]))  # a category or text past 100,000 distinct values
        reason = one_thread_reason()
        if execution.parallel and reason is not None:
            log.warning("SGD steps run on one thread: %s", reason)
        # SAGA's kernels (openaml.optimizer=saga; one compilation serves every model type)
        step()
        train_model(ModelType.BINARY, schema, '{"outputs": ["ALL_CATEGORICAL"]}',
                    parse_parameters({"openaml.optimizer": "saga"}, ModelType.BINARY), report.statistics,
                    lambda: read_materialized(io.BytesIO(stored)))
    except _Stopped:
        return None
    except Exception:  # noqa: BLE001 - a failed warm-up only costs speed
        log.exception("warm-up failed")
        return None
    finally:
        if done is not None:
            done.set()
    return dict(paths)


class _Stopped(Exception):
    """The server closes: the warm-up ends before its next step."""


def _model_jobs(model_type: ModelType, schema: Schema, recipe: str, report: IngestReport, training: bytes,
                scored: bytes, execution: Execution) -> None:
    """Train a model on the `training` records, evaluate it on the `scored` ones and predict
    them in a batch, and one record alone."""

    def output(_: int) -> IO[bytes]:
        return io.BytesIO()

    model = train_model(model_type, schema, recipe, parse_parameters({}, model_type), report.statistics,
                        lambda: read_materialized(io.BytesIO(training)), execution=execution)
    evaluate_model(model, read_materialized(io.BytesIO(scored)), schema, execution=execution)
    predict_record(RecordScorer(model), {"n": "3", "c": "x", "b": "1", "t": "word1"}, 0.5)
    batch_predict(model, read_materialized(io.BytesIO(scored)), schema, 0.5, output, execution=execution)


def _ingest(schema: Schema, rows: str, rearrangement: str | None, execution: Execution,
            paths: Counter[str]) -> tuple[IngestReport, bytes]:
    """Ingest CSV `rows` (after a header) with statistics; the report and the stored copy.
    The blocks each path read are added to `paths`."""
    data = ("n,c,b,t,y\n" + rows).encode()
    source = DataObject(uri="s3://warmup/data.csv", key="data.csv", size=len(data),
                        open=lambda: io.BytesIO(data))
    sink = io.BytesIO()
    report = ingest([source], schema, parse_rearrangement(rearrangement), True, sink, execution=execution)
    paths.update(report.blocks_by_path)
    return report, sink.getvalue()
