"""Integer codes for the string values of many categorical sources at once.

Wide categorical data (784 pixel attributes of a few hundred values each) spend their time in
per-column calls, not in the values themselves. Coding the dictionaries of every column of a
batch together turns one Arrow lookup per column into one per batch: values get one code
across all sources, and a (source, code) key finds the feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SOURCE_SHIFT = 32  # key = source << SOURCE_SHIFT | code


class ValueCodes:
    """One code per distinct string, in order of first sight."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def codes(self, values: pa.Array, grow: bool = False) -> np.ndarray:
        """The code of each value (int64); -1 for a null, and for an unseen value unless
        `grow` gives it a new code."""
        distinct = pc.unique(values)
        found = np.fromiter((self._code(v, grow) for v in distinct.to_pylist()), np.int64,
                            count=len(distinct))
        codes: np.ndarray = found[pc.index_in(values, value_set=distinct).to_numpy(zero_copy_only=False)]
        return codes

    def _code(self, value: str | None, grow: bool) -> int:
        if value is None:
            return -1
        code = self.index.get(value, -1)
        if code < 0 and grow:
            code = self.index[value] = len(self.values)
            self.values.append(value)
        return code


def keys(sources: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The (source, code) pairs as sortable int64 keys. Distinct only for codes in
    [0, 2**SOURCE_SHIFT): callers mask the -1 of nulls and unknown values."""
    joined: np.ndarray = (sources.astype(np.int64) << SOURCE_SHIFT) | codes
    return joined


def concatenated(dictionaries: Sequence[pa.Array]) -> pa.Array:
    """The value dictionaries of several columns end to end, as one string array."""
    return pa.concat_arrays([d if d.type == pa.string() else d.cast(pa.string()) for d in dictionaries])


class FeatureTable:
    """The feature id of every (source, value) of some sources' vocabularies."""

    def __init__(self, vocabularies: Sequence[tuple[int, pa.Array, int]]) -> None:
        """vocabularies: (source number, its vocabulary, feature id of its first entry)."""
        self.codes = ValueCodes()
        sizes = [len(vocab) for _, vocab, _ in vocabularies]
        sources = np.repeat(np.array([s for s, _, _ in vocabularies], np.int64), sizes)
        ids = np.concatenate([np.arange(o, o + n) for (_, _, o), n in zip(vocabularies, sizes)]
                             + [np.zeros(0, np.int64)])
        values = concatenated([v for _, v, _ in vocabularies]) if vocabularies else pa.array([], pa.string())
        found = keys(sources, self.codes.codes(values, grow=True))
        order = np.argsort(found)
        self.keys, self.ids = found[order], ids[order]

    def lookup(self, sources: np.ndarray, values: pa.Array) -> np.ndarray:
        """The feature id of each (source, value) pair, -1 where the value is not in that
        source's vocabulary (or is null)."""
        codes = self.codes.codes(values)
        wanted = keys(sources, codes)
        if len(self.keys) == 0:
            return np.full(len(wanted), -1, np.int64)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return np.where((codes >= 0) & (self.keys[at] == wanted), self.ids[at], -1)
