"""A model is loaded once while it is in use, and not kept after."""

import gc
import threading
import time

import pytest

from openaml.jobs.models import LoadedModels


class _Model:  # stands for openaml.ml.model.Model (weak-referenceable)
    pass


def test_concurrent_users_share_one_load_and_nothing_is_kept_after() -> None:
    loads: list[str] = []

    def load(model_id: str) -> _Model:
        loads.append(model_id)
        time.sleep(0.05)  # both users ask while the first load runs
        return _Model()

    models = LoadedModels(load)
    got: list[_Model] = []
    threads = [threading.Thread(target=lambda: got.append(models.get("m"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["m"] and got[0] is got[1]
    assert models.get("m") is got[0]  # still held: shared
    got.clear()
    gc.collect()
    models.get("m")
    assert loads == ["m", "m"]  # nobody held it: loaded again


def test_a_failed_load_reaches_every_waiter_and_is_retried() -> None:
    calls = []

    def load(model_id: str) -> _Model:
        calls.append(model_id)
        if len(calls) == 1:
            time.sleep(0.05)
            raise FileNotFoundError("model.bin")
        return _Model()

    models = LoadedModels(load)
    errors = []

    def use() -> None:
        try:
            models.get("m")
        except FileNotFoundError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 2 and calls == ["m"]
    assert isinstance(models.get("m"), _Model) and calls == ["m", "m"]
    with pytest.raises(FileNotFoundError):
        LoadedModels(lambda _: (_ for _ in ()).throw(FileNotFoundError("x"))).get("other")


def test_a_loaded_model_builds_its_record_scorer_once() -> None:
    from openaml.jobs.models import LoadedModel
    from openaml.ml.training import SGDParams, train_model
    from tests.unit.ml.conftest import make_batch, make_schema

    schema = make_schema([("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    model = train_model("BINARY", schema, '{"outputs": ["c"]}', SGDParams(max_passes=1), None,
                        lambda: iter([make_batch({"c": ["a", "b"] * 4, "y": ["1", "0"] * 4})]))
    loaded = LoadedModel(model)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(loaded.scorer)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in got}) == 1 and got[0].model is model


def test_an_endpoint_holds_its_model_and_takes_the_scorer_once() -> None:
    """Predict calls take no lock: the endpoint's scorer is taken when it is mounted."""
    from openaml.jobs.models import EndpointScorer, LoadedModel
    from openaml.ml.training import SGDParams, train_model
    from tests.unit.ml.conftest import make_batch, make_schema

    schema = make_schema([("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    model = train_model("BINARY", schema, '{"outputs": ["c"]}', SGDParams(max_passes=1), None,
                        lambda: iter([make_batch({"c": ["a", "b"] * 4, "y": ["1", "0"] * 4})]))
    loaded = LoadedModel(model)
    endpoint = EndpointScorer(loaded)
    loaded._lock = None  # a Predict that took the lock would fail now
    assert endpoint({"c": "a"}, 0.5)["predictedLabel"] in ("0", "1") and endpoint.loaded is loaded
