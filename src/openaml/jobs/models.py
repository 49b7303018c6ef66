"""Models loaded once for the jobs, endpoints and console pages that use them at the same time.

The engine starts a model's evaluation and batch prediction together; each used to read and
decode the model (Fashion-MNIST: 16 MB of weights and 200,000 vocabulary strings, about
0.15 s). A model in use is shared, with the record scorer that Predict and the console's
explanations use; none is kept once nobody holds it, so memory stays that of the work running.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from openaml.ml.model import Model, load_model
from openaml.ml.prediction import RecordScorer, predict_record
from openaml.ml.prediction.explanations import explanation
from openaml.storage import Artifacts


class Scorer(Protocol):
    """A loaded model's real-time scoring of one record (Predict's answer), and on request its
    explanation (JSON: ml.prediction.explanations.explanation); `quick`: a record takes
    microseconds whatever its values (no tokens), so that it may be scored on the event loop."""

    quick: bool

    def __call__(self, record: dict[str, str], threshold: float) -> dict[str, Any]: ...

    def explain(self, record: dict[str, str], prediction: dict[str, Any], limit: int) -> str: ...


MODEL_FILE = "model.bin"  # a model's artifact, written by its training job


class LoadedModel:
    """A model, and its scorer of single records, built on first use (once)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._scorer: RecordScorer | None = None
        self._lock = threading.Lock()

    @property
    def scorer(self) -> RecordScorer:
        with self._lock:
            if self._scorer is None:
                self._scorer = RecordScorer(self.model)
            return self._scorer


class EndpointScorer:
    """A mounted endpoint's Scorer: it holds the loaded model (so the one shared copy stays
    loaded while the endpoint is mounted) and its record scorer, taken once (no lock per call)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded, self._scorer = loaded, loaded.scorer
        self.quick = not self._scorer.reads_text

    def __call__(self, record: dict[str, str], threshold: float) -> dict[str, Any]:
        return predict_record(self._scorer, record, threshold)

    def explain(self, record: dict[str, str], prediction: dict[str, Any], limit: int) -> str:
        return json.dumps(explanation(self._scorer, record, prediction, limit), separators=(",", ":"))


class LoadedModels:
    """Model id -> the LoadedModel, loaded by `load` at most once while some holder keeps it."""

    def __init__(self, load: Callable[[str], LoadedModel]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._loaded: weakref.WeakValueDictionary[str, LoadedModel] = weakref.WeakValueDictionary()
        self._loading: dict[str, Future[LoadedModel]] = {}

    def get(self, model_id: str) -> LoadedModel:
        """The model, shared with whoever holds it already or is loading it now."""
        with self._lock:
            model = self._loaded.get(model_id)
            if model is not None:
                return model
            future = self._loading.get(model_id)
            owner = future is None
            if future is None:
                future = self._loading[model_id] = Future()
        if not owner:
            return future.result()
        try:
            model = self._load(model_id)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            with self._lock:
                self._loaded[model_id] = model
            future.set_result(model)
            return model
        finally:
            with self._lock:
                self._loading.pop(model_id, None)


def read_model(artifacts: Artifacts, model_id: str) -> LoadedModel:
    """The stored model `model_id` (LoadedModels' way of loading one)."""
    with artifacts.open_read("MLModel", model_id, MODEL_FILE) as stream:
        return LoadedModel(load_model(stream))
