"""Number formats: Java's Double.toString for metrics, DecimalFormat("0.######E0") for scores."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

SMALLEST_NORMAL = 2.2250738585072014e-308


def format_metric(x: float) -> str:
    """Shortest round-trip digits; plain for 1e-3 <= |x| < 1e7, else d.dddE<exp> (eval §1.3)."""
    if x == 0:
        return "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = repr(float(x))
        return text if "." in text else text + ".0"
    d = Decimal(repr(float(x)))
    sign, digit_tuple, _ = d.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    return ("-" if sign else "") + digits[0] + "." + (digits[1:] or "0") + "E" + str(d.adjusted())


def format_score(x: float) -> str:
    """One batch-prediction number (eval §2.3 reference algorithm)."""
    if x == 0:
        return "0E0"
    d = Decimal(repr(abs(float(x))))
    e = d.adjusted()
    m = d.scaleb(-e).quantize(Decimal("1.000000"), rounding=ROUND_HALF_EVEN)
    if m >= 10:
        m, e = Decimal("1"), e + 1
    digits = format(m, "f").rstrip("0").rstrip(".")
    return ("-" if x < 0 else "") + digits + "E" + str(e)


def format_scores(values: np.ndarray) -> np.ndarray:
    """format_score of every value, with NumPy string operations: "%.6E" trimmed, and the
    reference's decimal half-even rounding only for ties: values whose shortest repr has
    exactly 8 significant digits, the last a 5 (they round-trip at 8 digits, not at 7), and
    for subnormal values."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if len(flat) == 0:
        return np.empty(np.shape(values), dtype=object)
    six = np.char.mod("%.6E", flat)
    parts = np.char.partition(six, "E")
    mantissa = np.char.rstrip(np.char.rstrip(parts[:, 0], "0"), ".")
    exponent = parts[:, 2].astype(np.int64).astype(str)
    out = np.char.add(np.char.add(mantissa, "E"), exponent).astype(object)
    out[(flat == 0) | (mantissa == "0") | (mantissa == "-0")] = "0E0"
    seven = np.char.mod("%.7E", flat).astype("S16")  # "-d.dddddddE-ddd" at most
    eighth = seven.view("S1").reshape(len(flat), 16)[np.arange(len(flat)), 8 + (flat < 0)]
    candidates = np.flatnonzero(eighth == b"5")
    ties = candidates[(seven[candidates].astype(np.float64) == flat[candidates])
                      & (six[candidates].astype(np.float64) != flat[candidates])]
    # subnormal values: their shortest repr has fewer digits than "%.6E" shows
    for i in np.concatenate((ties, np.flatnonzero((flat != 0) & (np.abs(flat) < SMALLEST_NORMAL)))):
        out[i] = format_score(flat[i])
    return out.reshape(np.shape(values))
