"""Fast path for blocks with white space or quoted values: Arrow's parse, then stripping.

Text with spaces and values quoted for a comma inside (`"late, again"`) are the common case
of tabular files, and would send every block to the general path (`fields`). Arrow's
multithreaded parser reads such a block exactly as the rules of data.md §1 do, once its
string values are stripped of white space (empty -> missing), when the block is
*trimmable*: no over-long line, no lone CR (Arrow ends a line there), no byte-order mark
at its start (Arrow drops one there; a file's own is gone already), every line with the
schema's field count, and every quote where Arrow's parser takes it as the rules do: opening
a value right after a comma or the start of its line, closing it right before a comma or the
end of its line, or doubled inside it. `test_data_trimmed.py` holds both paths to the same
columns on generated blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from numba import njit

from openaml.ml.data.fields import COMMA, QUOTE
from openaml.ml.data.lines import BOM, LineBlock
from openaml.ml.data.plain import Parsed
from openaml.ml.schema import WHITE_SPACE

CR, LF = 13, 10
_WHITE_BYTES = np.zeros(256, np.bool_)  # by byte: white space (ASCII, all of it)
_WHITE_BYTES[np.frombuffer(WHITE_SPACE.encode("ascii"), np.uint8)] = True


def is_trimmable(block: LineBlock, n_fields: int) -> bool:
    """True when read_trimmed gives the block's columns as the general path would, or refuses
    the block (a line of another field count: Arrow's parser raises, the general path reads
    it). Only lines with a quote are scanned byte by byte: 16 MB blocks of the tabular
    benchmark, a quoted value in 1 line of 20, took 25 ms each to scan whole, now 5."""
    if block.too_large.any() or len(block) == 0:
        return False
    start = int(block.starts[0])
    text = _bytes_of(block.data)
    if text.startswith(BOM, start):  # Arrow would drop it; the rules keep it in the first value
        return False
    if text.find(b"\r", start) >= 0:  # (bytes.find is memchr; count is not)
        returns = np.flatnonzero(block.data[start:] == CR) + start
        if returns[-1] + 1 == len(text) or (block.data[returns + 1] != LF).any():
            return False  # a lone CR: Arrow ends a line there, the rules do not
    if text.find(b'"', start) < 0:
        return True
    quotes = np.flatnonzero(block.data[start:] == QUOTE) + start
    lines = np.unique(np.searchsorted(block.starts, quotes, "right") - 1)
    return _quoted_as_arrow_reads(block.data, block.starts[lines], block.ends[lines], n_fields)


def _bytes_of(data: npt.NDArray[np.uint8]) -> bytes:
    """The bytes a block's array was made from (lines.py makes it with np.frombuffer), for
    bytes' own fast searches; a copy when it was made otherwise."""
    return data.base if isinstance(data.base, bytes) and len(data.base) == len(data) else data.tobytes()


@njit(cache=True, nogil=True)
def _quoted_as_arrow_reads(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
                           ends: npt.NDArray[np.int64], n_fields: int) -> bool:
    """Every line has n_fields fields, and each quote opens a value at its start, closes it
    at its end, or is doubled inside it. (Outside quotes, commas are counted without a
    branch: the loop stops only at a quote, the rare byte.)"""
    for k in range(len(starts)):
        start, end = starts[k], ends[k]
        p, separators = start, 0
        while p < end:
            byte = data[p]
            if byte == QUOTE:
                if p != start and data[p - 1] != COMMA:
                    return False  # a quote inside an unquoted value
                p += 1
                while True:  # inside the quoted value
                    if p >= end:
                        return False
                    if data[p] == QUOTE:
                        if p + 1 < end and data[p + 1] == QUOTE:
                            p += 2
                            continue
                        break
                    p += 1
                if p + 1 < end and data[p + 1] != COMMA:
                    return False  # text after the closing quote
            else:
                separators += byte == COMMA
            p += 1
        if separators != n_fields - 1:
            return False
    return True


def read_trimmed(block: LineBlock, names: Sequence[str], encode: Sequence[bool]) -> Parsed | None:
    """The block's columns (dictionary-encoded where `encode`), or None when Arrow refuses it
    (invalid UTF-8, for one: the general path replaces it). Arrow's parser encodes the
    columns itself (cheaper than making strings and encoding them)."""
    text = block.data[int(block.starts[0]):]
    coded = pa.dictionary(pa.int32(), pa.string())
    try:
        table = csv.read_csv(
            # no copy; one chunk: the block's dictionaries need no unifying, and the other core
            # is busy with the blocks before (statistics, writing). Two chunks cost 0.26 s of
            # CPU per 16 MB block against 0.19 s, plus 0.05 s to unify and combine them.
            pa.py_buffer(text),
            read_options=csv.ReadOptions(column_names=list(names), block_size=len(text) + 1),
            parse_options=csv.ParseOptions(quote_char='"', double_quote=True, escape_char=False),
            convert_options=csv.ConvertOptions(
                column_types={n: coded if e else pa.string() for n, e in zip(names, encode)},
                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != len(block):
        return None
    columns = [_stripped_encoded(c.unify_dictionaries().combine_chunks()) if encode[j]
               else _stripped(c.combine_chunks()) for j, c in enumerate(table.columns)]
    return Parsed(columns, [None] * len(columns))


def _stripped(values: pa.Array) -> pa.Array:
    """Values without white space at their ends; empty ones missing. Values that have none
    and are not empty, as most are, come back as they are (trimming them all took a twentieth
    of the tabular benchmark's ingest)."""
    if not _any_to_strip(values):
        return values
    trimmed = pc.utf8_trim(values, characters=WHITE_SPACE)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _any_to_strip(values: pa.Array) -> bool:
    """Whether some value of a string array is empty or starts or ends with white space."""
    if len(values) == values.null_count:
        return False
    validity, offsets, data = values.buffers()
    return _ends_to_strip(np.frombuffer(offsets, np.int32), np.frombuffer(data or b"", np.uint8),
                          np.frombuffer(validity or b"", np.uint8), validity is not None,
                          values.offset, len(values))


@njit(cache=True, nogil=True)
def _ends_to_strip(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], validity: npt.NDArray[np.uint8],
                   has_validity: bool, first: int, n: int) -> bool:
    """_any_to_strip on an Arrow string array's buffers (its values first .. first + n)."""
    for i in range(first, first + n):
        if has_validity and not (validity[i >> 3] >> (i & 7)) & 1:
            continue  # missing
        start, end = offsets[i], offsets[i + 1]
        if start == end:
            return True
        if _WHITE_BYTES[data[start]] or _WHITE_BYTES[data[end - 1]]:
            return True
    return False


def _stripped_encoded(encoded: pa.DictionaryArray) -> pa.DictionaryArray:
    """_stripped of a dictionary-encoded column: each distinct value is stripped once (an
    entry that strips to nothing becomes a missing index). Most columns have nothing to
    strip: they come back as they are."""
    stripped = _stripped(encoded.dictionary)
    if stripped.null_count == 0 and stripped.equals(encoded.dictionary):
        return encoded
    recoded = pc.dictionary_encode(stripped)
    return pa.DictionaryArray.from_arrays(recoded.indices.take(encoded.indices), recoded.dictionary)
