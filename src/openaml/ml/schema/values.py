"""Vectorised interpretation of raw field strings by attribute type (spec data.md §3.2, §8).

Materialized datasources keep every field as its raw string (surrounding white space stripped,
empty -> null). A consumer reads a column with the type its own schema gives (a model's training
schema overrides the datasource's, data.md §3.6), so coercion happens here, at read time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from openaml.ml.schema.model import AttributeType

WHITE_SPACE = " \t\x0b\x0c\r"  # stripped around every value (a CR too: data.md §1)
# possessive quantifiers: without them Python's re tried every split of a value's digits between
# "[0-9]+" and "[0-9]*" (4.8 s for 15,000 digits and a letter, on the event loop in Predict)
# (\Z: the end of the value; Python's $ also matches before a final LF, which read "35\n" as 35
# in Predict while batches found it invalid)
NUMBER_PATTERN = r"^[+-]?([0-9]++\.?[0-9]*+|\.[0-9]++)([eE][+-]?[0-9]++)?\Z"
BINARY_FALSE = ("0", "n", "no", "f", "false")
BINARY_TRUE = ("1", "y", "yes", "t", "true")
DICTIONARIES_KEPT = 32  # coerced dictionaries remembered (_coerced_dictionary)


@dataclass(frozen=True)
class Coerced:
    """A column read as one attribute type.

    values: float64 (NUMERIC, finite), bool (BINARY) or string (CATEGORICAL, TEXT); null where the
    field is missing or invalid. invalid: bool mask, true where a non-empty field was invalid.
    """

    values: pa.Array
    invalid: pa.BooleanArray


def coerce_column(column: pa.Array | pa.ChunkedArray, attr_type: AttributeType) -> Coerced:
    """Interpret raw strings (plain or dictionary-encoded, null = missing) as `attr_type`."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        inner = _coerced_dictionary(column.dictionary, attr_type)
        indices = column.indices
        return Coerced(
            values=inner.values.take(indices),
            invalid=pc.fill_null(inner.invalid.take(indices), False),
        )
    if not _is_string(column):
        column = pc.cast(column, pa.string())
    if attr_type is AttributeType.NUMERIC:
        return _numeric(column)
    if attr_type is AttributeType.BINARY:
        return _binary(column)
    return Coerced(values=column, invalid=_all_false(len(column)))


