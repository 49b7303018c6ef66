"""The fitted feature pipeline: recipe variables -> a sparse CSR block per record batch.

Feature layout (recipes.md §8): the sources in recipe output order; a NUMERIC or BINARY source
owns one feature, a CATEGORICAL, TEXT or token-set source one feature per vocabulary entry
(sorted by code point). NUMERIC values are standardized with the training mean and standard
deviation; BINARY true -> 1; indicators are 1. The same object serves training, evaluation,
batch and real-time prediction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from numba import njit

from openaml.ml.features.codes import FeatureTable, concatenated
from openaml.ml.features.tokens import TokenList
from openaml.ml.features.transforms import bin_labels
from openaml.ml.features.values import Columns, bin_numbers, evaluate
from openaml.ml.linear import linear_scores
from openaml.ml.recipes.nodes import CATEGORICAL, NUMERIC, Node, Op, attributes_of, node_from_json, node_to_json
from openaml.ml.schema import Schema

_TABLE_LOCK = threading.Lock()
T = TypeVar("T")
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
        no stacking."""
        return self._chunks(batch, lambda part, columns: csr_rows(*self._features(part, columns)))

    def chunk_scores(self, batch: pa.RecordBatch, weights: np.ndarray, bias: np.ndarray) -> Iterator[np.ndarray]:
        """bias + features @ weights (rows, outputs) of the slices row_chunks makes, from the
        features' ids and values without their CSR arrays (row_scores)."""
        return self._chunks(batch, lambda part, columns: row_scores(*self._features(part, columns), weights, bias))

    def _chunks(self, batch: pa.RecordBatch, make: Callable[[pa.RecordBatch, Columns], T]) -> Iterator[T]:
        """make(slice, its Columns) of successive slices of the batch (chunk_rows each). NUMERIC
        and BINARY values are read once for the whole batch: its slices share its
        dictionaries, which would otherwise be converted again for every slice."""
        size = self.chunk_rows
        if batch.num_rows <= size:
            yield make(batch, Columns(batch, self.schema))
            return
        whole = Columns(batch, self.schema)
        names = sorted(set().union(*(attributes_of(source) for source in self.sources)))
        for start in range(0, batch.num_rows, size):
            yield make(batch.slice(start, size), whole.numbers_sliced(names, start, size))

    @property
    def chunk_rows(self) -> int:
        """Rows row_chunks scores at once: CHUNK_ENTRIES ids, at most MAX_CHUNK_ROWS rows."""
        return max(1, min(MAX_CHUNK_ROWS, CHUNK_ENTRIES // max(1, len(self.sources))))

    def rows(self, batch: pa.RecordBatch,
             columns: Columns | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Features of every row of the batch as CSR arrays (indptr, indices, values), with
        values None when every value is 1 (indicator features only); `columns`: the batch's,
        when some are read already."""
        return csr_rows(*self._features(batch, columns or Columns(batch, self.schema)))

    def _features(self, batch: pa.RecordBatch, columns: Columns) -> tuple[list[Dense], int, list[np.ndarray],
                                                                          list[np.ndarray]]:
        """csr_rows' arguments for the batch: a Dense per source but the token ones, the rows,
        and the token sources' (row, id) pairs."""
        n = columns.n_rows
        # per source: ids, (id per dictionary entry, entry per row) or a Scalar; None until looked up
        dense_ids: list[Dense | None] = []
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
        return looked_up, n, token_rows, token_ids

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


@dataclass(frozen=True, eq=False)
class Scalar:
    """A NUMERIC or BINARY source's values (NaN: missing) with its one feature, as csr_rows
    writes it: a NUMERIC value standardized by (mean, std) (0 where std is 0), absent where
    missing; a BINARY value 1 where true, absent where false or missing."""

    values: np.ndarray
    feature: int
    numeric: bool
    mean: float = 0.0
    std: float = 1.0


Dense = np.ndarray | tuple[np.ndarray, np.ndarray] | Scalar


def csr_rows(ids: list[Dense], n: int, token_rows: list[np.ndarray], token_ids: list[np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """CSR arrays (indptr, indices, values) of n rows from one feature id per (row, source)
    (-1 = none), given per source as ids, as (id per dictionary entry, entry per row) or as a
    Scalar (its feature where present, with its value), plus an indicator per distinct (row,
    token id) of the token sources (rows, ids per source). Each row's ids ascend (sources
    own ascending ranges); values are None when no source is a Scalar (indicators only).
    Where there are Scalars and token sources, entries of value 0 are dropped (the sparse sum
    this once was dropped them: models stay the same)."""
    dense = _Dense.of(ids, n, token_rows, token_ids)
    if not dense.assembled:  # indicators only (pixels)
        if dense.full:  # in every row: as they are
            return np.arange(n + 1, dtype=np.int64) * len(ids), dense.ids.T.ravel(), None
        return (*_indicator_rows(dense.ids), None)
    indptr, indices, data = _assembled(*dense.arrays(), NO_WEIGHTS, NO_BIAS, NO_SCORES)
    if 2 * len(indices) < len(ids) * n + len(dense.tokens):  # mostly absent: let the kernel's room go
        indices, data = indices.copy(), data.copy()
    return indptr, indices, data if dense.scalars else None


def row_scores(ids: list[Dense], n: int, token_rows: list[np.ndarray], token_ids: list[np.ndarray],
               weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """bias + features @ weights (n, outputs) of csr_rows' features, summed in the order of
    their CSR rows (so to the bit linear.linear_scores of them) without writing those: one
    compiled pass where there are Scalars or tokens (indicators alone are scored from their
    rows, which cost a transposed copy at most)."""
    dense = _Dense.of(ids, n, token_rows, token_ids)
    if not dense.assembled:
        return linear_scores(csr_rows(ids, n, token_rows, token_ids), weights, bias)
    scores = np.empty((n, len(bias)))
    _assembled(*dense.arrays(), np.ascontiguousarray(weights, np.float64), np.asarray(bias, np.float64), scores)
    return scores


NO_WEIGHTS, NO_BIAS, NO_SCORES = np.zeros((0, 1)), np.zeros(1), np.zeros((0, 1))  # _assembled writes CSR rows


@dataclass(frozen=True, eq=False)
class _Dense:
    """csr_rows' arguments laid out for its compiled pass: the id matrix (sources, rows), the
    Scalars' values (scalars, rows) with their kinds and (mean, std), and the tokens."""

    ids: np.ndarray
    full: bool  # every source in every row
    scalars: list[int]
    values: np.ndarray
    column_of: np.ndarray
    numeric: np.ndarray
    scales: np.ndarray
    rows: np.ndarray
    tokens: np.ndarray
    token_sources: bool  # some source gives tokens (perhaps none in these rows)

    @classmethod
    def of(cls, ids: list[Dense], n: int, token_rows: list[np.ndarray], token_ids: list[np.ndarray]) -> _Dense:
        id_matrix = np.empty((len(ids), n), np.int32)  # a source's ids contiguous: copied fast
        full = True
        scalars = [j for j, column in enumerate(ids) if isinstance(column, Scalar)]
        for j, column in enumerate(ids):
            if isinstance(column, tuple):
                full &= _gather_column(id_matrix[j], column[0], column[1]) >= 0
            elif isinstance(column, Scalar):
                id_matrix[j] = column.feature  # where present: the compiled pass reads its value
            else:
                id_matrix[j] = column
                full &= len(column) == 0 or column.min() >= 0
        column_of = np.full(len(ids), -1, np.int32)
        column_of[scalars] = np.arange(len(scalars), dtype=np.int32)
        values = np.empty((len(scalars), n))
        given = [cast(Scalar, ids[j]) for j in scalars]
        for c, scalar in enumerate(given):
            values[c] = scalar.values
        numeric = np.array([scalar.numeric for scalar in given], np.bool_)
        scales = np.array([(scalar.mean, scalar.std) for scalar in given], np.float64).reshape(-1, 2)
        rows = np.concatenate(token_rows).astype(np.int64, copy=False) if token_rows else np.zeros(0, np.int64)
        # a new array (concatenate copies): the compiled pass sorts each row's tokens in it
        tokens = np.concatenate(token_ids).astype(np.int32, copy=False) if token_ids else np.zeros(0, np.int32)
        return cls(id_matrix, full, scalars, values, column_of, numeric, scales, rows, tokens, bool(token_rows))

    @property
    def assembled(self) -> bool:
        """Whether the compiled pass makes the rows (Scalars or token sources to merge)."""
        return bool(self.scalars) or self.token_sources

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                              bool]:
        drop_zeros = bool(self.scalars) and self.token_sources
        return self.ids, self.values, self.column_of, self.numeric, self.scales, self.rows, self.tokens, drop_zeros


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
def _assembled(ids: np.ndarray, values: np.ndarray, column_of: np.ndarray, numeric: np.ndarray,
               scales: np.ndarray, rows: np.ndarray, tokens: np.ndarray, drop_zeros: bool,
               weights: np.ndarray, bias: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """csr_rows' and row_scores' compiled pass: per row r, the present ids ids[:, r] (a Scalar's
    where its value values[column_of[j], r] is present; others of value 1) merged with the
    row's distinct token ids, in ascending order. With `scores` of n rows, each row's entries
    are summed into it (bias + value * weights[id], in that order) and no row is written.
    Else the rows are written at their largest size (every id present, every token
    distinct) and their filled part returned as views: pages never written are never given
    memory, so this costs neither a counting pass nor a trimmed copy (fresh memory costs a
    page fault per 4 KiB). Tokens in row order (one token source, as tokenize makes them) are
    not bucketed."""
    width, n = ids.shape
    scoring = len(scores) > 0
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
    capacity = 0 if scoring else width * n + len(tokens)
    out_ptr = np.zeros(0 if scoring else n + 1, np.int64)
    out_ids, out_values = np.empty(capacity, np.int32), np.empty(capacity)
    acc = np.empty(len(bias))
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
        acc[:] = bias
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
                    mean, std = scales[c, 0], scales[c, 1]
                    value = (given - mean) / std if std > 0 else 0.0
                elif not given > 0:
                    continue
            while t < t_end and found[t] < feature:  # the row's tokens before this feature
                size = _put(found[t], 1.0, scoring, acc, weights, out_ids, out_values, size)
                t += 1
                while t < t_end and found[t] == found[t - 1]:
                    t += 1
            if not (drop_zeros and value == 0.0):
                size = _put(feature, value, scoring, acc, weights, out_ids, out_values, size)
        while t < t_end:  # the tokens after every source
            size = _put(found[t], 1.0, scoring, acc, weights, out_ids, out_values, size)
            t += 1
            while t < t_end and found[t] == found[t - 1]:
                t += 1
        if scoring:
            scores[r] = acc
        else:
            out_ptr[r + 1] = size
    return out_ptr, out_ids[:size], out_values[:size]


@njit(cache=True, nogil=True, inline="always")
def _put(feature: int, value: float, scoring: bool, acc: np.ndarray, weights: np.ndarray,
         out_ids: np.ndarray, out_values: np.ndarray, size: int) -> int:
    """One entry of a row: added to its score (value * weights[feature]), or written."""
    if scoring:
        for k in range(len(acc)):
            acc[k] += value * weights[feature, k]
        return size
    out_ids[size], out_values[size] = feature, value
    return size + 1
