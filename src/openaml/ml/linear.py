"""Linear scores of CSR feature rows: the compiled inner loop of batch scoring."""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np
from numba import njit

# With a helper thread, batches of at least SPLIT_ROWS rows are scored in two halves at once:
# the compiled loop releases the GIL, so an evaluation or batch prediction uses both cores.
SPLIT_ROWS = 1024


def linear_scores(rows: tuple[np.ndarray, np.ndarray, np.ndarray | None], weights: np.ndarray,
                  bias: np.ndarray, helper: Executor | None = None) -> np.ndarray:
    """bias + features @ weights (rows, outputs) for FeaturePipeline.rows() output (values
    None when every value is 1): no sparse matrix is built. `helper` scores half of a large
    batch (Execution.helper)."""
    indptr, indices, values = rows
    n = len(indptr) - 1
    out = np.empty((n, weights.shape[1]))
    # one compiled signature (the warm-up's), whichever path built the rows
    indptr = indptr.astype(np.int64, copy=False)
    indices = indices.astype(np.int32, copy=False)
    values = np.zeros(0) if values is None else values.astype(np.float64, copy=False)
    if n < SPLIT_ROWS or helper is None:
        _scores(indptr, indices, values, weights, bias, out)
        return out
    half = n // 2
    later = helper.submit(_scores, indptr[half:], indices, values, weights, bias, out[half:])
    _scores(indptr[:half + 1], indices, values, weights, bias, out[:half])
    later.result()
    return out


@njit(cache=True, nogil=True)
def _scores(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, weights: np.ndarray,
            bias: np.ndarray, out: np.ndarray) -> None:
    ones = len(values) == 0
    outputs = len(bias)
    acc = np.empty(outputs)
    for i in range(len(indptr) - 1):
        acc[:] = bias
        if ones:
            for j in range(indptr[i], indptr[i + 1]):
                row = indices[j]
                for k in range(outputs):
                    acc[k] += weights[row, k]
        else:
            for j in range(indptr[i], indptr[i + 1]):
                row, v = indices[j], values[j]
                for k in range(outputs):
                    acc[k] += v * weights[row, k]
        out[i] = acc
