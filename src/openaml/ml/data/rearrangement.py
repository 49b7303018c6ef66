"""DataRearrangement (data.md §5): parsing the split instruction and selecting records exactly.

Percentages are kept as exact fractions, so every comparison is integer arithmetic:

* sequential: record ``i`` of ``N`` is selected when ``ceil(begin*N/100) <= i < ceil(end*N/100)``;
* random: ``p = 100*(z >> 11)/2^53`` with ``z = mix64((K + b) mod 2^64)`` (``K`` from SHA-256 of
  ``seed + "\\n" + fileKey``, ``b`` the record's byte offset), and ``begin <= p < end`` becomes
  ``begin*2^53 <= 100*(z >> 11) < end*2^53``, evaluated on uint64 (or Python ints for
  non-integer percentages).

``complement`` inverts the selection, so a range and its complement partition the records.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from openaml.ml.documents import load_object
from openaml.ml.errors import InputError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1 << 53


class RearrangementError(InputError):
    """A DataRearrangement string that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Rearrangement:
    """A parsed split: select records whose position lies in [begin, end) (or outside it)."""

    begin: Fraction = Fraction(0)
    end: Fraction = Fraction(100)
    complement: bool = False
    strategy: str = "sequential"
    seed: str = ""

    @property
    def selects_all(self) -> bool:
        """True when every record is selected whatever the data (no record count needed)."""
        if self.complement:
            return self.begin == self.end
        return self.begin == 0 and self.end == 100

    @property
    def needs_count(self) -> bool:
        """True when the selection depends on the total number of records N."""
        return self.strategy == "sequential" and not self.selects_all

    def sequential_range(self, total: int) -> tuple[int, int]:
        """The index range [lo, hi) of records in [begin, end) for `total` records."""
        return (math.ceil(self.begin * total / 100), math.ceil(self.end * total / 100))

    def select_sequential(self, first: int, count: int, total: int) -> npt.NDArray[np.bool_]:
        """Selection mask for records first .. first+count-1 of `total`."""
        lo, hi = self.sequential_range(total)
        index = np.arange(first, first + count, dtype=np.int64)
        inside = (index >= lo) & (index < hi)
        return ~inside if self.complement else inside

    def select_random(self, file_key: str, offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Selection mask for records starting at byte `offsets` of the file named `file_key`."""
        position = random_positions(self.seed, file_key, offsets)  # 100*(z>>11), exact in uint64
        if self.begin.denominator == 1 and self.end.denominator == 1:
            lo = np.uint64(int(self.begin) * _TWO53)
            hi = np.uint64(int(self.end) * _TWO53)
            inside = (position >= lo) & (position < hi)
        else:  # exact rational comparison on Python integers (rare: decimal percentages)
            lo_r, hi_r = self.begin * _TWO53, self.end * _TWO53
            inside = np.fromiter((lo_r <= int(v) < hi_r for v in position.tolist()),
                                 dtype=np.bool_, count=len(position))
        return ~inside if self.complement else inside

    def select(self, file_key: str, first: int, offsets: npt.NDArray[np.int64],
               total: int | None) -> npt.NDArray[np.bool_]:
        """Selection mask for consecutive records `first ..` at byte `offsets` of one file."""
        if self.selects_all:
            return np.ones(len(offsets), dtype=np.bool_)
        if self.strategy == "random":
            return self.select_random(file_key, offsets)
        assert total is not None, "a sequential split needs the record count"
        return self.select_sequential(first, len(offsets), total)


def file_hash(seed: str, file_key: str) -> int:
    """K: the first 8 bytes (big-endian) of SHA-256(seed + "\\n" + fileKey)."""
    digest = hashlib.sha256((seed + "\n" + file_key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def mix64(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The SplitMix64 finaliser, modulo 2^64, on a uint64 array."""
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MUL1
        z = (z ^ (z >> np.uint64(27))) * _MUL2
        return z ^ (z >> np.uint64(31))


def random_positions(seed: str, file_key: str,
                     offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """100 * (z >> 11) per record (p(i) scaled by 2^53; below 100 * 2^53 < 2^64)."""
    with np.errstate(over="ignore"):
        z = mix64(np.uint64(file_hash(seed, file_key)) + offsets.astype(np.uint64))
        return (z >> np.uint64(11)) * np.uint64(100)


MAX_DECIMAL_PLACES = 1_000  # of a percentage, read exactly (1e-999999999 would be a huge fraction)


def parse_rearrangement(text: str | None) -> Rearrangement:
    """Parse a DataRearrangement JSON string (None or blank = select everything)."""
    if text is None or not text.strip():
        return Rearrangement()
    doc = load_object(text, "DataRearrangement", RearrangementError, exact=True)  # percents: exactly
    splitting = doc.get("splitting")
    if splitting is None:
        return Rearrangement()
    if not isinstance(splitting, dict):
        raise RearrangementError("DataRearrangement 'splitting' must be a JSON object")
    begin = _percent(splitting.get("percentBegin", 0), "percentBegin")
    end = _percent(splitting.get("percentEnd", 100), "percentEnd")
    if begin > end:
        raise RearrangementError(
            f"DataRearrangement percentBegin ({_show(begin)}) is greater than percentEnd ({_show(end)})")
    strategy = splitting.get("strategy", "sequential")
    if strategy is None:
        strategy = "sequential"
    if not isinstance(strategy, str) or strategy not in ("sequential", "random"):
        raise RearrangementError(
            f"DataRearrangement strategy {strategy!r} is unknown; use \"sequential\" or \"random\"")
    return Rearrangement(begin=begin, end=end, complement=_complement(splitting.get("complement", False)),
                         strategy=strategy, seed=_seed(splitting))


def _percent(value: Any, key: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RearrangementError(f"DataRearrangement {key} must be a number from 0 to 100")
    if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity
        raise RearrangementError(f"DataRearrangement {key} must be a number from 0 to 100")
    # decimal text such as 33.3 means exactly 333/10, not the nearest binary double (the JSON
    # is read with Decimal: 33.33333333333333333333 and 1e-400 are what they say)
    if not 0 <= value <= 100:  # before a Fraction is made: 1e999999999 would be a huge one
        raise RearrangementError(f"DataRearrangement {key} ({str(value)[:40]}) is outside 0-100")
    if isinstance(value, Decimal) and value and value.as_tuple().exponent < -MAX_DECIMAL_PLACES:  # type: ignore[operator]
        raise RearrangementError(f"DataRearrangement {key} has more than {MAX_DECIMAL_PLACES} decimal places")
    return Fraction(value)


def _complement(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RearrangementError(f"DataRearrangement complement must be true or false, not {value!r}")


def _seed(splitting: dict[str, Any]) -> str:
    params = splitting.get("strategyParams")
    if params is not None and not isinstance(params, dict):  # its seed would be silently lost
        raise RearrangementError(f"DataRearrangement strategyParams must be a JSON object such as "
                                 f"{{\"randomSeed\": \"s\"}}, not {json.dumps(params, default=float)[:40]}")
    seed = params.get("randomSeed") if params is not None else None
    if seed is None:
        seed = splitting.get("randomSeed", "")
    if seed is None:
        return ""
    if isinstance(seed, bool):
        return "true" if seed else "false"
    # a number, or numbers inside a list or object, written as when read as doubles (as the
    # seeds of existing datasources hash)
    return seed if isinstance(seed, str) else json.dumps(seed, default=float)


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))
