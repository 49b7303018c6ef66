"""The registry of mounted endpoints: one load per model however many first calls race."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from openaml.service.predictors import PredictorRegistry


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
