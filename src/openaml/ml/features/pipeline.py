"""The fitted feature pipeline: recipe variables -> a sparse CSR block per record batch.

Feature layout (recipes.md §8): the sources in recipe output order; a NUMERIC or BINARY source
owns one feature, a CATEGORICAL, TEXT or token-set source one feature per vocabulary entry
(sorted by code point). NUMERIC values are standardized with the training mean and standard
deviation; BINARY true -> 1; indicators are 1. The same object serves training, evaluation,
batch and real-time prediction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from numba import njit

from openaml.ml.features.codes import FeatureTable, concatenated
from openaml.ml.features.tokens import TokenList, TooManyPairs
from openaml.ml.features.transforms import bin_labels
from openaml.ml.features.values import Columns, bin_numbers, evaluate
from openaml.ml.moments import SAFE_MAGNITUDE
from openaml.ml.recipes.nodes import CATEGORICAL, NUMERIC, Node, Op, attributes_of, node_from_json, node_to_json
from openaml.ml.schema import Schema

_TABLE_LOCK = threading.Lock()
# Rows scored at once: about CHUNK_ENTRIES feature ids (one per source and row; MNIST's 784
# sources: 4,012 rows, its features a few MB), at most MAX_CHUNK_ROWS. Each chunk costs a call
# per source: the tabular benchmark's 28 sources scored 600,000 records with 15 % less CPU in
# chunks of 16,384 rows than of 4,096.
CHUNK_ENTRIES, MAX_CHUNK_ROWS = 3 << 20, 16_384


@dataclass
class FeaturePipeline:
    """Sources with their fitted state; `vocabs[i]` is None for NUMERIC/BINARY sources."""

    schema: Schema
    sources: tuple[Node, ...]
    params: dict[str, Any]  # per normalize/quantile_bin node (by canonical name)
    scales: list[tuple[float, float] | None]  # (mean, std) of NUMERIC sources
    vocabs: list[pa.Array | None]
    offsets: np.ndarray = field(init=False)
    _table: FeatureTable | None = field(init=False, default=None, repr=False, compare=False)
    _bins: dict[int, np.ndarray] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        sizes = [1 if v is None else len(v) for v in self.vocabs]
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)

    @property
    def n_features(self) -> int:
        return int(self.offsets[-1])

    def feature_names(self) -> list[str]:
        names: list[str] = []
        for source, vocab in zip(self.sources, self.vocabs):
            if vocab is None:
                names.append(source.canonical)
            else:
                prefix = source.canonical + ("=" if source.kind == CATEGORICAL else ":")
                names += [prefix + v for v in vocab.to_pylist()]
        return names

    def name_sizes(self) -> np.ndarray:
        """The UTF-8 byte length of each feature's name (feature_names()), without making them."""
        sizes = [np.full(1, len(source.canonical.encode("utf-8")), np.int64) if vocab is None
                 else pc.binary_length(vocab).to_numpy(zero_copy_only=False).astype(np.int64)
                 + len(source.canonical.encode("utf-8")) + 1
                 for source, vocab in zip(self.sources, self.vocabs)]
        return np.concatenate(sizes) if sizes else np.zeros(0, np.int64)

    def n_statistics(self) -> int:
        """Stored recipe statistics values: boundaries, means and standard deviations."""
        count = sum(len(p.get("boundaries", ())) + 2 * ("mean" in p) for p in self.params.values())
        return count + 2 * sum(s is not None for s in self.scales)

    def transform(self, batch: pa.RecordBatch) -> sp.csr_matrix:
        """Features of every row of the batch: CSR of shape (rows, n_features), float64."""
        indptr, indices, values = self.rows(batch)
        data = np.ones(len(indices)) if values is None else values
        return sp.csr_matrix((data, indices, indptr), shape=(batch.num_rows, self.n_features))

    def row_chunks(self, batch: pa.RecordBatch) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """rows() of successive slices of the batch (chunk_rows each), for consumers that need
        no stacking. NUMERIC and BINARY values are read once for the whole batch: its slices
        share its dictionaries, which would otherwise be converted again for every slice."""
        size = self.chunk_rows
        if batch.num_rows <= size:
            yield self.rows(batch)
            return
        whole = Columns(batch, self.schema)
        names = sorted(self.attributes)
        for start in range(0, batch.num_rows, size):
            yield self.rows(batch.slice(start, size), whole.numbers_sliced(names, start, size))

    @property
    def attributes(self) -> set[str]:
        """The raw attributes the features are made from."""
        return set().union(*(attributes_of(source) for source in self.sources))

    @property
    def chunk_rows(self) -> int:
        """Rows row_chunks scores at once: CHUNK_ENTRIES ids, at most MAX_CHUNK_ROWS rows."""
        return max(1, min(MAX_CHUNK_ROWS, CHUNK_ENTRIES // max(1, len(self.sources))))

    def rows(self, batch: pa.RecordBatch,
             columns: Columns | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Features of every row of the batch as CSR arrays (indptr, indices, values), with
        values None when every value is 1 (indicator features only); `columns`: the batch's,
        when some are read already."""
        columns = columns or Columns(batch, self.schema)
        try:
            return self._rows(columns)
        except TooManyPairs:
            first, second = columns.halves()
            return stacked_rows(self.rows(first.batch, first), self.rows(second.batch, second))

    def _rows(self, columns: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        n = columns.n_rows
        # per source: ids, (id per dictionary entry, entry per row) or a Scalar; None until looked up
        dense_ids: list[np.ndarray | tuple[np.ndarray, np.ndarray] | Scalar | None] = []
        coded: list[tuple[int, int, pa.DictionaryArray]] = []  # (dense column, source, values)
        token_rows: list[np.ndarray] = []
        token_ids: list[np.ndarray] = []
        for i, source in enumerate(self.sources):
            if isinstance(source, Op) and source.function == "quantile_bin":
                # the bin of each row straight to its feature id: no categories to look up
                inner = evaluate(source.args[0], columns, self.params)
                dense_ids.append(self._bin_ids(i)[bin_numbers(inner, self._boundaries(i))])
                continue
            value = evaluate(source, columns, self.params)
            offset = int(self.offsets[i])
            vocab = self.vocabs[i]
            if vocab is None:
                mean, std = self.scales[i] or (0.0, 1.0)
                dense_ids.append(Scalar(value, offset, source.kind == NUMERIC, mean, std))
            elif isinstance(value, TokenList):
                ids = _token_ids(value.values, vocab, offset)
                found = ids >= 0
                token_rows.append(value.rows[found])
                token_ids.append(ids[found])
            elif pa.types.is_dictionary(value.type) and source.kind == CATEGORICAL:
                # every dictionary of the batch is looked up at once, below; rows are gathered
                # straight into the id matrix by csr_rows: no per-row temporary
                coded.append((len(dense_ids), i, value))
                dense_ids.append(None)
            else:
                dense_ids.append(_lookup(value, vocab, offset))
        for j, per_entry, entries in self._entry_ids(coded):
            dense_ids[j] = (per_entry, entries)
        looked_up = [ids for ids in dense_ids if ids is not None]
        assert len(looked_up) == len(dense_ids)  # every placeholder filled
        return csr_rows(looked_up, n, token_rows, token_ids)

    def _boundaries(self, i: int) -> np.ndarray:
        return np.asarray(self.params[self.sources[i].canonical]["boundaries"], np.float64)

    def _bin_ids(self, i: int) -> np.ndarray:
        """The feature id of each bin of quantile_bin source i (-1: not in its vocabulary),
        then -1 for a missing value (bin_numbers' last number)."""
        found = self._bins.get(i)
        if found is None:
            labels = bin_labels(len(self._boundaries(i)) + 1)
            found = np.append(_lookup(labels, self.vocabs[i], int(self.offsets[i])), -1)
            self._bins[i] = found  # the same array whichever thread makes it
        return found

    def _entry_ids(self, coded: list[tuple[int, int, pa.DictionaryArray]]
                   ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """For each (dense column, source, dictionary array): the column, the feature id of
        each dictionary entry (-1: none) and the entry of each row (when some are missing, an
        extra last entry, -1, stands for them). The table holds the CATEGORICAL sources'
        vocabularies, built on first use (token vocabularies can be large and never come here)."""
        if not coded:
            return
        with _TABLE_LOCK:   # threads score or build blocks with one pipeline: built once
            if self._table is None:
                self._table = FeatureTable([(i, v, int(self.offsets[i])) for i, (s, v)
                                            in enumerate(zip(self.sources, self.vocabs))
                                            if v is not None and s.kind == CATEGORICAL])
        sizes = np.array([len(values.dictionary) for _, _, values in coded])
        sources = np.repeat(np.array([i for _, i, _ in coded]), sizes)
        ids = self._table.lookup(sources, concatenated([values.dictionary for _, _, values in coded]))
        for (j, _, values), end, size in zip(coded, np.cumsum(sizes), sizes):
            per_entry = ids[end - size:end]
            entries = values.indices
            if entries.null_count:
                per_entry = np.append(per_entry, -1)
                entries = pc.fill_null(entries, size)
            yield j, per_entry, entries.to_numpy().astype(np.int32, copy=False)

    def select(self, keep: np.ndarray) -> FeaturePipeline:
        """A pipeline producing only the features where `keep` (over n_features) is true."""
        sources, scales, vocabs = [], [], []
        for i, source in enumerate(self.sources):
            part = keep[self.offsets[i]:self.offsets[i + 1]]
            vocab = self.vocabs[i]
            if not part.any():
                continue
            sources.append(source)
            scales.append(self.scales[i])
            vocabs.append(None if vocab is None else vocab.filter(pa.array(part)))
        return FeaturePipeline(self.schema, tuple(sources), self.params, scales, vocabs)

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": [node_to_json(s) for s in self.sources],
            "params": self.params,
            "scales": [list(s) if s is not None else None for s in self.scales],
            "vocabs": [v.to_pylist() if v is not None else None for v in self.vocabs],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], schema: Schema) -> FeaturePipeline:
        return cls(
            schema,
            tuple(node_from_json(s) for s in doc["sources"]),
            doc["params"],
            [tuple(s) if s is not None else None for s in doc["scales"]],
            [pa.array(v, pa.string()) if v is not None else None for v in doc["vocabs"]],
        )


def _lookup(values: pa.Array, vocab: pa.Array, offset: int = 0) -> np.ndarray:
    """offset + the position of each value in the vocabulary, -1 when absent or missing."""
    found = pc.index_in(values, value_set=vocab)
    if found.null_count:
        found = pc.fill_null(found, -1)
    positions = found.to_numpy(zero_copy_only=False)
    return np.where(positions >= 0, positions.astype(np.int64) + offset, -1)


def _token_ids(values: pa.Array, vocab: pa.Array, offset: int) -> np.ndarray:
    """_lookup of tokens; dictionary-encoded ones by their distinct tokens."""
    if not pa.types.is_dictionary(values.type):
        return _lookup(values, vocab, offset)
    ids: np.ndarray = _lookup(values.dictionary, vocab, offset)[values.indices.to_numpy()]
    return ids


# A standardized NUMERIC value is kept within this many standard deviations: a training's never
# comes near (sqrt(records) at most), and an input far beyond (1e308 where the values spread by
# 0.06) then scores as a large finite number, never inf, or NaN where its weight is 0.
STANDARDIZED_LIMIT = 1e200


def standardized(value: float, mean: float, std: float) -> float:
    """A NUMERIC value as csr_rows writes it: moments.standardize within STANDARDIZED_LIMIT, 0
    where std is 0."""
    if not std > 0:
        return 0.0
    scaled = value / std - mean / std if abs(mean) > SAFE_MAGNITUDE else (value - mean) / std
    return min(max(scaled, -STANDARDIZED_LIMIT), STANDARDIZED_LIMIT)


@dataclass(frozen=True, eq=False)
class Scalar:
    """A NUMERIC or BINARY source's values (NaN: missing) with its one feature, as csr_rows
    writes it: a NUMERIC value standardized by (mean, std) (`standardized`), absent where
    missing; a BINARY value 1 where true, absent where false or missing."""

    values: np.ndarray
    feature: int
    numeric: bool
    mean: float = 0.0
    std: float = 1.0


def csr_rows(ids: list[np.ndarray | tuple[np.ndarray, np.ndarray] | Scalar], n: int,
             token_rows: list[np.ndarray], token_ids: list[np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """CSR arrays (indptr, indices, values) of n rows from one feature id per (row, source)
    (-1 = none), given per source as ids, as (id per dictionary entry, entry per row) or as a
    Scalar (its feature where present, with its value), plus an indicator per distinct (row,
    token id) of the token sources (rows, ids per source). Each row's ids ascend (sources
    own ascending ranges); values are None when no source is a Scalar (indicators only).
    Where there are Scalars and token sources, entries of value 0 are dropped (the sparse sum
    this once was dropped them: models stay the same)."""
    id_matrix = np.empty((len(ids), n), np.int32)  # a source's ids contiguous: copied fast
    full = True  # every source in every row
    scalars = [j for j, column in enumerate(ids) if isinstance(column, Scalar)]
    for j, column in enumerate(ids):
        if isinstance(column, tuple):
            full &= _gather_column(id_matrix[j], column[0], column[1]) >= 0
        elif isinstance(column, Scalar):
            id_matrix[j] = column.feature  # where present: the compiled part reads its value
        else:
            id_matrix[j] = column
            full &= len(column) == 0 or column.min() >= 0
    if not scalars and not token_rows:  # indicators only (pixels)
        if full:  # in every row: as they are
            return np.arange(n + 1, dtype=np.int64) * len(ids), id_matrix.T.ravel(), None
        return (*_indicator_rows(id_matrix), None)
    column_of = np.full(len(ids), -1, np.int32)
    column_of[scalars] = np.arange(len(scalars), dtype=np.int32)
    values = np.empty((len(scalars), n))
    given = [column for column in ids if isinstance(column, Scalar)]  # in the order of `scalars`
    for c, scalar in enumerate(given):
        values[c] = scalar.values
    numeric = np.array([scalar.numeric for scalar in given], np.bool_)
    scales = np.array([(scalar.mean, scalar.std) for scalar in given], np.float64).reshape(-1, 2)
    rows = np.concatenate(token_rows).astype(np.int64, copy=False) if token_rows else np.zeros(0, np.int64)
    # a new array (concatenate copies): the kernel sorts each row's tokens in it
    tokens = np.concatenate(token_ids).astype(np.int32, copy=False) if token_ids else np.zeros(0, np.int32)
    indptr, indices, data = _csr_rows(id_matrix, values, column_of, numeric, scales, rows, tokens,
                                      bool(scalars) and bool(token_rows))
    if 2 * len(indices) < len(ids) * n + len(tokens):  # mostly absent: let the kernel's room go
        indices, data = indices.copy(), data.copy()
    return indptr, indices, data if scalars else None


def stacked_rows(first: tuple[np.ndarray, np.ndarray, np.ndarray | None],
                 second: tuple[np.ndarray, np.ndarray, np.ndarray | None]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The CSR arrays of two runs of rows (csr_rows of each), one after the other."""
    (indptr, indices, values), (more_indptr, more_indices, more_values) = first, second
    return (np.concatenate((indptr, more_indptr[1:] + indptr[-1])), np.concatenate((indices, more_indices)),
            None if values is None or more_values is None else np.concatenate((values, more_values)))


@njit(cache=True, nogil=True)
def _gather_column(out: np.ndarray, per_entry: np.ndarray, entries: np.ndarray) -> int:
    """out = per_entry[entries]; returns the least value written (0 when none)."""
    least = 0
    for i in range(len(entries)):
        value = per_entry[entries[i]]
        out[i] = value
        least = min(least, value)
    return least


@njit(cache=True, nogil=True)
def _indicator_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """indptr and indices of the present ids ids[:, r] of each row r (a simpler loop than
    _csr_rows': 784 pixel sources and no tokens or values)."""
    width, n = ids.shape
    out_ptr = np.zeros(n + 1, np.int64)
    for r in range(n):
        count = 0
        for j in range(width):
            count += ids[j, r] >= 0
        out_ptr[r + 1] = out_ptr[r] + count
    out_ids = np.empty(out_ptr[n], np.int32)
    size = 0
    for r in range(n):
        for j in range(width):
            if ids[j, r] >= 0:
                out_ids[size] = ids[j, r]
                size += 1
    return out_ptr, out_ids


@njit(cache=True, nogil=True)
def _csr_rows(ids: np.ndarray, values: np.ndarray, column_of: np.ndarray, numeric: np.ndarray,
              scales: np.ndarray, rows: np.ndarray, tokens: np.ndarray,
              drop_zeros: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """csr_rows' compiled part: per row r, the present ids ids[:, r] (a Scalar's where its value
    values[column_of[j], r] is present; others of value 1) merged with the row's distinct token
    ids, in one pass. The output is made at its largest size (every id present, every token
    distinct) and its filled part returned as views: pages never written are never given
    memory, so this costs neither a counting pass nor a trimmed copy (fresh memory costs a
    page fault per 4 KiB). Tokens in row order (one token source, as tokenize makes them) are
    not bucketed."""
    width, n = ids.shape
    starts = np.zeros(n + 1, np.int64)
    for r in rows:
        starts[r + 1] += 1
    starts = np.cumsum(starts)
    ordered = True
    for k in range(1, len(rows)):
        if rows[k] < rows[k - 1]:
            ordered = False
            break
    if ordered:
        bucket = tokens
    else:  # a counting sort by row
        fill = starts[:-1].copy()
        bucket = np.empty(len(tokens), np.int32)
        for k in range(len(tokens)):
            bucket[fill[rows[k]]] = tokens[k]
            fill[rows[k]] += 1
    out_ptr = np.empty(n + 1, np.int64)
    out_ptr[0] = 0
    out_ids = np.empty(width * n + len(tokens), np.int32)
    out_values = np.empty(width * n + len(tokens))
    size = 0
    for r in range(n):
        found = bucket[starts[r]:starts[r + 1]]
        if len(found) > 32:  # a long text
            found[:] = np.sort(found)
        for i in range(1, len(found)):  # insertion sort: most records hold a few tokens
            token, k = found[i], i - 1
            while k >= 0 and found[k] > token:
                found[k + 1] = found[k]
                k -= 1
            found[k + 1] = token
        t, t_end = 0, len(found)
        for j in range(width):
            feature = ids[j, r]
            if feature < 0:
                continue
            c = column_of[j]
            value = 1.0
            if c >= 0:  # a Scalar
                given = values[c, r]
                if numeric[c]:
                    if np.isnan(given):
                        continue
                    mean, std = scales[c, 0], scales[c, 1]  # as `standardized`
                    if not std > 0:
                        value = 0.0
                    else:
                        value = given / std - mean / std if abs(mean) > SAFE_MAGNITUDE else (given - mean) / std
                        value = min(max(value, -STANDARDIZED_LIMIT), STANDARDIZED_LIMIT)
                elif not given > 0:
                    continue
            while t < t_end and found[t] < feature:  # the row's tokens before this feature
                out_ids[size], out_values[size] = found[t], 1.0
                size += 1
                t += 1
                while t < t_end and found[t] == found[t - 1]:
                    t += 1
            if not (drop_zeros and value == 0.0):
                out_ids[size], out_values[size] = feature, value
                size += 1
        while t < t_end:  # the tokens after every source
            out_ids[size], out_values[size] = found[t], 1.0
            size += 1
            t += 1
            while t < t_end and found[t] == found[t - 1]:
                t += 1
        out_ptr[r + 1] = size
    return out_ptr, out_ids[:size], out_values[:size]
