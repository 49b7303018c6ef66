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
from collections.abc import Iterator
from typing import IO

import pyarrow as pa

from openaml.jobs.priority import run_below_requests
from openaml.ml import evaluate_model, parse_parameters, predict_record, train_model
from openaml.ml.data import DataObject, IngestReport, ingest, parse_rearrangement, read_materialized
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.model_type import ModelType
from openaml.ml.prediction import RecordScorer, batch_predict
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.training.sgd import compile_large_minibatches

log = logging.getLogger(__name__)

SCHEMA = (
    '{"targetAttributeName":"y","dataFileContainsHeader":true,"attributes":['
    '{"attributeName":"n","attributeType":"NUMERIC"},{"attributeName":"c","attributeType":"CATEGORICAL"},'
    '{"attributeName":"b","attributeType":"BINARY"},{"attributeName":"t","attributeType":"TEXT"},'
    '{"attributeName":"y","attributeType":"BINARY"}]}'
)


def warm_up(done: threading.Event | None = None, execution: Execution = ONE_THREAD) -> dict[str, int]:
    """Ingest, train, evaluate and predict a tiny BINARY data set as the jobs will (with their
    `execution`), then set `done`; failures are only logged. The blocks each CSV path read."""
    run_below_requests()  # the warm-up is a job too (and starts the compiled code's threads)
    paths: Counter[str] = Counter()
    try:
        schema = parse_schema(SCHEMA)
        # the compiled paths for integer fields and the record count (every column an integer)
        integers = "".join(f"{i},{i % 3},{i % 2},{i % 4},{int(i > 10)}\n" for i in range(24))
        _ingest(parse_schema(SCHEMA.replace('"TEXT"', '"CATEGORICAL"')), integers,
                '{"splitting": {"percentBegin": 0, "percentEnd": 70}}', execution, paths)
        # Arrow's fast path (no spaces or quotes: integer columns) with a sequential split,
        # then the general one (a quote inside a value), then Arrow's with stripping (text
        # with spaces and a quoted comma), whose copy the other jobs read
        plain = "".join(f"{i},{'xyz'[i % 3]},{i % 2},word{i % 4},{int(i > 10)}\n" for i in range(24))
        _ingest(schema, plain, '{"splitting": {"percentBegin": 0, "percentEnd": 70}}', execution, paths)
        _ingest(schema, plain.replace("word1", 'a"b'), None, execution, paths)
        mixed = "".join(f'{i},{"xyz"[i % 3]},{i % 2},"word{i % 4}, more",{int(i > 10)}\n' for i in range(24))
        report, stored = _ingest(schema, mixed, None, execution, paths)

        def batches() -> Iterator[pa.RecordBatch]:
            return read_materialized(io.BytesIO(stored))

        recipe = default_recipe(schema, report.statistics)
        model = train_model(ModelType.BINARY, schema, recipe, parse_parameters({}, ModelType.BINARY),
                            report.statistics, batches, execution=execution)
        compile_large_minibatches()
        evaluate_model(model, batches(), schema, execution=execution)
        predict_record(RecordScorer(model), {"n": "3", "c": "x", "b": "1", "t": "word1"}, 0.5)

        def output(_: int) -> IO[bytes]:
            return io.BytesIO()

        batch_predict(model, batches(), schema, 0.5, output, execution=execution)
    except Exception:  # noqa: BLE001 - a failed warm-up only costs speed
        log.exception("warm-up failed")
    finally:
        if done is not None:
            done.set()
    return dict(paths)


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
