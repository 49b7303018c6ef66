"""Fast path for plain blocks: Arrow's multithreaded CSV parser instead of the NumPy splitter.

A block is plain when it has no double quote, no white space other than the CR of a CR LF
end-of-line, and no over-long line: then every rule of data.md §1 (stripping, unquoting, lone
CR as a character) is a no-op, and Arrow's parser gives the same fields as `fields`. A line
with the wrong number of fields makes Arrow fail, and the block takes the general path.

Integer-looking columns are parsed as int16 (an integer parse costs a fraction of a string
one) and their dictionaries turned back into strings. That is exact only if every raw field
is the canonical decimal form of its value; forms Arrow also accepts ("05", "-0", "0x1F")
are always longer than the canonical form for int16 values, so the check is that the total
length of the canonical strings equals the total length of the raw fields in the block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv

from openaml.ml.data.fields import COMMA
from openaml.ml.data.lines import LineBlock

_PROBE_LINES = 1000
_NOT_PLAIN = (b'"', b" ", b"\t", b"\x0b", b"\x0c")
_COLUMN = re.compile(r"CSV column #(\d+)")


def is_plain(block: LineBlock, n_fields: int) -> bool:
    """True when the fast path may parse the block (a comma count that cannot fit fails)."""
    if block.too_large.any() or len(block) == 0:
        return False
    body = block.data[int(block.starts[0]):]
    text = body.tobytes()
    if any(byte in text for byte in _NOT_PLAIN):
        return False
    if b"\r" in text and text.count(b"\r") != text.count(b"\r\n"):
        return False
    return int(np.count_nonzero(body == COMMA)) == len(block) * (n_fields - 1)


def probe_integers(block: LineBlock, names: Sequence[str], encode: Sequence[bool]) -> npt.NDArray[np.bool_]:
    """Columns that Arrow's type inference finds to be int16-sized integers in the first lines."""
    start = int(block.starts[0])
    end = int(block.ends[min(len(block), _PROBE_LINES) - 1])
    flags = np.zeros(len(names), dtype=np.bool_)
    try:
        table = csv.read_csv(pa.py_buffer(block.data[start:end].tobytes()),
                             read_options=csv.ReadOptions(column_names=list(names)),
                             parse_options=csv.ParseOptions(quote_char=False),
                             convert_options=csv.ConvertOptions(null_values=[""]))
    except pa.ArrowInvalid:   # a bad line among them: parse every column as strings
        return flags
    for j, column in enumerate(table.columns):
        if encode[j] and pa.types.is_integer(column.type):
            low, high = pc.min_max(column).values()
            flags[j] = low.as_py() is None or (low.as_py() > -32768 and high.as_py() < 32768)
    return flags


def parse_plain(block: LineBlock, names: Sequence[str], encode: Sequence[bool],
                integers: npt.NDArray[np.bool_]) -> list[pa.Array] | None:
    """Columns as `fields.build_columns` makes them, or None when the block must go the general
    way. `integers` (updated in place) says which columns to parse as int16; a column whose
    values turn out not to be integers is switched to strings and the block parsed again."""
    text = block.data[int(block.starts[0]):]
    while True:
        try:
            table = _read(text, names, integers)
            break
        except pa.ArrowInvalid as exc:
            column = _COLUMN.search(str(exc))
            if column is None or "conversion error" not in str(exc):
                return None
            integers[int(column.group(1))] = False
    if table.num_rows != len(block):
        return None
    columns = [chunked.combine_chunks() for chunked in table.columns]
    dense = [j for j, column in enumerate(columns) if integers[j] and column.null_count == 0]
    canonical = 0
    if dense:
        encoded, canonical = _encode_integers([columns[j] for j in dense])
        for j, column in zip(dense, encoded):
            columns[j] = column
    done = set(dense)
    for j, column in enumerate(columns):
        if j in done:
            continue
        if integers[j]:
            encoded = pc.dictionary_encode(column)
            dictionary = pc.cast(encoded.dictionary, pa.string())
            counts = np.bincount(encoded.indices.drop_null().to_numpy(), minlength=len(dictionary))
            canonical += int(np.dot(counts, pc.binary_length(dictionary).to_numpy()))
            columns[j] = pa.DictionaryArray.from_arrays(encoded.indices, dictionary)
        else:
            canonical += int(pc.sum(pc.binary_length(column)).as_py() or 0)
            if encode[j]:
                columns[j] = pc.dictionary_encode(column)
    raw = int((block.ends - block.starts).sum()) - len(block) * (len(names) - 1)
    return columns if canonical == raw else None


def _encode_integers(columns: list[pa.Array]) -> tuple[list[pa.DictionaryArray], int]:
    """Dictionary-encode int16 columns without nulls all at once: one bincount over
    (column, value) keys gives every column's distinct values (ascending) and their codes.
    Returns the columns and the total length of their values written canonically."""
    values = np.stack([column.to_numpy() for column in columns]).astype(np.int32)   # (C, L)
    low = int(values.min())
    span = int(values.max()) - low + 1
    keys = values - low
    keys += (np.arange(len(columns), dtype=np.int32) * span)[:, None]
    counts = np.bincount(keys.ravel(), minlength=len(columns) * span).reshape(len(columns), span)
    present = counts > 0
    codes = (np.cumsum(present, axis=1, dtype=np.int32) - 1).ravel()
    indices = codes[keys]
    column_of, value = np.nonzero(present)
    strings = pc.cast(pa.array(value + low, type=pa.int32()), pa.string())
    canonical = int(np.dot(counts[present], pc.binary_length(strings).to_numpy()))
    bounds = np.concatenate(([0], np.cumsum(present.sum(axis=1))))
    return [pa.DictionaryArray.from_arrays(indices[c], strings.slice(bounds[c], bounds[c + 1] - bounds[c]))
            for c in range(len(columns))], canonical


def _read(text: npt.NDArray[np.uint8], names: Sequence[str],
          integers: npt.NDArray[np.bool_]) -> pa.Table:
    return csv.read_csv(
        pa.py_buffer(text.tobytes()),
        read_options=csv.ReadOptions(column_names=list(names), block_size=1 << 22),
        parse_options=csv.ParseOptions(quote_char=False),
        convert_options=csv.ConvertOptions(
            column_types={n: pa.int16() if integers[j] else pa.string()
                          for j, n in enumerate(names)},
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False))
