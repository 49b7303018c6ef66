"""White-space splitting of an ASCII string column in one compiled pass (tokenize's fast path).

Arrow's `utf8_split_whitespace` builds a list array whose empty tokens (from white space at a
value's ends) are then dropped, and flattening and parent indices cost further passes: most of
the time of a TEXT attribute's features. Here the bytes are walked twice (to size the output,
then to copy each token's bytes once) and only the tokens come out, with their rows. The white
space is Arrow's ASCII set (token_counts.ASCII_SPACE); a byte over 0x7F (other Unicode white
space may follow) leaves the column to Arrow.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from openaml.ml.data.token_counts import ASCII_SPACE


def split_ascii(column: pa.Array) -> tuple[pa.Array, npt.NDArray[np.int64]] | None:
    """The non-empty white-space separated tokens of a string column's values, in order, and
    the row of each; None when the column holds a byte over 0x7F."""
    if pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    _, offset_buffer, data_buffer = column.buffers()
    if len(column) == 0 or data_buffer is None:
        return pa.array([], pa.string()), np.zeros(0, np.int64)
    offsets = np.frombuffer(offset_buffer, np.int32, len(column) + 1, 4 * column.offset)
    data = np.frombuffer(data_buffer, np.uint8)
    valid = (np.ones(len(column), dtype=np.bool_) if column.null_count == 0
             else pc.is_valid(column).to_numpy(zero_copy_only=False))
    count, size = _walk(offsets, data, valid, ASCII_SPACE, np.zeros(1, np.int32), np.zeros(0, np.uint8),
                        np.zeros(0, np.int64), False)
    if count < 0:
        return None
    token_offsets, characters, rows = np.empty(count + 1, np.int32), np.empty(size, np.uint8), np.empty(count, np.int64)
    _walk(offsets, data, valid, ASCII_SPACE, token_offsets, characters, rows, True)
    tokens = pa.Array.from_buffers(pa.string(), len(rows),
                                   [None, pa.py_buffer(token_offsets), pa.py_buffer(characters)])
    return tokens, rows


@njit(cache=True, nogil=True)
def _walk(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_],
          space: npt.NDArray[np.bool_], token_offsets: npt.NDArray[np.int32], characters: npt.NDArray[np.uint8],
          rows: npt.NDArray[np.int64], fill: bool) -> tuple[int, int]:
    """(tokens, bytes of tokens) of the valid values, or (-1, -1) at a byte over 0x7F; with
    `fill`, each token's start offset, bytes and row are written too (then the end offset)."""
    t, q = 0, 0
    for r in range(len(offsets) - 1):
        if not valid[r]:
            continue
        inside = False
        for p in range(offsets[r], offsets[r + 1]):
            byte = data[p]
            if byte > 127:
                return -1, -1
            if space[byte]:
                inside = False
                continue
            if not inside:
                if fill:
                    token_offsets[t] = q
                    rows[t] = r
                t += 1
                inside = True
            if fill:
                characters[q] = byte
            q += 1
    if fill:
        token_offsets[t] = q
    return t, q
