"""Model size accounting and trimming (models.md §4 [Choice])."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BASE_SIZE = 1024


def feature_costs(name_sizes: np.ndarray, outputs: int) -> np.ndarray:
    """Bytes each feature adds: UTF-8 name length + 8 per output."""
    return name_sizes.astype(np.int64) + 8 * outputs


def model_size(costs: np.ndarray, n_statistics: int) -> int:
    return BASE_SIZE + int(costs.sum()) + 8 * n_statistics


def trim_features(weights: np.ndarray, costs: np.ndarray, n_statistics: int, max_size: int,
                  names: Callable[[], list[str]]) -> np.ndarray | None:
    """Mask of kept features: all-zero ones dropped, then the least important (smallest largest
    |weight|, ties by name) removed until the size fits; None when even no feature is too big.
    costs: feature_costs(...); names() is called only to break ties when trimming."""
    strength = np.abs(weights).max(axis=1) if len(costs) else np.zeros(0)
    keep = strength > 0
    size = model_size(costs[keep], n_statistics)
    if size <= max_size:
        return keep
    if BASE_SIZE + 8 * n_statistics > max_size:
        return None
    order = np.lexsort((np.array(names(), dtype=object), strength))
    order = order[keep[order]]
    excess = size - max_size
    removed = np.cumsum(costs[order])
    count = int(np.searchsorted(removed, excess, side="left")) + 1
    keep[order[:count]] = False
    return keep
