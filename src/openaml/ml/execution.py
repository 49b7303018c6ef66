"""How much of the machine a piece of ML work may use, decided by its caller.

The ML core never asks the operating system how many CPUs it has: the job engine passes the
server's settings down (Settings.job_threads); library callers pass what they want. With one
thread, everything runs in the caller's thread; with two, two blocks of CSV are parsed at once
while the caller counts and writes, training's records and feature blocks are made in pairs
(two_at_a_time), SGD's kernel runs its two halves at once when a step is worth it, and an
evaluation or a batch prediction scores two slices of records at once. (No part uses more than
two: the kernels were measured on 2 cores.)
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")
U = TypeVar("U")


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Execution:
    threads: int = 1
    # whether other work runs beside now (a job's: other jobs running), which a second thread
    # would slow down: SGD steps then stay on one
    crowded: Callable[[], bool] = field(default=_never, compare=False)

    @property
    def parallel(self) -> bool:
        return self.threads >= 2

    @contextmanager
    def helper(self, name: str) -> Iterator[ThreadPoolExecutor | None]:
        """One helper thread while inside (None with a single thread); shut down on leaving."""
        if not self.parallel:
            yield None
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
            yield pool


ONE_THREAD = Execution()  # the default of library calls: everything in the caller's thread


_found: dict[int, ThreadpoolController] = {}  # by the number of modules imported when found


def _native_pools() -> ThreadpoolController:
    """The native thread pools loaded, found again only once modules were imported since (an
    import may load one: SciPy's BLAS comes with training's first sparse matrix)."""
    imported = len(sys.modules)
    pools = _found.get(imported)
    if pools is None:
        _found.clear()
        pools = _found[imported] = ThreadpoolController()
    return pools


@contextmanager
def one_native_thread(user_api: str | None = None) -> Iterator[None]:
    """The native thread pools (BLAS; OpenMP too unless `user_api` names one) limited to one
    thread while inside: their spinning threads only take CPU from the compiled code. The
    loaded libraries are found once per process: threadpoolctl's threadpool_limits looks for
    them at every call (6-13 ms, 110 ms the first time), which every ingestion and training paid."""
    with _native_pools().limit(limits=1, user_api=user_api):
        yield


def two_at_a_time(function: Callable[[T], U], items: Iterable[T], execution: Execution, ahead: int = 2,
                  first_alone: bool = False, name: str = "openaml-features") -> Iterator[U]:
    """function(item) for each item, in order, two items at a time on two threads when
    `execution` has two (the feature pipeline's compiled and Arrow parts release the GIL):
    training's records and feature blocks, the slices scored by an evaluation or a batch
    prediction, ingestion's parsed blocks. `ahead` results are being made when the consumer
    takes the oldest; with `first_alone`, the first item's is made before any other starts (it
    settles what the later ones read)."""
    if not execution.parallel:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(2, thread_name_prefix=name) as pool:
        pending: deque[Future[U]] = deque()
        try:
            for number, item in enumerate(items):
                pending.append(pool.submit(function, item))
                if first_alone and number == 0:
                    wait(pending)
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
