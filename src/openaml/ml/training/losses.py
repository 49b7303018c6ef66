"""Losses of the three model types: value and gradient with respect to the scores z."""

from __future__ import annotations

import numpy as np

from openaml.ml.model import sigmoid, softmax


def loss_and_gradient(kind: str, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-record loss (rows,) and dLoss/dz (rows, outputs) for scores z (rows, outputs).

    MULTICLASS: softmax cross-entropy, y = class index; BINARY: logistic loss, y in {0, 1};
    REGRESSION: half squared error on the standardized target.
    """
    if kind == "MULTICLASS":
        p = softmax(z)
        rows = np.arange(len(y))
        loss = -np.log(np.maximum(p[rows, y], 1e-300))
        p[rows, y] -= 1.0
        return loss, p
    score = z[:, 0]
    if kind == "BINARY":
        loss = np.logaddexp(0.0, score) - y * score
        return loss, (sigmoid(score) - y)[:, None]
    residual = score - y
    return 0.5 * residual * residual, residual[:, None]
