"""Jobs that need the same work and run at the same time have it done once.

Datasources: the usual workflow creates a training and an evaluation datasource from one file,
differing only in their split, one right after the other, and the engine starts both; one read
of the data writes each one's records (`ingest_many`) to the sink that job keeps open meanwhile.
Scoring: an evaluation and a batch prediction of the same model and datasource start together
once the model is trained; one scoring pass (ml/prediction/scoring.py) feeds both.

The first job of a key to get here leads: it waits (at most `gather_seconds`) until the other
jobs of the key that are running or about to run have joined, and while none has, at least
`min_gather_seconds` (for datasources, the next Create call may be on its way); then it does
the work once for all of them. A job that arrives after the work has begun does its own. The
other jobs wait idle (`Job.idle`): their workers may start other jobs meanwhile, and each one
ends as soon as its outcome is known (`settle`: its part of a scoring pass failed, or it was
deleted), not when the work for the others ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MIN_GATHER_SECONDS, GATHER_SECONDS = 0.1, 1.0  # a leader's wait for peers to join

T = TypeVar("T")  # what a job takes part with (ml.data.Target, a scoring consumer; on Dask, the job)
R = TypeVar("R")  # what the work gives each job (IngestReport, a scoring outcome; on Dask, the job's result)


@dataclass
class _Group(Generic[T, R]):
    targets: dict[str, T] = field(default_factory=dict)  # job id -> its target
    results: dict[str, R | Exception] = field(default_factory=dict)
    settled: dict[str, threading.Event] = field(default_factory=dict)  # job id -> set once its result is in
    joined: threading.Event = field(default_factory=threading.Event)  # set by each job that joins


class SharedWork(Generic[T, R]):
    """Groups of jobs by key (datasources: data location and schema; scoring: model and
    datasource)."""

    def __init__(self, gather_seconds: float = GATHER_SECONDS,
                 min_gather_seconds: float = MIN_GATHER_SECONDS) -> None:
        self.gather_seconds, self.min_gather_seconds = gather_seconds, min_gather_seconds
        self._lock = threading.Lock()
        self._gathering: dict[Hashable, _Group[T, R]] = {}
        self._registered: dict[str, _Group[T, R]] = {}  # job id -> its group, open or closed

    def join(self, key: Hashable, job_id: str, target: T, peers: Callable[[], set[str]],
             work: Callable[[Sequence[T]], list[R | Exception]],
             idle: Callable[[], AbstractContextManager[None]] = nullcontext) -> tuple[R, int]:
        """The outcome for job `job_id`, and how many jobs shared the work. `peers()` names the
        other jobs of the same key that run or are about to; `work(targets)` works for several
        targets, giving an outcome or an exception per target (or raising for all); a job that
        does not lead waits inside `idle()`."""
        with self._lock:
            group = self._gathering.get(key)
            leader = group is None
            if group is None:
                group = self._gathering[key] = _Group[T, R]()
            group.targets[job_id] = target
            group.settled[job_id] = threading.Event()
            self._registered[job_id] = group
            group.joined.set()  # the leader looks again at once
        try:
            if leader:
                self._lead(key, group, peers, work)
            else:
                with idle():
                    group.settled[job_id].wait()
        finally:
            with self._lock:
                del self._registered[job_id]
        with self._lock:
            result = group.results[job_id]
        if isinstance(result, Exception):
            raise result
        return result, len(group.targets)

    def _lead(self, key: Hashable, group: _Group[T, R], peers: Callable[[], set[str]],
              work: Callable[[Sequence[T]], list[R | Exception]]) -> None:
        outcomes: list[R | Exception] | None = None
        try:
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < self.gather_seconds:
                waiting = peers()
                with self._lock:
                    joined = len(group.targets) > 1
                    if (joined or elapsed >= self.min_gather_seconds) and not waiting.difference(self._registered):
                        break  # every peer has joined this group or works on its own
                group.joined.wait(0.01)  # a peer that works on its own is seen at the next look
                group.joined.clear()
            with self._lock:
                del self._gathering[key]  # the work begins: later jobs of the key work on their own
            outcomes = work(list(group.targets.values()))
        except Exception as exc:  # noqa: BLE001 - the work's own failure fails every job
            outcomes = [exc] * len(group.targets)
        finally:
            # whatever happened, no job of the group may wait for ever
            with self._lock:
                if self._gathering.get(key) is group:
                    del self._gathering[key]
            failure = RuntimeError("The work shared with other jobs ended without a result")
            if outcomes is None or len(outcomes) != len(group.targets):
                outcomes = [failure] * len(group.targets)
            for job_id, outcome in zip(group.targets, outcomes, strict=True):
                self.settle(job_id, outcome)

    def settle(self, job_id: str, outcome: R | Exception) -> None:
        """Give job `job_id`, which takes part in a group's work, its outcome now (the first
        one given stays): it stops waiting, while the work goes on for the others."""
        with self._lock:
            group = self._registered.get(job_id)
            if group is None:
                return
            group.results.setdefault(job_id, outcome)
        group.settled[job_id].set()
