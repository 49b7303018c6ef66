"""Count, mean and sum of squared deviations of numbers, merged part by part (Chan et al.): the
datasource statistics, a fit's numeric moments and a regression target's scale all merge
their batches (or partitions) with it.

Numbers near the double's range would overflow the sum of squared deviations (past about
1e154) or the sum behind the mean, and the standard deviation with them, though both lie
within the numbers' own range. Such numbers are therefore divided by a power of two (`scale`,
exact) before they are summed: m2 then holds the squared deviations in units of scale**2, and
the standard deviation is sqrt(m2 / count) * scale. Below SAFE_MAGNITUDE the scale is 1 and
every result is what the unscaled formulas give, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# numbers of at most this magnitude sum their squared deviations, 2**60 of them, within the
# double's range (2**1024): (2 * 2**480)**2 * 2**60 = 2**1022
SAFE_MAGNITUDE = 2.0**480


@dataclass
class Moments:
    count: float = 0  # an integer, unless merged from fractional weights
    mean: float = 0.0
    m2: float = 0.0  # the sum of squared deviations from the mean, in units of scale**2
    scale: float = 1.0  # a power of two

    @classmethod
    def of(cls, values: np.ndarray, weights: np.ndarray | None = None) -> Moments:
        """The moments of the values that are not NaN (each counted `weights` times, when
        given: then none may be NaN)."""
        if weights is None:
            values = values[~np.isnan(values)]
        n = float(weights.sum()) if weights is not None else len(values)
        if n == 0:
            return cls()
        with np.errstate(over="ignore", invalid="ignore"):  # infinite values: not finite moments
            largest = float(np.abs(values).max())
            scale = 1.0 if largest <= SAFE_MAGNITUDE or not math.isfinite(largest) else _power_of_two(largest)
            scaled = values / scale if scale != 1.0 else values
            if weights is None:
                mean = float(scaled.mean())
                m2 = float(((scaled - mean) ** 2).sum())
            else:
                mean = float((scaled * weights).sum() / n)
                m2 = float((((scaled - mean) ** 2) * weights).sum())
        return cls(int(n) if float(n).is_integer() else n, mean * scale, m2, scale)

    def merge(self, other: Moments) -> None:
        """Add the moments of other numbers."""
        if not other.count:
            return
        total = self.count + other.count
        scale = max(self.scale, other.scale)
        for _ in range(3):  # the merged sum past the range: again at a scale covering both means
            delta = other.mean / scale - self.mean / scale if scale != 1.0 else other.mean - self.mean
            m2 = _in_units(self.m2, self.scale, scale) + (
                _in_units(other.m2, other.scale, scale) + delta * delta * self.count * other.count / total)
            if math.isfinite(m2) or not math.isfinite(delta):
                break
            scale = max(2 * scale, _power_of_two(max(abs(self.mean), abs(other.mean))))
        self.m2, self.scale, self.count = m2, scale, total
        self.mean += delta * other.count / total * scale if scale != 1.0 else delta * other.count / total

    @property
    def variance(self) -> float:
        """The population variance (0 without numbers; inf past the double's range)."""
        if not self.count:
            return 0.0
        return self.m2 / self.count if self.scale == 1.0 else self.std * self.std

    @property
    def std(self) -> float:
        """The population standard deviation (0 without numbers)."""
        if not self.count:
            return 0.0
        return math.sqrt(self.m2 / self.count) * self.scale


def standardize(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(values - mean) / std (std > 0). Past SAFE_MAGNITUDE a mean's difference with a value
    may pass the double's range though its quotient does not: such a mean is divided first
    (values / std - mean / std), below it the plain formula is kept, bit for bit."""
    with np.errstate(over="ignore"):  # values far beyond the training data's: +-inf, kept in bounds later
        if abs(mean) > SAFE_MAGNITUDE:
            return values / std - mean / std
        return (values - mean) / std


def unstandardize(z: np.ndarray, mean: float, std: float) -> np.ndarray:
    """z * std + mean: the inverse of `standardize`, in halves when the mean or std passes
    SAFE_MAGNITUDE (then a value within the double's range comes out within it)."""
    with np.errstate(over="ignore"):  # inputs far beyond the training data's: +-inf
        if max(abs(mean), std) > SAFE_MAGNITUDE:
            return (z * (std / 2) + mean / 2) * 2
        return z * std + mean


def _power_of_two(magnitude: float) -> float:
    """The least power of two not below a positive finite magnitude (at most 2**1023, which
    leaves any double divided by it at most 2)."""
    mantissa, exponent = math.frexp(magnitude)
    return math.ldexp(1.0, min(exponent if mantissa != 0.5 else exponent - 1, 1023))


def _in_units(m2: float, scale: float, unit: float) -> float:
    """A sum of squared deviations in units of scale**2, in units of unit**2 (unit >= scale)."""
    return m2 if scale == unit else m2 * (scale / unit) ** 2
