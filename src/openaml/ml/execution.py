"""How much of the machine a piece of ML work may use, decided by its caller.

The ML core never asks the operating system how many CPUs it has: the job engine passes the
server's settings down (Settings.job_threads); library callers pass what they want. With one
thread, everything runs in the caller's thread; with two, reading runs ahead of parsing,
feature blocks are built in pairs, SGD's kernel runs its two halves at once and scoring splits
large batches in two. (No part uses more than two: the kernels were measured on 2 cores.)
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Execution:
    threads: int = 1

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
