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
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from openaml.ml.features.codes import FeatureTable, concatenated
from openaml.ml.features.rows import Scalar, SourceIds, csr_rows, source_scores, stacked_rows
from openaml.ml.features.tokens import TokenList, TooManyPairs
from openaml.ml.features.transforms import bin_labels
from openaml.ml.features.values import Columns, bin_numbers, evaluate
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
        no stacking."""
        for part, columns in self._chunks(batch):
            yield self.rows(part, columns)

    def score_chunks(self, batch: pa.RecordBatch, weights: np.ndarray, bias: np.ndarray) -> Iterator[np.ndarray]:
        """scores() of the slices row_chunks takes."""
        for part, columns in self._chunks(batch):
            yield self.scores(part, weights, bias, columns)

    def _chunks(self, batch: pa.RecordBatch) -> Iterator[tuple[pa.RecordBatch, Columns | None]]:
        """Successive slices of the batch (chunk_rows each) with their columns. NUMERIC and
        BINARY values are read once for the whole batch: its slices share its dictionaries,
        which would otherwise be converted again for every slice."""
        size = self.chunk_rows
        if batch.num_rows <= size:
            yield batch, None
            return
        whole = Columns(batch, self.schema)
        names = sorted(self.attributes)
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size), whole.numbers_sliced(names, start, size)

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
        parts = self._parts(columns or Columns(batch, self.schema))
        return reduce(stacked_rows, (csr_rows(found.ids, n, found.token_rows, found.token_ids) for found, n in parts))

    def scores(self, batch: pa.RecordBatch, weights: np.ndarray, bias: np.ndarray,
               columns: Columns | None = None) -> np.ndarray:
        """bias + rows() of the batch times `weights` (features, outputs), each row's sum in
        the order of its features: linear.linear_scores(rows(batch)) bit for bit, without
        the CSR arrays (rows.source_scores)."""
        parts = self._parts(columns or Columns(batch, self.schema))
        return np.concatenate([source_scores(found.ids, n, found.token_rows, found.token_ids, found.token_at,
                                             weights, bias) for found, n in parts])

    def _parts(self, columns: Columns) -> Iterator[tuple[_LookedUp, int]]:
        """The records' sources looked up (and their number), in halves, as often as needed,
        where a cartesian() would make too many token pairs at once; one part at a time."""
        try:
            found = self._looked_up(columns)
        except TooManyPairs:
            for half in columns.halves():
                yield from self._parts(half)
            return
        yield found, columns.n_rows

    def _looked_up(self, columns: Columns) -> _LookedUp:
        """Every source of the records looked up: an id per row, an id per dictionary entry
        with each row's entry, or a Scalar, per non-token source; (rows, ids) per token source."""
        # per source: ids, (id per dictionary entry, entry per row) or a Scalar; None until looked up
        dense_ids: list[SourceIds | None] = []
        coded: list[tuple[int, int, pa.DictionaryArray]] = []  # (dense column, source, values)
        found = _LookedUp([], [], [], [])
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
                kept = ids >= 0
                found.token_rows.append(value.rows[kept])
                found.token_ids.append(ids[kept])
                found.token_at.append(len(dense_ids))  # its features come before the next source's
            elif pa.types.is_dictionary(value.type) and source.kind == CATEGORICAL:
                # every dictionary of the batch is looked up at once, below; rows are gathered
                # straight into the id matrix by csr_rows: no per-row temporary
                coded.append((len(dense_ids), i, value))
                dense_ids.append(None)
            else:
                dense_ids.append(_lookup(value, vocab, offset))
        for j, per_entry, entries in self._entry_ids(coded):
            dense_ids[j] = (per_entry, entries)
        found.ids.extend(ids for ids in dense_ids if ids is not None)
        assert len(found.ids) == len(dense_ids)  # every placeholder filled
        return found

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


@dataclass(frozen=True)
class _LookedUp:
    """A batch's sources looked up (FeaturePipeline._looked_up): the non-token sources' ids,
    each token source's rows and ids, and the number of non-token sources before each token
    source."""

    ids: list[SourceIds]
    token_rows: list[np.ndarray]
    token_ids: list[np.ndarray]
    token_at: list[int]


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
