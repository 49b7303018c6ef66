"""How many passes to make: chosen by cross-validation on small data (sgd.maxPasses is a
maximum, models.md §3).

SGD's steps on small data are sized to converge within a few passes (sgd.py), and at the
default sgd.l2RegularizationAmount (1e-6) the exact optimum overfits small tables: a generated
8,000-row bank table scores AUC 0.765 at the optimum against 0.81 to 0.83 after 2 to 4 passes.
So when the training features are small (at least CV_MIN_ROWS records, at most CV_MAX_ENTRIES
stored entries, FOLDS models within half the memory budget), they are kept in memory and
trained FOLDS more times, each time without one fold of the records (drawn by the training's
seed), pass by pass in step. After each pass the folds' models score their held-out records;
their pooled loss and Amazon ML's metric choose the passes (Validation.chosen_passes), and the
folds stop once that choice has not changed for PATIENCE passes in which their training loss
fell (MAX_WAIT passes at most). The model is then trained on every record for the chosen
number of passes. Larger data run every pass, with smaller steps: they would cost FOLDS times
more to validate, and overfit much less.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from openaml.ml.metrics.accumulators import auc_score, macro_f1
from openaml.ml.model_type import ModelType
from openaml.ml.training.blocks import Block, stack

FOLDS = 5
CV_MAX_ENTRIES = 1_000_000  # stored feature entries (about 12 bytes each)
CV_MIN_ROWS = 50  # fewer records: folds of under 10 records say little; every pass runs
PATIENCE = 2
MAX_WAIT = 6  # passes past the best, falling training loss or not (it may never fall: NaN)
MODEL_BYTES = 32  # a fold's training holds about this much per model coefficient


@dataclass(frozen=True)
class PassResult:
    """One pass of a fold's training: its mean training loss, and of its model on the held-out
    records the weighted loss sum, the weight sum and what the metric needs (BINARY: the
    scores; MULTICLASS: the predicted class numbers; REGRESSION: nothing), with their targets.
    Reduced so, the folds' results take a few bytes a record whatever the number of classes."""

    loss: float
    held_loss: float
    held_weight: float
    predicted: np.ndarray
    y: np.ndarray

    @classmethod
    def scored(cls, kind: ModelType, loss: float, scores: np.ndarray, y: np.ndarray, w: np.ndarray) -> PassResult:
        """The result of a pass whose model gives the held-out records these scores (rows,
        outputs)."""
        if kind == ModelType.BINARY:
            predicted = scores[:, 0]
        elif kind == ModelType.MULTICLASS:
            predicted = scores.argmax(axis=1)
        else:
            predicted = np.zeros(0)
        return cls(loss, float(np.dot(w, record_losses(kind, scores, y))), float(w.sum()), predicted, y)


@dataclass(frozen=True)
class Validation:
    """After each pass of the folds' trainings, the held-out records' mean loss and Amazon ML's
    metric of their scores (AUC, macro F1; empty for REGRESSION, whose RMSE follows the loss),
    each record scored by the model of the fold that held it out. by_metric: the passes are
    chosen by the metric first (MULTICLASS: macro F1 weighs rare classes that the loss hardly
    sees; 24 generated classes scored 0.327 chosen by the loss, 0.343 by macro F1), else by the
    loss (BINARY: the log loss follows the ranking more steadily than the AUC of small folds)."""

    losses: tuple[float, ...] = ()
    metrics: tuple[float, ...] = ()
    by_metric: bool = False

    def chosen_passes(self) -> int:
        """The number of passes with the least loss, or the best metric and of those the least
        loss; 0 when there are none."""
        if not self.losses:
            return 0
        losses = [v if np.isfinite(v) else np.inf for v in self.losses]
        metrics = self.metrics if self.by_metric else [0.0] * len(losses)
        return min(range(len(losses)), key=lambda k: (-metrics[k], losses[k])) + 1


def in_memory(blocks: Callable[[], Iterator[Block]], rows: int, coefficients: int, memory_bytes: int
              ) -> tuple[list[Block] | None, Callable[[], Iterator[Block]]]:
    """(kept, source): the training blocks, read once and kept, when they are small enough to
    cross-validate (at least CV_MIN_ROWS records, at most CV_MAX_ENTRIES entries, and FOLDS
    models of `coefficients` within half the memory budget), and a source of them; else None
    and a source whose first read goes on from the blocks read until they were found too
    large (their features are not built twice), and whose later reads are `blocks()`."""
    if not CV_MIN_ROWS <= rows <= CV_MAX_ENTRIES or FOLDS * coefficients * MODEL_BYTES > memory_bytes // 2:
        return None, blocks
    kept: list[Block] = []
    entries = 0
    source = blocks()
    try:
        for block in source:
            entries += len(block.indices)
            kept.append(block)
            if entries > CV_MAX_ENTRIES:
                return None, _going_on(kept, source, blocks)
    except BaseException:
        _close(source)
        raise
    return kept, lambda: iter(kept)


