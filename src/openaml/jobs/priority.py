"""Jobs run below requests: the threads that run jobs (and the threads they start, which
inherit it on Linux) get a lower scheduling priority, so that a training job using every core
leaves the CPU to the HTTP threads that answer Predict and the other API calls first."""

from __future__ import annotations

import contextlib
import os
import threading

from threadpoolctl import threadpool_limits

JOB_NICENESS = 10  # added to the thread's nice value, once


def run_below_requests() -> None:
    """Lower the calling thread's priority (once per thread; silently where unsupported)."""
    if getattr(_done, "lowered", False):
        return
    _done.lowered = True
    with contextlib.suppress(AttributeError, OSError, PermissionError):
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + JOB_NICENESS)


_done = threading.local()


def single_threaded_blas() -> None:
    """Let NumPy's BLAS (OpenBLAS) use the calling thread alone, for the whole process. Its
    worker threads spin for a while after every call, at normal priority: while a 2 M-row
    datasource was ingested they took 5.9 s of CPU (the statistics' np.dot calls) from job
    threads that run below requests. The compiled and Arrow code of jobs needs no BLAS threads."""
    threadpool_limits(limits=1, user_api="blas")
