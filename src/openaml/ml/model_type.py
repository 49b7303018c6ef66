"""The three kinds of model (models.md §1)."""

from __future__ import annotations

from enum import StrEnum


class ModelType(StrEnum):
    BINARY = "BINARY"  # logistic: P(target = 1), a score threshold makes the label
    MULTICLASS = "MULTICLASS"  # multinomial logistic: a probability per class
    REGRESSION = "REGRESSION"  # linear: the target's value