def _going_on(read: list[Block], rest: Iterator[Block],
              blocks: Callable[[], Iterator[Block]]) -> Callable[[], Iterator[Block]]:
    """`blocks`, whose first call yields the blocks `read` and then those of the read begun
    (`rest`, closed however that call ends)."""
    first: list[Iterator[Block]] = []

    def resumed() -> Iterator[Block]:
        try:
            while read:
                yield read.pop(0)  # each block held only until it is used
            yield from rest
        finally:
            _close(rest)

    first.append(resumed())
    return lambda: first.pop() if first else blocks()


def fold_rows(rows: int, index: int, seed: int) -> np.ndarray:
    """The fold (0 to FOLDS - 1) of each of the `rows` records of buffer `index`."""
    return np.random.default_rng([seed, index, rows, FOLDS]).integers(0, FOLDS, rows)


def validation_curve(kind: ModelType, folds: list[Iterator[PassResult]],
                     on_pass: Callable[[Validation], None] | None = None) -> Validation:
    """The folds' trainings run pass by pass in step until the choice of passes has not changed
    for PATIENCE passes in which their training loss fell (or a training ends): a rising loss
    is the overshoot of the first passes on small data, which later passes recover from, not
    overfitting. on_pass is given the validation so far after each pass."""
    found = Validation()
    waited, previous = 0, np.inf
    try:
        for results in zip(*folds):
            training_loss = float(np.mean([r.loss for r in results]))
            falling, previous = training_loss < previous, training_loss
            weight = sum(r.held_weight for r in results)
            loss = sum(r.held_loss for r in results) / weight if weight > 0 else np.nan
            metrics = () if kind == ModelType.REGRESSION else (*found.metrics, pooled_metric(
                kind, np.concatenate([r.predicted for r in results]), np.concatenate([r.y for r in results])))
            found = Validation((*found.losses, loss), metrics, kind == ModelType.MULTICLASS)
            if on_pass is not None:
                on_pass(found)
            waited = 0 if found.chosen_passes() == len(found.losses) else waited + falling
            if waited >= PATIENCE or len(found.losses) - found.chosen_passes() >= MAX_WAIT:
                break
    finally:
        for fold in folds:
            _close(fold)
    return found


def _close(iterator: Iterator[object]) -> None:
    """Close a generator left before its end (its `finally` clauses run now)."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def pooled_metric(kind: ModelType, predicted: np.ndarray, y: np.ndarray) -> float:
    """AUC (BINARY: of the scores) or macro F1 (MULTICLASS: of the predicted class numbers) of
    records whose targets are y (1/0, or the class number)."""
    if kind == ModelType.BINARY:
        return auc_score(predicted, y)
    return macro_f1(y, predicted)


class HeldOut:
    """The records one fold holds out, gathered in the first pass, and a model's loss on them."""

    def __init__(self, kind: ModelType, n_features: int) -> None:
        self.kind, self.n_features = kind, n_features
        self.parts: list[Block] = []
        self._matrix: tuple[sparse.csr_matrix, np.ndarray, np.ndarray] | None = None

    def add(self, block: Block, rows: np.ndarray) -> None:
        """Keep the records `rows` (increasing row numbers) of `block`."""
        if len(rows):
            self.parts.append(block.take(rows))
            self._matrix = None

    def scores(self, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """The model's (linear) scores of the held-out records, (rows, outputs)."""
        x, _, _ = self._stacked()
        scores: np.ndarray = np.asarray(x @ weights) + bias
        return scores

    @property
    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out records' targets and weights."""
        _, y, w = self._stacked()
        return y, w

    def _stacked(self) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        if self._matrix is None:
            block = stack(self.parts) if self.parts else Block.empty()
            values = block.values if len(block.values) else np.ones(len(block.indices))
            x = sparse.csr_matrix((values, block.indices, block.indptr), shape=(len(block.y), self.n_features))
            self._matrix = (x, block.y, block.w)
        return self._matrix


def record_losses(kind: ModelType, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each record's loss for its scores (rows, outputs), as the SGD kernel computes it:
    softmax cross-entropy (y the class index), logistic loss (y in {0, 1}) or half the squared
    error."""
    if kind == ModelType.MULTICLASS:
        top = scores.max(axis=1)
        log_total = np.log(np.exp(scores - top[:, None]).sum(axis=1)) + top
        losses: np.ndarray = log_total - scores[np.arange(len(y)), y.astype(np.int64)]
        return losses
    s = scores[:, 0]
    if kind == ModelType.BINARY:
        losses = np.logaddexp(0.0, s) - y * s
    else:
        losses = 0.5 * (s - y) ** 2
    return losses
