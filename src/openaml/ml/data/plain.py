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
The value counts come out of the encoding and are handed on (`Parsed.counts`), so the
statistics never count those columns again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from numba import njit

from openaml.ml.data.fields import COMMA
from openaml.ml.data.lines import LineBlock
from openaml.ml.data.statistics import entry_counts

_PROBE_LINES = 1000
_GROUP = 64          # integer columns encoded together
_NOT_PLAIN = (b'"', b" ", b"\t", b"\x0b", b"\x0c")
_COLUMN = re.compile(r"CSV column #(\d+)")


class Parsed(NamedTuple):
    """A plain block's columns, and per column its counts per dictionary entry where known."""

    columns: list[pa.Array]
    counts: Sequence[npt.NDArray[np.int64] | None]


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
            flags[j] = low.as_py() is None or (low.as_py() >= -32768 and high.as_py() < 32768)
    return flags


def read_plain(block: LineBlock, names: Sequence[str],
               integers: npt.NDArray[np.bool_]) -> pa.Table | None:
    """Arrow's parse of the block (one column per field), or None when the block must go the
    general way. `integers` (updated in place) says which columns to parse as int16; a column
    whose values turn out not to be integers is switched to strings and the block parsed again."""
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
    return table if table.num_rows == len(block) else None


def encode_plain(block: LineBlock, table: pa.Table, encode: Sequence[bool]) -> Parsed | None:
    """The columns of `read_plain`'s table as `fields.build_columns` makes them, or None when
    some integer field is not written canonically (the block must go the general way)."""
    chunked = table.columns
    columns: list[pa.Array] = [None] * len(chunked)
    counts: list[npt.NDArray[np.int64] | None] = [None] * len(chunked)
    integer = [pa.types.is_integer(column.type) for column in chunked]
    dense = [j for j, column in enumerate(chunked) if integer[j] and column.null_count == 0]
    canonical = 0
    if dense:
        encoded, dense_counts, canonical = _encode_integers(table, dense)
        for j, column, count in zip(dense, encoded, dense_counts, strict=True):
            columns[j], counts[j] = column, count
    done = set(dense)
    for j, whole in enumerate(chunked):
        if j in done:
            continue
        column = whole.combine_chunks()
        if integer[j]:
            encoded = pc.dictionary_encode(column)
            dictionary = pc.cast(encoded.dictionary, pa.string())
            counts[j] = count = entry_counts(encoded)
            canonical += int(np.dot(count, pc.binary_length(dictionary).to_numpy()))
            columns[j] = pa.DictionaryArray.from_arrays(encoded.indices, dictionary)
        else:
            canonical += int(pc.sum(pc.binary_length(column)).as_py() or 0)
            columns[j] = pc.dictionary_encode(column) if encode[j] else column
    raw = int((block.ends - block.starts).sum()) - len(block) * (len(chunked) - 1)
    return Parsed(columns, counts) if canonical == raw else None


def encode_int16(values: npt.NDArray[np.int16]) -> Parsed:
    """The dictionary-encoded columns of `values` (fields × records, no missing value), as
    `encode_plain` makes them."""
    columns, counts, _ = _encode_groups(values[first:first + _GROUP] for first in range(0, len(values), _GROUP))
    return Parsed(columns, counts)


def _encode_integers(table: pa.Table, columns: list[int]) -> tuple[list[pa.DictionaryArray],
                                                                   list[npt.NDArray[np.int64]], int]:
    """Dictionary-encode the table's int16 `columns` (without nulls). The values of a group of
    columns come as one column-major tensor per chunk (Arrow copies them in C++; a copy per
    column and chunk from Python took five times longer)."""
    return _encode_groups(_table_values(table, columns[first:first + _GROUP])
                          for first in range(0, len(columns), _GROUP))


def _table_values(table: pa.Table, columns: list[int]) -> npt.NDArray[np.int16]:
    parts = [np.asarray(batch.to_tensor(row_major=False)).T for batch in table.select(columns).to_batches()]
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(columns), 0), np.int16)


