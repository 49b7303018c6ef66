"""The columns boosted trees split on, made from the feature pipeline's rows (openaml.algorithm=gbdt).

Trees need no one-hot encoding: a CATEGORICAL source (an attribute, a quantile bin) becomes
one column holding the code of the record's category, and a NUMERIC or BINARY source one
column of its value as the linear model reads it (standardized: a missing number reads as the
training mean, as it does for the linear model; a missing yes/no as no). When every category
of a source is a number (MNIST's pixel values, quantile bins), the codes are their ranks in
numeric order (0 for the least) and the trees split on them as ordered values; otherwise a
code is the category's place in the vocabulary and LightGBM treats the column as categorical.
A missing category, or one not seen in training, is missing to the trees (NaN): in a ranked
column where the training had missing values, LightGBM sends it down the side of each split
that suited them, and where it had none reads it as 0 (the least ranked category); a
categorical column's splits send it with the categories they did not pick. Token sources
(text, n-grams, OSB, cartesian products) keep an indicator column per token, as the recipe made
them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from openaml.ml.features.pipeline import FeaturePipeline
from openaml.ml.recipes.nodes import CATEGORICAL

Rows = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # FeaturePipeline.rows(): indptr, indices, values
DENSE_CELLS = 1 << 20  # rows x columns scored from a dense array (4 MB): a single record in microseconds


@dataclass(frozen=True)
class TreeColumns:
    """Where each pipeline feature goes: its column, and the code it puts there (NaN: the
    feature's own value); the columns' names, those LightGBM must treat as categorical, and
    those of category codes, where a record without a feature has its category missing."""

    column: np.ndarray  # (n_features,) int32
    code: np.ndarray  # (n_features,) float32
    names: tuple[str, ...]
    categorical: tuple[int, ...]
    coded: np.ndarray  # (n_columns,) bool: absent means missing, not 0
    sources: int  # the pipeline's sources (a text source's tokens are many columns of one)

    @classmethod
    def of(cls, pipeline: FeaturePipeline) -> TreeColumns:
        columns: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        names: list[str] = []
        categorical: list[int] = []
        coded: list[bool] = []
        feature_names = pipeline.feature_names()
        for i, (source, vocab) in enumerate(zip(pipeline.sources, pipeline.vocabs)):
            start, end = int(pipeline.offsets[i]), int(pipeline.offsets[i + 1])
            if vocab is not None and source.kind == CATEGORICAL:
                order = _numeric_order(vocab)
                code = np.empty(end - start, np.float32)
                if order is None:
                    code[:] = np.arange(end - start)
                    categorical.append(len(names))
                else:
                    code[order] = np.arange(end - start)
                columns.append(np.full(end - start, len(names), np.int32))
                codes.append(code)
                names.append(source.canonical)
                coded.append(True)
            else:  # a number, a yes/no value, or one indicator per token: the features as they are
                columns.append(np.arange(len(names), len(names) + end - start, dtype=np.int32))
                codes.append(np.full(end - start, np.nan, np.float32))
                names += feature_names[start:end]
                coded += [False] * (end - start)
        return cls(_joined(columns, np.int32), _joined(codes, np.float32), tuple(names), tuple(categorical),
                   np.array(coded, bool), len(pipeline.sources))

    @property
    def n_columns(self) -> int:
        return len(self.names)

    def for_scoring(self, rows: Rows) -> sp.csr_matrix | np.ndarray:
        """matrix(rows), or the same values as a dense array when it is small (a Predict
        record: making a CSR matrix took three times LightGBM's scoring of it)."""
        indptr, indices, values = rows
        n = len(indptr) - 1
        if n * self.n_columns > DENSE_CELLS:
            return self.matrix(rows)
        dense = np.zeros((n, self.n_columns), np.float32)
        dense[:, self.coded] = np.nan
        dense[np.repeat(np.arange(n), np.diff(indptr)), self.column[indices]] = self._values(indices, values)
        return dense

    def matrix(self, rows: Rows) -> sp.csr_matrix:
        """The records of pipeline rows as a CSR matrix of the trees' columns (float32), NaN
        where a record has no category in a column of codes. A row's features ascend and each
        source's columns follow the previous source's, so the row's columns ascend too (a
        categorical source has one feature a row). Its temporaries are a few times the rows'
        size: callers pass a block at a time."""
        indptr, indices, values = rows
        n = len(indptr) - 1
        columns = self.column[indices]
        # indptr copied: eliminate_zeros (below) rewrites it in place
        whole = sp.csr_matrix((self._values(indices, values), columns, indptr.copy()), shape=(n, self.n_columns))
        coded = np.flatnonzero(self.coded)
        hit = self.coded[columns]
        counted = np.concatenate(([0], np.cumsum(hit, dtype=np.int64)))
        short = np.flatnonzero(counted[indptr[1:]] - counted[indptr[:-1]] < len(coded))
        if len(short) == 0:  # every category there (MNIST's pixels)
            whole.eliminate_zeros()  # a rank 0 (MNIST's blank pixels) need not be stored
            return whole
        # the rows missing a category: which of the coded columns each one has
        place = np.full(self.n_columns, -1, np.int64)
        place[coded] = np.arange(len(coded))
        lengths = indptr[short + 1] - indptr[short]
        entry = np.repeat(indptr[short] - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
        of_row = np.repeat(np.arange(len(short)), lengths)
        keep = hit[entry]
        has = np.zeros((len(short), len(coded)), bool)
        has[of_row[keep], place[columns[entry[keep]]]] = True
        at, which = np.nonzero(~has)
        missing = sp.csr_matrix((np.full(len(at), np.nan, np.float32), (short[at], coded[which])),
                                shape=(n, self.n_columns))
        merged = _merged(whole, missing)
        merged.eliminate_zeros()
        return merged

    def _values(self, indices: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """What the features `indices` (with `values`, None: 1) put in their columns."""
        code = self.code[indices]
        own = np.ones(len(indices), np.float32) if values is None else values.astype(np.float32)
        return np.where(np.isnan(code), own, code)


def _numeric_order(vocab: pa.Array) -> np.ndarray | None:
    """The vocabulary's entries sorted by value when every one is a finite number, else None."""
    try:
        numbers = pc.cast(vocab, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if len(numbers) == 0 or not np.isfinite(numbers).all():
        return None
    return np.argsort(numbers, kind="stable")


def _merged(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """The entries of two CSR matrices with no position in common (NaN kept: a sum would add)."""
    a, b = a.tocoo(), b.tocoo()
    return sp.csr_matrix((np.concatenate([a.data, b.data]), (np.concatenate([a.row, b.row]),
                                                             np.concatenate([a.col, b.col]))), shape=a.shape)


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
