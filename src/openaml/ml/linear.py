"""Linear scores of CSR feature rows: the compiled inner loop of batch scoring."""

from __future__ import annotations

import numpy as np
from numba import njit


def linear_scores(rows: tuple[np.ndarray, np.ndarray, np.ndarray | None], weights: np.ndarray,
                  bias: np.ndarray) -> np.ndarray:
    """bias + features @ weights (rows, outputs) for FeaturePipeline.rows() output (values
    None when every value is 1): no sparse matrix is built. (An evaluation or a batch
    prediction with two threads scores two slices of records at once: execution.two_at_a_time.)"""
    indptr, indices, values = rows
    n = len(indptr) - 1
    out = np.empty((n, weights.shape[1]))
    # one compiled signature (the warm-up's), whichever path built the rows
    indptr = indptr.astype(np.int64, copy=False)
    indices = indices.astype(np.int32, copy=False)
    values = np.zeros(0) if values is None else values.astype(np.float64, copy=False)
    _scores(indptr, indices, values, weights, bias, out)
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