def _encode_groups(groups: Iterable[npt.NDArray[np.int16]]) -> tuple[list[pa.DictionaryArray],
                                                                      list[npt.NDArray[np.int64]], int]:
    """Dictionary-encode groups of columns of values (fields × records), _GROUP columns at a
    time (small arrays stay in cache and are recycled by malloc instead of being mapped
    afresh). Returns the columns, their counts per dictionary entry, and the total length of
    their values written canonically."""
    encoded: list[pa.DictionaryArray] = []
    counts: list[npt.NDArray[np.int64]] = []
    canonical = 0
    for values in groups:
        group = _encode_group(values)
        encoded += group[0]
        counts += group[1]
        canonical += group[2]
    return encoded, counts, canonical


def _encode_group(values: npt.NDArray[np.int16]) -> tuple[list[pa.DictionaryArray],
                                                          list[npt.NDArray[np.int64]], int]:
    """Every column's distinct values (ascending), their counts and each row's code, by one
    compiled sweep over the group's values (_encode_matrix); the values' texts are looked up
    (_int16_texts), and the columns' codes are slices of one Arrow array."""
    indices, distinct, counts, ends = _encode_matrix(values)
    texts, lengths = _int16_texts()
    at = distinct.astype(np.int64) - np.iinfo(np.int16).min
    strings = texts.take(pa.array(at))
    canonical = int(np.dot(counts, lengths[at]))
    codes, n = pa.array(indices.reshape(-1)), indices.shape[1]
    return ([pa.DictionaryArray.from_arrays(codes.slice(c * n, n), strings.slice(ends[c], ends[c + 1] - ends[c]),
                                            safe=False)      # codes are in range by construction
             for c in range(len(values))],
            [counts[ends[c]:ends[c + 1]] for c in range(len(values))], canonical)


@functools.cache
def _int16_texts() -> tuple[pa.StringArray, npt.NDArray[np.int64]]:
    """The canonical text of every int16 value, from the smallest, and its length in bytes."""
    texts = pa.array([str(v) for v in range(np.iinfo(np.int16).min, np.iinfo(np.int16).max + 1)], pa.string())
    return texts, pc.binary_length(texts).to_numpy().astype(np.int64)


@njit(cache=True, nogil=True)
def _encode_matrix(values: npt.NDArray[np.int16]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32],
                                                             npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dictionary encoding of each row of `values` (columns × records): the code of every
    value (int32), then for all columns end to end their distinct values in ascending order
    and their counts, and where each column's part ends."""
    n_columns, n = values.shape
    count = np.zeros(1 << 16, np.int64)
    code = np.zeros(1 << 16, np.int32)
    indices = np.empty((n_columns, n), np.int32)
    distinct = np.empty(n_columns * min(n, 1 << 16), np.int32)
    counts = np.empty(len(distinct), np.int64)
    ends = np.zeros(n_columns + 1, np.int64)
    total = 0
    for c in range(n_columns):
        low, high = 1 << 16, -1
        for i in range(n):
            v = values[c, i] + 32768
            count[v] += 1
            low, high = min(low, v), max(high, v)
        for v in range(low, high + 1):
            if count[v] > 0:
                code[v] = total - ends[c]
                distinct[total], counts[total] = v - 32768, count[v]
                count[v] = 0
                total += 1
        ends[c + 1] = total
        for i in range(n):
            indices[c, i] = code[values[c, i] + 32768]
    # copies: the statistics keep the counts, which must not hold the whole bound-sized buffer
    return indices, distinct[:total].copy(), counts[:total].copy(), ends


def _read(text: npt.NDArray[np.uint8], names: Sequence[str],
          integers: npt.NDArray[np.bool_]) -> pa.Table:
    return csv.read_csv(
        pa.py_buffer(text),     # no copy; two chunks: both cores parse, few chunks to gather
        read_options=csv.ReadOptions(column_names=list(names), block_size=len(text) // 2 + 1),
        parse_options=csv.ParseOptions(quote_char=False),
        convert_options=csv.ConvertOptions(
            column_types={n: pa.int16() if integers[j] else pa.string()
                          for j, n in enumerate(names)},
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False))
