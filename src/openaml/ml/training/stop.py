"""Stopping long computations early: the caller passes a `should_stop` callable, which the
computation asks at coarse points (between slices of scored records, every few SGD steps). It
must be cheap: a caller whose answer costs more (a store read) throttles it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import pyarrow as pa

ShouldStop = Callable[[], bool]
T = TypeVar("T")
# Scoring asks should_stop about every SLICE_SECONDS: the cost of a record ranges from
# microseconds (a few categorical values) to a millisecond (ngram(text, 10) of 200 words).
SLICE_SECONDS = 0.25
FIRST_SLICE_ROWS, MIN_SLICE_ROWS, MAX_SLICE_ROWS = 256, 64, 65_536


class Cancelled(Exception):
    """should_stop() answered True: the computation stopped without a result."""


def check(should_stop: ShouldStop | None) -> None:
    """Raise Cancelled when the caller wants the computation to stop."""
    if should_stop is not None and should_stop():
        raise Cancelled


class Slices:
    """Cuts batches of records into slices (views, no copy) that take about SLICE_SECONDS to
    process, asking should_stop before each. What the caller does with a slice is timed by
    `timed(function)`, on whichever thread runs it (slices may be scored two at a time), and
    each full slice's time sets the size of the slices cut after it: timing the gap between
    the generator's steps instead would see the next slice cut at once while the one before
    is still being scored, and grow slices to the maximum, which no stop could interrupt.
    Records are scored one by one, so slicing changes no result. Without should_stop,
    batches stay whole."""

    def __init__(self, should_stop: ShouldStop | None) -> None:
        self.should_stop = should_stop
        self.rows = FIRST_SLICE_ROWS

    def of(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        if self.should_stop is None:
            if batch.num_rows:
                yield batch
            return
        start = 0
        while start < batch.num_rows:
            check(self.should_stop)
            part = batch.slice(start, self.rows)
            start += part.num_rows
            yield part

    def timed(self, function: Callable[[pa.RecordBatch], T]) -> Callable[[pa.RecordBatch], T]:
        """function, timed on each slice to size the next ones."""
        def run(part: pa.RecordBatch) -> T:
            began = time.monotonic()
            result = function(part)
            elapsed = time.monotonic() - began
            # a short last slice would overstate the cost
            if self.should_stop is not None and part.num_rows >= self.rows:
                wanted = part.num_rows * SLICE_SECONDS / max(elapsed, 1e-6)
                self.rows = int(np.clip(wanted, MIN_SLICE_ROWS, MAX_SLICE_ROWS))
            return result
        return run
