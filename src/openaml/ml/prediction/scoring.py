"""One scoring pass over records for whatever consumes their scores.

An evaluation accumulates its metric from the scores (metrics/evaluation.EvaluationScores), a
batch prediction writes them as result lines (prediction/batch.ResultWriter). An evaluation and
a batch prediction of the same model and records that run together share one pass (the job
engine's SharedWork), so each record's features and scores are made once. A consumer works in
two halves: `prepare`, on the thread that scored the slice (two slices at a time when the
execution has two threads), and `take`, in the records' order on the caller's thread. A
consumer that raises leaves the pass and the others go on: its error is its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from openaml.ml.execution import ONE_THREAD, Execution, two_at_a_time
from openaml.ml.model import Model
from openaml.ml.training.stop import ShouldStop, Slices
from openaml.ml.training.targets import kept_rows


@dataclass(frozen=True)
class ScoredSlice:
    """A slice of records and the model's scores of those not rejected."""

    part: pa.RecordBatch  # the records, rejected ones included
    kept: np.ndarray      # mask of part's records that are not rejected
    rows: pa.RecordBatch  # part's kept records
    scores: np.ndarray    # the model's scores of `rows` (a row per record; a column per class)


class Consumer(Protocol):
    def prepare(self, scored: ScoredSlice) -> Any:
        """This consumer's work on a slice that needs no order (any thread)."""

    def take(self, prepared: Any) -> None:
        """Use what `prepare` made, slices in the records' order (the pass's thread)."""


@dataclass(frozen=True)
class _Failed:
    error: Exception


def score_pass(model: Model, batches: Iterable[pa.RecordBatch], consumers: Sequence[Consumer],
               should_stop: ShouldStop | None = None, execution: Execution = ONE_THREAD,
               left: Callable[[int, Exception], None] | None = None) -> list[Exception | None]:
    """Score every record of `batches` once, handing each slice to every consumer; the error
    of each consumer that failed (None for the others). A consumer that fails is told to
    `left` (its number, its error) at once, on this thread, after its last `take`. should_stop
    is asked before each slice (Slices); once it answers True, the pass raises Cancelled. The
    pass ends early once every consumer has failed."""
    failures: list[Exception | None] = [None] * len(consumers)
    slices = Slices(should_stop)

    def prepared(part: pa.RecordBatch) -> list[Any]:
        kept = kept_rows(part)
        rows = part if kept.all() else part.filter(pa.array(kept))  # a filter copies every column
        scored = ScoredSlice(part, kept, rows, model.score_batch(rows))  # of no rows too
        return [_attempt(consumer, scored) if failures[k] is None else None
                for k, consumer in enumerate(consumers)]

    parts = (part for whole in batches for part in slices.of(whole))
    for made in two_at_a_time(slices.timed(prepared), parts, execution):
        for k, (consumer, item) in enumerate(zip(consumers, made, strict=True)):
            if failures[k] is not None:
                continue
            try:
                if isinstance(item, _Failed):
                    raise item.error
                consumer.take(item)
            except Exception as exc:  # noqa: BLE001 - the consumer's outcome; the others go on
                failures[k] = exc
                if left is not None:
                    left(k, exc)
        if all(failure is not None for failure in failures):
            break
    return failures


def _attempt(consumer: Consumer, scored: ScoredSlice) -> Any:
    try:
        return consumer.prepare(scored)
    except Exception as exc:  # noqa: BLE001 - handed to the pass's thread, which drops the consumer
        return _Failed(exc)


def score_alone(model: Model, batches: Iterable[pa.RecordBatch], consumer: Consumer,
                should_stop: ShouldStop | None = None, execution: Execution = ONE_THREAD) -> None:
    """A pass for one consumer, whose error is raised."""
    failure = score_pass(model, batches, [consumer], should_stop, execution)[0]
    if failure is not None:
        raise failure
