"""Count, mean and sum of squared deviations of numbers, merged part by part (Chan et al.): the
datasource statistics, a fit's numeric moments and a regression target's scale all merge
their batches (or partitions) with it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Moments:
    count: float = 0  # an integer, unless merged from fractional weights
    mean: float = 0.0
    m2: float = 0.0  # the sum of squared deviations from the mean

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """The moments of the values that are not NaN."""
        values = values[~np.isnan(values)]
        if len(values) == 0:
            return cls()
        mean = float(values.mean())
        return cls(len(values), mean, float(((values - mean) ** 2).sum()))

    def merge(self, other: Moments) -> None:
        """Add the moments of other numbers."""
        if not other.count:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.mean += delta * other.count / total
        self.count = total

    @property
    def variance(self) -> float:
        """The population variance (0 without numbers)."""
        return self.m2 / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)
