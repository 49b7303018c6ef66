"""Number formats: Java's Double.toString for metrics, DecimalFormat("0.######E0") for scores."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np


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
    """format_score of every value: "%.6E" then trimmed, with the reference's decimal
    half-even rounding only for the rare 8-significant-digit ties (ending in 5)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    out = np.empty(len(flat), dtype=object)
    for i, text in enumerate(np.char.mod("%.6E", flat).tolist()):
        out[i] = _trim(text)
    ties = [i for i, v in enumerate(flat.tolist()) if _is_tie(v)]
    for i in ties:
        out[i] = format_score(flat[i])
    return out.reshape(np.shape(values))


def _trim(text: str) -> str:
    mantissa, exponent = text.split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    e = int(exponent)
    if mantissa in ("0", "-0"):
        return "0E0"
    return f"{mantissa}E{e}"


def _is_tie(v: float) -> bool:
    digits = repr(abs(v)).split("e")[0].replace(".", "").lstrip("0")
    return len(digits) == 8 and digits.endswith("5")
