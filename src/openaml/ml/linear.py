"""Linear scores of CSR feature rows: the compiled inner loop of batch scoring."""

from __future__ import annotations

import numpy as np
from numba import njit


def linear_scores(rows: tuple[np.ndarray, np.ndarray, np.ndarray | None], weights: np.ndarray,
                  bias: np.ndarray) -> np.ndarray:
    """bias + features @ weights (rows, outputs) for FeaturePipeline.rows() output (values
    None when every value is 1): no sparse matrix is built."""
    indptr, indices, values = rows
    out = np.empty((len(indptr) - 1, weights.shape[1]))
    # one compiled signature (the warm-up's), whichever path built the rows
    _scores(indptr.astype(np.int64, copy=False), indices.astype(np.int32, copy=False),
            np.zeros(0) if values is None else values.astype(np.float64, copy=False), weights, bias, out)
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
