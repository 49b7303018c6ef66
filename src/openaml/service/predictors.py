"""Models kept in memory for Predict, with a token-bucket rate limit per endpoint."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from openaml.errors import LimitExceededException
from openaml.jobs.models import Scorer
from openaml.jobs.specs import ScoreThreshold
from openaml.store import EndpointStatus

log = logging.getLogger(__name__)


class TokenBucket:
    """`rate` requests per second (a fraction too) with bursts up to `rate`, at least one;
    rate <= 0 disables the limit."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.stamp = self.burst, clock()
        self.lock = threading.Lock()

    @property
    def burst(self) -> float:
        return max(1.0, float(self.rate))

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self.rate = rate
            self.tokens = min(self.tokens, self.burst)


EXPLANATION_DETAIL = "OpenAML.Explanation"  # beyond Amazon ML: a Prediction's details entry


class Predictor:
    """A mounted model; `rate` is this process's share of the endpoint's `limit` (requests per
    second over all the processes serving it)."""

    def __init__(self, model_id: str, scorer: Scorer, threshold: float, rate: float, limit: int) -> None:
        self.model_id, self.scorer, self.threshold = model_id, scorer, threshold
        self.threshold_at = -1  # when the threshold taken was set (ms; -1: as loaded)
        self.bucket, self.limit = TokenBucket(rate), limit

    def take_threshold(self, threshold: ScoreThreshold) -> None:
        """Take `threshold` unless the one taken was set later: a store read that an update
        overtook (the endpoints' follower) must not undo it."""
        at = threshold.updated_at if threshold.updated_at is not None else -1
        if at >= self.threshold_at:
            self.threshold, self.threshold_at = threshold.value, at

    def predict(self, record: dict[str, str], explain: int = 0) -> dict[str, Any]:
        """Predict's answer; with `explain`, its details also hold that many of the record's
        largest contributions (EXPLANATION_DETAIL, a JSON text)."""
        if not self.bucket.take():
            raise LimitExceededException(
                f"More than {self.limit} requests per second for MLModel {self.model_id}"
            )
        prediction = self.scorer(record, self.threshold)
        if explain:
            prediction["details"][EXPLANATION_DETAIL] = self.scorer.explain(record, prediction, explain)
        return prediction


class PredictorRegistry:
    """Mounted endpoints. `load(model_id)` returns (scorer, threshold); `report(model_id, status)`
    records the endpoint status (READY or FAILED) in the store. Each endpoint admits `limit`
    requests per second over the `processes` that serve it (set_processes): this one admits
    its share."""

    def __init__(
        self,
        load: Callable[[str], tuple[Scorer, float]],
        report: Callable[[str, EndpointStatus], None],
        limit: int,
        executor: Executor,
        delay_seconds: float = 0.0,
        processes: int = 1,
    ) -> None:
        self._load, self._report, self.limit = load, report, limit
        self._rate = share(limit, processes)
        self._executor, self._delay = executor, delay_seconds
        self._mounted: dict[str, Predictor] = {}
        self._wanted: set[str] = set()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one load of a model at a time
        self._created: dict[str, int | None] = {}  # the CreatedAt of each mounted endpoint, once synced

    def get(self, model_id: str) -> Predictor | None:
        return self._mounted.get(model_id)

    def mount_async(self, model_id: str) -> None:
        """Load the model in the background, then report the endpoint READY (or FAILED)."""
        with self._lock:
            self._wanted.add(model_id)
        self._executor.submit(self._mount, model_id, True)

    def mount_now(self, model_id: str) -> Predictor | None:
        """Load an endpoint that another process of this service made READY."""
        with self._lock:
            self._wanted.add(model_id)
        self._mount(model_id, False)
        return self._mounted.get(model_id)

    def sync(self, serving: Mapping[str, tuple[EndpointStatus, ScoreThreshold, int | None]]) -> None:
        """Follow the store (model id -> (endpoint status, threshold, endpoint CreatedAt)):
        other processes of the service may create or delete endpoints and change thresholds.
        An endpoint deleted and created again between two rounds has another CreatedAt: the
        predictor of the one before goes, and the new one is mounted once READY (it answered
        Predict all the while the new one was UPDATING)."""
        for model_id in list(self._mounted):
            seen = serving.get(model_id)
            if seen is None or self._created.setdefault(model_id, seen[2]) != seen[2]:
                self.unmount(model_id)
        for model_id, (status, threshold, _) in serving.items():
            predictor = self._mounted.get(model_id)
            if predictor is not None:
                predictor.take_threshold(threshold)
            elif status is EndpointStatus.READY and model_id not in self._wanted:
                with self._lock:
                    self._wanted.add(model_id)
                self._executor.submit(self._mount, model_id, False)

    def _mount(self, model_id: str, report: bool) -> None:
        """Load and mount a model. Concurrent calls for one model load it once: later callers
        wait for the first and keep its predictor (and so its rate-limit bucket)."""
        if self._delay and report:
            time.sleep(self._delay)
        with self._lock:
            loading = self._loading.setdefault(model_id, threading.Lock())
        with loading:
            if model_id in self._mounted:
                if report:
                    self._report(model_id, EndpointStatus.READY)
                return
            self._load_and_mount(model_id, report)

    def _load_and_mount(self, model_id: str, report: bool) -> None:
        try:
            scorer, threshold = self._load(model_id)
        except Exception:  # noqa: BLE001 - any load failure makes the endpoint FAILED
            log.exception("loading model %s for its endpoint failed", model_id)
            with self._lock:
                wanted = model_id in self._wanted
                self._wanted.discard(model_id)
            if wanted and report:
                self._report(model_id, EndpointStatus.FAILED)
            return
        with self._lock:
            if model_id not in self._wanted:
                return
            self._mounted[model_id] = Predictor(model_id, scorer, threshold, self._rate, self.limit)
        if report:
            self._report(model_id, EndpointStatus.READY)

    def unmount(self, model_id: str) -> None:
        with self._lock:
            self._wanted.discard(model_id)
            self._mounted.pop(model_id, None)
            self._loading.pop(model_id, None)
            self._created.pop(model_id, None)

    def set_processes(self, processes: int) -> None:
        """The number of processes serving the endpoints now (this one among them)."""
        rate = share(self.limit, processes)
        if rate == self._rate:
            return
        with self._lock:
            self._rate = rate
            predictors = list(self._mounted.values())
        for predictor in predictors:
            predictor.bucket.set_rate(rate)

    def set_threshold(self, model_id: str, threshold: ScoreThreshold) -> None:
        predictor = self._mounted.get(model_id)
        if predictor is not None:
            predictor.take_threshold(threshold)

    def __len__(self) -> int:
        return len(self._mounted)


def share(limit: int, processes: int) -> float:
    """One of `processes`' equal shares of a rate `limit` (a limit <= 0 stays off)."""
    return limit / max(1, processes) if limit > 0 else limit
