"""The registry of mounted endpoints: one load per model however many first calls race."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from openaml.errors import LimitExceededException
from openaml.service.predictors import PredictorRegistry, share


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
    with ThreadPoolExecutor(1) as executor:
        registry = PredictorRegistry(lambda model_id: ((lambda record, threshold: {}), 0.5),
                                     lambda model_id, status: None, 10, executor, processes=2)
        predictor = registry.mount_now("m")
        assert predictor is not None and predictor.bucket.rate == 5
        registry.set_processes(3)  # another process serves now: 4 each (rounded up)
        assert predictor.bucket.rate == 4 and predictor.bucket.tokens <= 4
        admitted = 0
        try:
            for _ in range(10):
                predictor.predict({})
                admitted += 1
        except LimitExceededException as exc:
            assert "More than 10 requests per second" in str(exc)
        assert admitted == 4
        registry.set_processes(1)
        assert predictor.bucket.rate == 10 and registry.mount_now("n").bucket.rate == 10
    assert share(0, 3) == 0 and share(7, 0) == 7 and share(7, 2) == 4
