"""Models loaded once for the jobs and endpoints that use them at the same time.

The engine starts a model's evaluation and batch prediction together; each used to read and
decode the model (Fashion-MNIST: 16 MB of weights and 200,000 vocabulary strings, about
0.15 s). A model in use is shared; none is kept once nobody holds it, so memory stays that of
the jobs running.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from openaml.ml.model import Model


class Scorer(Protocol):
    """A loaded model's real-time scoring of one record (Predict's answer)."""

    def __call__(self, record: dict[str, str], threshold: float) -> dict[str, Any]: ...


class LoadedModels:
    """Model id -> the Model, loaded by `load` at most once while some holder keeps it."""

    def __init__(self, load: Callable[[str], Model]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._loaded: weakref.WeakValueDictionary[str, Model] = weakref.WeakValueDictionary()
        self._loading: dict[str, Future[Model]] = {}

    def get(self, model_id: str) -> Model:
        """The model, shared with whoever holds it already or is loading it now."""
        with self._lock:
            model = self._loaded.get(model_id)
            if model is not None:
                return model
            future = self._loading.get(model_id)
            owner = future is None
            if owner:
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