def coerce_floats(column: pa.Array | pa.ChunkedArray, attr_type: AttributeType) -> npt.NDArray[np.float64]:
    """coerce_column's values of a NUMERIC or BINARY column (BINARY: 1.0 or 0.0) as float64,
    NaN where a field is missing or invalid. A dictionary-encoded column is coerced by its
    dictionary, straight to float64, and gathered by its indices in one compiled pass, without
    the Arrow arrays of coerce_column (values with a mask, invalid flags, each a copy): reading
    the 1.4 M training records of the tabular benchmark spent more CPU on those than on
    everything else of its first pass."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        return _float_values(coerce_column(column, attr_type).values)
    dictionary = column.dictionary
    entries = _remembered(("floats", attr_type), dictionary, lambda: _float_entries(dictionary, attr_type))
    indices = column.indices
    if len(indices) == 0:
        return np.zeros(0)
    if indices.type != pa.int32():
        indices = indices.cast(pa.int32())
    validity, values = indices.buffers()[:2]
    # read-only either way (a writable array would be another type to the compiled gather)
    bits = np.frombuffer(validity if validity is not None and indices.null_count else b"", np.uint8)
    positions = np.frombuffer(values, np.int32)[indices.offset:indices.offset + len(indices)]
    return _gathered(entries, positions, bits, indices.offset)


def _float_entries(dictionary: pa.Array, attr_type: AttributeType) -> npt.NDArray[np.float64]:
    """The float64 value of each entry of a dictionary of raw strings, NaN where invalid."""
    if attr_type is AttributeType.NUMERIC and _is_string(dictionary):
        numbers, valid, _ = _parsed(dictionary)
        numbers[~valid] = np.nan
        return numbers
    return _float_values(coerce_column(dictionary, attr_type).values)


@njit(cache=True, nogil=True)
def _gathered(entries: npt.NDArray[np.float64], positions: npt.NDArray[np.int32], bits: npt.NDArray[np.uint8],
              offset: int) -> npt.NDArray[np.float64]:
    """entries[positions], NaN where the validity `bits` (from bit `offset` on; none: all
    valid) mark a missing field, whose position may be anything."""
    out = np.empty(len(positions))
    for i in range(len(positions)):
        if len(bits) and not (bits[(offset + i) >> 3] >> ((offset + i) & 7)) & 1:
            out[i] = np.nan
        else:
            out[i] = entries[positions[i]]
    return out


def _float_values(values: pa.Array) -> npt.NDArray[np.float64]:
    """Numbers or yes/no values as float64, NaN for null: a writable array of its own, like
    coerce_floats' gathers (a read-only view of Arrow's buffer would be another type to the
    compiled kernels, compiled again on first use after the warm-up)."""
    if not pa.types.is_floating(values.type):
        values = pc.cast(values, pa.float64())
    return np.array(pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False), np.float64)


_kept: OrderedDict[tuple[object, ...], tuple[pa.Array, Future[Any]]] = OrderedDict()
_kept_lock = threading.Lock()
R = TypeVar("R")


def _coerced_dictionary(dictionary: pa.Array, attr_type: AttributeType) -> Coerced:
    """coerce_column of a dictionary, remembered (`_remembered`)."""
    return _remembered((attr_type,), dictionary, lambda: coerce_column(dictionary, attr_type))


def _remembered(kind: tuple[object, ...], dictionary: pa.Array, make: Callable[[], R]) -> R:
    """make(), a coercion of `dictionary` (`kind` says which), remembered for the next slices
    of the same stored batch, which share it: a 117,000-record batch of the tabular
    benchmark, read as two slices, had its 97,000 distinct amounts parsed twice. Two threads
    reading slices of one batch at once wait for one coercion. The key holds the dictionary's
    buffers, which the entry keeps alive, so no other array can take their addresses while it
    is kept."""
    key = (*kind, len(dictionary), dictionary.offset,
           *(0 if b is None else b.address for b in dictionary.buffers()))
    mine: Future[R] = Future()
    with _kept_lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
        else:
            _kept[key] = (dictionary, mine)
            while len(_kept) > DICTIONARIES_KEPT:
                _kept.popitem(last=False)
    if found is not None:
        result: R = found[1].result()
        return result
    try:
        value = make()
    except BaseException as exc:
        with _kept_lock:
            if _kept.get(key, (None, None))[1] is mine:
                del _kept[key]
        mine.set_exception(exc)
        raise
    mine.set_result(value)
    return value


def _numeric(column: pa.Array) -> Coerced:
    """NUMERIC values: the strings that match NUMBER_PATTERN and make a finite float64 (`_parsed`)."""
    numbers, valid, present = _parsed(column)
    return Coerced(values=pa.array(numbers, pa.float64(), mask=~valid), invalid=pa.array(present & ~valid))


def _parsed(column: pa.Array) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Each string's number, whether it is one and whether the field is present: a number
    matches NUMBER_PATTERN and makes a finite float64, as Arrow's correctly rounded cast makes
    it (missing fields are none). One
    compiled pass parses them (Clinger's fast path: significant digits making at most 2^53,
    times or over a power of ten up to 10^22, is one correctly rounded operation); Arrow casts
    the few others. Reading the tabular benchmark's numbers (a 97,000-entry dictionary a
    batch) cost three times more through Arrow's cast and its masks."""
    numbers, status = parse_numbers(column)
    present = (pc.is_valid(column).to_numpy(zero_copy_only=False) if column.null_count
               else np.ones(len(column), np.bool_))
    status[~present] = NOT_A_NUMBER  # a missing field's bytes (often none) are no number
    hard = np.flatnonzero(status == HARD)
    if len(hard):  # past the fast path: Arrow's cast; "1e400" is no number (not finite)
        cast = pc.cast(column.take(pa.array(hard)), pa.float64()).to_numpy(zero_copy_only=False)
        numbers[hard] = cast
        status[hard] = np.where(np.isfinite(cast), NUMBER, NOT_A_NUMBER)
    return numbers, status == NUMBER, present


