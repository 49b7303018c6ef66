"""Stopping long computations early: the caller passes a `should_stop` callable, which the
computation asks at coarse points (between slices of scored records, every few SGD steps). It
must be cheap: a caller whose answer costs more (a store read) throttles it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

ShouldStop = Callable[[], bool]
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
    """Cuts batches of records into slices (views, no copy) that the caller takes about
    SLICE_SECONDS to process, timed on its previous slices, asking should_stop before each.
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
            began = time.monotonic()
            yield part  # the caller processes it before asking for the next
            elapsed = time.monotonic() - began
            start += part.num_rows
            if part.num_rows == self.rows:  # a short last slice would overstate the cost
                wanted = self.rows * SLICE_SECONDS / max(elapsed, 1e-6)
                self.rows = int(np.clip(wanted, MIN_SLICE_ROWS, MAX_SLICE_ROWS))
