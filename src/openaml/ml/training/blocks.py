"""Training records as CSR blocks, and their grouping into SGD buffers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from openaml.ml.training.kernel import row_squared_sums

BUFFER_ROWS, MIN_BUFFER_ROWS = 65_536, 10_000


@dataclass(frozen=True)
class Block:
    """Records as CSR rows (indptr int64, indices int32 feature numbers, values float64, empty
    when every value is 1, as for one-hot features), targets (rows,) as float64 (MULTICLASS:
    the class index) and record weights (rows,)."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    y: np.ndarray
    w: np.ndarray

    @classmethod
    def from_rows(cls, rows: tuple[np.ndarray, np.ndarray, np.ndarray | None], y: np.ndarray,
                  w: np.ndarray) -> Block:
        """A block from FeaturePipeline.rows() output."""
        indptr, indices, values = rows
        return cls(indptr.astype(np.int64, copy=False), indices.astype(np.int32, copy=False),
                   np.zeros(0) if values is None else values, y, w)

    @classmethod
    def empty(cls) -> Block:
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0), np.zeros(0), np.zeros(0))

    def squared_norms(self) -> np.ndarray:
        """Each record's squared norm (its number of features when every value is 1)."""
        if not len(self.values):
            return np.diff(self.indptr).astype(np.float64)
        return row_squared_sums(self.indptr, self.values)

    def take(self, rows: np.ndarray) -> Block:
        """The records `rows` (increasing row numbers) as a block of their own."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        entries = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        return Block(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), self.indices[entries],
                     self.values[entries] if len(self.values) else np.zeros(0), self.y[rows], self.w[rows])

    def without_features(self) -> Block:
        """The targets and weights alone: what a buffer needs once its plans are kept. The
        empty feature arrays are new ones: empty views would keep the features alive."""
        return Block(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0), self.y, self.w)

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.values.nbytes + self.y.nbytes
                   + self.w.nbytes)


def group_buffers(blocks: Iterator[Block], limit_bytes: int) -> Iterator[Block]:
    """Group consecutive blocks into buffers of up to BUFFER_ROWS records (a larger block is a
    buffer alone), or fewer (at least MIN_BUFFER_ROWS) when they reach `limit_bytes`; the last
    may be smaller. A block is never split, and one that is a buffer alone is not copied:
    stacking the tabular benchmark's 52,000-record blocks in pairs took a quarter of its first pass."""
    pending: list[Block] = []
    rows = size = 0
    for block in blocks:
        if len(block.y) == 0:
            continue
        if pending and rows >= MIN_BUFFER_ROWS and rows + len(block.y) > BUFFER_ROWS:
            yield stack(pending)
            pending, rows, size = [], 0, 0
        pending.append(block)
        rows += len(block.y)
        size += block.nbytes
        if rows >= BUFFER_ROWS or (rows >= MIN_BUFFER_ROWS and size >= limit_bytes):
            yield stack(pending)
            pending, rows, size = [], 0, 0
    if pending:
        yield stack(pending)


def stack(blocks: list[Block]) -> Block:
    if len(blocks) == 1:
        return blocks[0]
    starts = np.cumsum([0] + [len(b.indices) for b in blocks[:-1]])
    indptr = np.concatenate([[0]] + [b.indptr[1:] + s for b, s in zip(blocks, starts)])
    if all(len(b.values) == 0 for b in blocks):
        values = np.zeros(0)
    else:
        values = np.concatenate([b.values if len(b.values) else np.ones(len(b.indices)) for b in blocks])
    return Block(indptr, np.concatenate([b.indices for b in blocks]), values,
                 np.concatenate([b.y for b in blocks]), np.concatenate([b.w for b in blocks]))
