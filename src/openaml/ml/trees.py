"""Gradient-boosted trees' scores of CSR feature rows (LightGBM, the `trees` extra).

A model trained with openaml.algorithm=gbdt keeps the feature pipeline of the linear models
(its recipe's features) and, instead of weights, LightGBM's model text, whose trees split on
the columns that ml.tree_columns makes of those features (a column per category source, not
one per category). Its raw scores go through the same link as a linear model's (sigmoid,
softmax, or the target's scale), so every output keeps its shape.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

from openaml.ml.errors import InputError, install_hint
from openaml.ml.tree_columns import Rows, TreeColumns

EXTRA = "trees"


class TreesUnavailable(InputError):
    """openaml.algorithm=gbdt is used where LightGBM is not installed."""


def trees_installed() -> bool:
    """Whether LightGBM can be imported here (without importing it)."""
    return importlib.util.find_spec("lightgbm") is not None


def missing_trees_message() -> str:
    return (f"openaml.algorithm=gbdt needs the '{EXTRA}' extra, which is not installed (no module "
            f"'lightgbm'): {install_hint(EXTRA)}")


def lightgbm() -> ModuleType:
    """The lightgbm module; TreesUnavailable, naming the extra to install, when it is missing
    (a worker without it: the front end that took the model checked its own, trees_installed)."""
    try:
        return importlib.import_module("lightgbm")
    except ImportError:
        raise TreesUnavailable(missing_trees_message()) from None


def booster(text: str) -> Any:
    """A LightGBM booster of a model's text."""
    return lightgbm().Booster(model_str=text)


def tree_scores(rows: Rows, trees: Any, columns: TreeColumns, outputs: int) -> np.ndarray:
    """The trees' raw scores (rows, outputs) of feature rows, before the link function. One
    thread: callers score two slices at once (execution.two_at_a_time)."""
    if len(rows[0]) <= 1:
        return np.zeros((0, outputs))
    raw = trees.predict(columns.for_scoring(rows), raw_score=True, num_threads=1)
    return np.asarray(raw, np.float64).reshape(-1, outputs)


def tree_contributions(rows: Rows, trees: Any, columns: TreeColumns, outputs: int) -> np.ndarray:
    """Each column's contribution (SHAP values, exact for trees) to each row's raw scores,
    (rows, outputs, n_columns + 1), the last being the expected score: they sum to the score."""
    raw = trees.predict(columns.for_scoring(rows), pred_contrib=True, num_threads=1)
    # of sparse input, LightGBM gives a sparse matrix, or one per class
    parts = raw if isinstance(raw, list) else [raw]
    dense = np.stack([p.toarray() if sp.issparse(p) else np.asarray(p) for p in parts], axis=1)
    return dense.reshape(-1, outputs, columns.n_columns + 1)


def importance(trees: Any, n_columns: int) -> np.ndarray:
    """Each column's total gain over the splits on it (n_columns,)."""
    gains = np.asarray(trees.feature_importance(importance_type="gain"), np.float64)
    return np.pad(gains, (0, max(0, n_columns - len(gains))))[:n_columns]
