"""The registry of mounted endpoints: one load per model however many first calls race."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from openaml.errors import LimitExceededException
from openaml.service.predictors import PredictorRegistry, TokenBucket, share


def test_concurrent_first_calls_load_a_model_once() -> None:
    loads: list[str] = []

    def load(model_id: str):  # noqa: ANN202 - (scorer, threshold)
        loads.append(model_id)
        time.sleep(0.2)
        return (lambda record, threshold: {"predictedLabel": "1"}), 0.5

    with ThreadPoolExecutor(2) as executor:
        registry = PredictorRegistry(load, lambda model_id, status: None, 10, executor)
        found: list[object] = []
        threads = [threading.Thread(target=lambda: found.append(registry.mount_now("m")))
                   for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert loads == ["m"]
    assert len(found) == 6 and len({id(p) for p in found}) == 1 and found[0] is not None


def test_a_model_unmounted_and_mounted_again_is_loaded_again() -> None:
    loads: list[str] = []

    def load(model_id: str):  # noqa: ANN202
        loads.append(model_id)
        return (lambda record, threshold: {}), 0.5

    with ThreadPoolExecutor(1) as executor:
        registry = PredictorRegistry(load, lambda model_id, status: None, 10, executor)
        first = registry.mount_now("m")
        registry.unmount("m")
        assert registry.get("m") is None
        second = registry.mount_now("m")
    assert loads == ["m", "m"] and first is not second


def test_each_process_admits_its_share_of_the_limit_and_the_refusal_names_the_whole() -> None:
    now = [0.0]
    bucket = TokenBucket(10 / 3, clock=lambda: now[0])  # one of three processes, limit 10
    assert sum(bucket.take() for _ in range(10)) == 3  # its burst
    admitted = 0
    for _ in range(30):  # three seconds of steady requests: ten admitted
        now[0] += 0.1
        admitted += bucket.take()
    assert 10 <= admitted <= 11
    slow = TokenBucket(0.25, clock=lambda: now[0])  # limit 1 over 4 processes: one every 4 s
    assert [slow.take(), slow.take()] == [True, False]
    now[0] += 4.0
    assert [slow.take(), slow.take()] == [True, False]
    with ThreadPoolExecutor(1) as executor:
        registry = PredictorRegistry(lambda model_id: ((lambda record, threshold: {}), 0.5),
                                     lambda model_id, status: None, 10, executor, processes=2)
        predictor = registry.mount_now("m")
        assert predictor is not None and predictor.bucket.rate == 5
        registry.set_processes(4)
        assert predictor.bucket.rate == 2.5 and predictor.bucket.tokens <= 2.5
        with pytest.raises(LimitExceededException, match="More than 10 requests per second for MLModel m"):
            for _ in range(10):
                predictor.predict({})
        registry.set_processes(1)
        assert predictor.bucket.rate == 10 and registry.mount_now("n").bucket.rate == 10
    assert share(0, 3) == 0 and share(7, 0) == 7 and share(7, 2) == 3.5


def test_a_threshold_update_is_not_undone_by_an_earlier_read_of_the_store() -> None:
    """The endpoints' follower reads the store, then applies what it read: an UpdateMLModel in
    between (applied at once to the mounted endpoint) was undone until its next round, and a
    Predict right after the update used the old threshold."""
    from openaml.jobs.specs import ScoreThreshold
    from openaml.store import EndpointStatus

    with ThreadPoolExecutor(2) as executor:
        registry = PredictorRegistry(lambda model_id: (object(), 0.5), lambda model_id, status: None, 10, executor)
        predictor = registry.mount_now("m")
        assert predictor is not None and predictor.threshold == 0.5
        stale = {"m": (EndpointStatus.READY, ScoreThreshold(), None)}  # read before the update
        registry.set_threshold("m", ScoreThreshold(0.0, 1_000))
        registry.sync(stale)
        assert predictor.threshold == 0.0
        registry.sync({"m": (EndpointStatus.READY, ScoreThreshold(0.0, 1_000), None)})
        registry.sync({"m": (EndpointStatus.READY, ScoreThreshold(0.8, 2_000), None)})  # another process's later update
        assert predictor.threshold == 0.8


def test_an_endpoint_deleted_and_created_again_by_another_process_is_not_served_until_ready() -> None:
    """Another process deleted an endpoint and created it again between two rounds of the
    follower: its CreatedAt differs, so the predictor of the one before goes (it answered
    Predict while the new one was UPDATING, where Predict must say it is not mounted) and the
    new one is mounted once READY. A mounted endpoint seen UPDATING with its own CreatedAt
    (this process's, before its READY is written) stays."""
    from openaml.jobs.specs import ScoreThreshold
    from openaml.store import EndpointStatus

    with ThreadPoolExecutor(1) as executor:
        registry = PredictorRegistry(lambda model_id: (object(), 0.5), lambda model_id, status: None, 10, executor)
        assert registry.mount_now("m") is not None
        registry.sync({"m": (EndpointStatus.UPDATING, ScoreThreshold(), 1_000)})
        registry.sync({"m": (EndpointStatus.READY, ScoreThreshold(), 1_000)})
        assert registry.get("m") is not None
        registry.sync({"m": (EndpointStatus.UPDATING, ScoreThreshold(), 2_000)})
        assert registry.get("m") is None
        registry.sync({"m": (EndpointStatus.READY, ScoreThreshold(), 2_000)})
    assert registry.get("m") is not None  # mounted again (the executor has finished)
    registry.sync({})
    assert registry.get("m") is None
