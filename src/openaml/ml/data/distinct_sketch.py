"""How many distinct strings a column holds, past what its value table keeps: the K smallest
64-bit hashes of its distinct values (a "K minimum values" sketch, Bar-Yossef et al.).

The sketch is a function of the set of values alone, whatever the order, batching or
partitioning of the records that brought them (merging two is keeping the K smallest of
both), so the same records laid out otherwise (other blocks, files or partitions) give the
same estimate. With K = 16,384 its relative standard error is about 0.8 %.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from numba import njit

SIZE = 16_384
_SPACE = 2.0**64


def string_hashes(values: pa.Array) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each value of a string array (its UTF-8 bytes; a missing value hashes
    as the empty string)."""
    if len(values) == 0:
        return np.zeros(0, np.uint64)
    _, offsets, data = values.buffers()
    wide = pa.types.is_large_string(values.type)
    return _hashes(np.frombuffer(offsets, np.int64 if wide else np.int32).astype(np.int64),
                   np.frombuffer(data or b"", np.uint8), values.offset, len(values))


@njit(cache=True, nogil=True)
def _hashes(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8], first: int,
            n: int) -> npt.NDArray[np.uint64]:
    """FNV-1a over each value's bytes, then SplitMix64's finalizer (FNV's low bits alone mix
    poorly for short values)."""
    out = np.empty(n, np.uint64)
    for i in range(n):
        h = np.uint64(0xCBF29CE484222325)
        for p in range(offsets[first + i], offsets[first + i + 1]):
            h = (h ^ np.uint64(data[p])) * np.uint64(0x100000001B3)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = h ^ (h >> np.uint64(31))
    return out


def smallest(kept: npt.NDArray[np.uint64], more: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The SIZE smallest distinct hashes of both, ascending (`kept`: a sketch)."""
    if len(kept) >= SIZE:
        more = more[more < kept[-1]]  # most hashes of a long stream cannot enter
    return np.unique(np.concatenate((kept, more)))[:SIZE]


def estimate(kept: npt.NDArray[np.uint64]) -> int:
    """The number of distinct values whose smallest hashes are `kept`: exact below SIZE."""
    if len(kept) < SIZE:
        return len(kept)
    return round((SIZE - 1) * _SPACE / (float(kept[-1]) + 1.0))