NOT_A_NUMBER, NUMBER, HARD = 0, 1, 2  # parse_numbers' status of a string
_POWERS_OF_TEN = np.array([10.0 ** k for k in range(23)])  # each exact in float64


def parse_numbers(column: pa.Array) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    """Each string's number (NaN where there is none yet) and status: NUMBER, NOT_A_NUMBER
    (no match of NUMBER_PATTERN) or HARD (a match past the fast path); missing fields are
    read as their bytes."""
    offsets_buffer, data_buffer = column.buffers()[1:3]
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, width)[column.offset:column.offset + len(column) + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return _parse(data, offsets.astype(np.int64), _POWERS_OF_TEN)


@njit(cache=True, nogil=True)
def _parse(data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64],
           powers: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    """parse_numbers' compiled pass: NUMBER_PATTERN, ^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$,
    with the significant digits gathered as an integer and the decimal exponent beside."""
    n = len(offsets) - 1
    numbers = np.full(n, np.nan)
    status = np.zeros(n, np.uint8)
    for k in range(n):
        p, end = offsets[k], offsets[k + 1]
        negative = False
        if p < end and (data[p] == 43 or data[p] == 45):  # + -
            negative = data[p] == 45
            p += 1
        mantissa, significant, exponent, digits, lost = 0, 0, 0, 0, False
        point = False
        while p < end:
            byte = data[p]
            if byte == 46 and not point:  # .
                point = True
            elif 48 <= byte <= 57:
                digits += 1
                if mantissa == 0 and byte == 48:  # a leading zero
                    if point:
                        exponent -= 1
                elif significant < 18:  # 18 digits fit an int64; past 16 the fast path ends anyway
                    mantissa = mantissa * 10 + (byte - 48)
                    significant += 1
                    if point:
                        exponent -= 1
                else:
                    lost = True  # a 19th significant digit: Arrow's cast decides
            else:
                break
            p += 1
        if digits == 0:
            continue
        if p < end and (data[p] == 69 or data[p] == 101):  # E e
            p += 1
            negative_power = False
            if p < end and (data[p] == 43 or data[p] == 45):
                negative_power = data[p] == 45
                p += 1
            power, power_digits = 0, 0
            while p < end and 48 <= data[p] <= 57:
                power = min(power * 10 + (data[p] - 48), 100_000)
                power_digits += 1
                p += 1
            if power_digits == 0:
                continue
            exponent += -power if negative_power else power
        if p != end:
            continue
        if lost:
            status[k] = HARD
            continue
        if mantissa == 0:
            value = 0.0
        elif mantissa <= 1 << 53 and -22 <= exponent <= 22:
            value = float(mantissa) * powers[exponent] if exponent >= 0 else float(mantissa) / powers[-exponent]
        else:
            status[k] = HARD
            continue
        numbers[k] = -value if negative else value
        status[k] = NUMBER
    return numbers, status


def _is_string(column: pa.Array) -> bool:
    return bool(pa.types.is_string(column.type) or pa.types.is_large_string(column.type))


def _binary(column: pa.Array) -> Coerced:
    lowered = pc.utf8_lower(column)
    is_true = pc.fill_null(pc.is_in(lowered, value_set=pa.array(BINARY_TRUE)), False)
    is_false = pc.fill_null(pc.is_in(lowered, value_set=pa.array(BINARY_FALSE)), False)
    known = pc.or_(is_true, is_false)
    values = pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))
    invalid = pc.and_(pc.invert(known), pc.is_valid(column))
    return Coerced(values=values, invalid=invalid)


def _all_false(length: int) -> pa.BooleanArray:
    return pa.nulls(length, pa.bool_()).fill_null(False)
