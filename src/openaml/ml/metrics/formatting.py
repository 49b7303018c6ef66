"""Number formats: Java's Double.toString for metrics, DecimalFormat("0.######E0") for scores."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pyarrow as pa
from numba import njit

SMALLEST_NORMAL = 2.2250738585072014e-308


def format_metric(x: float) -> str:
    """Shortest round-trip digits; plain for 1e-3 <= |x| < 1e7, else d.dddE<exp> (eval §1.3);
    Java's words for non-finite values (the RMSE of a model whose predictions overflow)."""
    if x == 0:
        return "0.0"
    if not math.isfinite(x):
        return _non_finite(x)
    if 1e-3 <= abs(x) < 1e7:
        text = repr(float(x))
        return text if "." in text else text + ".0"
    d = Decimal(repr(float(x)))
    sign, digit_tuple, _ = d.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    return ("-" if sign else "") + digits[0] + "." + (digits[1:] or "0") + "E" + str(d.adjusted())


def format_score(x: float) -> str:
    """One batch-prediction number (eval §2.3 reference algorithm); Java's words for
    non-finite values (a diverged regression), which the reference does not cover."""
    if x == 0:
        return "0E0"
    if not math.isfinite(x):
        return _non_finite(x)
    d = Decimal(repr(abs(float(x))))
    e = d.adjusted()
    m = d.scaleb(-e).quantize(Decimal("1.000000"), rounding=ROUND_HALF_EVEN)
    if m >= 10:
        m, e = Decimal("1"), e + 1
    digits = format(m, "f").rstrip("0").rstrip(".")
    return ("-" if x < 0 else "") + digits + "E" + str(e)


def score_texts(values: np.ndarray) -> pa.StringArray:
    """format_score of every value of a 1-D array, as an Arrow string array. A compiled loop
    rounds each value to 7 significant digits from x * 10^(6 - exponent) (within a few units
    in the last place of the exact product); values whose product lies within 1e-7 of a
    rounding tie, and zero, subnormal or non-finite ones, take format_score itself (the
    reference rounds the shortest repr half-even: an 8-digit repr ending in 5 is such a tie)."""
    flat = np.ascontiguousarray(values, dtype=np.float64)
    slots = np.zeros((len(flat), _SLOT), np.uint8)
    lengths = np.zeros(len(flat), np.int32)
    unsure = _write_scores(flat, slots, lengths)
    for i in np.flatnonzero(unsure):
        text = format_score(float(flat[i])).encode("ascii")
        slots[i, :len(text)] = np.frombuffer(text, np.uint8)
        lengths[i] = len(text)
    offsets = np.zeros(len(flat) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = slots[np.arange(_SLOT) < lengths[:, None]]  # row-major: the texts end to end
    return pa.StringArray.from_buffers(len(flat), pa.py_buffer(offsets), pa.py_buffer(data))


_SLOT = 16  # bytes of the longest text, "-d.ddddddE-ddd", rounded up


@njit(cache=True, nogil=True)
def _write_scores(flat: np.ndarray, slots: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Write the texts of the values it can round surely into slots (one row each) and their
    lengths; return which values it left to format_score."""
    unsure = np.zeros(len(flat), np.bool_)
    digits = np.empty(7, np.uint8)
    for i in range(len(flat)):
        x = flat[i]
        a = abs(x)
        if not (SMALLEST_NORMAL <= a <= 1e300):
            unsure[i] = True  # zero, subnormal, huge or not finite
            continue
        e = int(math.floor(math.log10(a)))
        s = 0.0
        for _ in range(3):  # log10 can be off by one next to a power of ten
            s = a * 10.0 ** (6 - e) if e <= 6 else a / 10.0 ** (e - 6)
            if s < 1e6:
                e -= 1
            elif s >= 1e7:
                e += 1
            else:
                break
        # (a product next to 1e6 or 1e7 rounds to the same power of ten from either exponent)
        low = math.floor(s)
        if not 1e6 <= s < 1e7 or abs(s - low - 0.5) < 1e-7:  # a tie of the last digit
            unsure[i] = True
            continue
        m = int(low) + (1 if s - low > 0.5 else 0)
        if m == 10_000_000:  # rounded up to the next power of ten
            m, e = 1_000_000, e + 1
        n = 0
        if x < 0:
            slots[i, n] = 45  # "-"
            n += 1
        for k in range(6, -1, -1):
            digits[k] = 48 + m % 10
            m //= 10
        last = 6
        while last > 0 and digits[last] == 48:
            last -= 1
        slots[i, n] = digits[0]
        n += 1
        if last > 0:
            slots[i, n] = 46  # "."
            n += 1
            for k in range(1, last + 1):
                slots[i, n] = digits[k]
                n += 1
        slots[i, n] = 69  # "E"
        n += 1
        if e < 0:
            slots[i, n] = 45
            n += 1
        power = abs(e)
        width = 1 if power < 10 else 2 if power < 100 else 3
        for k in range(width - 1, -1, -1):
            slots[i, n + k] = 48 + power % 10
            power //= 10
        lengths[i] = n + width
    return unsure


def _non_finite(x: float) -> str:
    """Java's Double.toString of a value that is not finite."""
    return "NaN" if math.isnan(x) else "Infinity" if x > 0 else "-Infinity"
