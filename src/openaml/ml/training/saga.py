"""SAGA for linear models whose training features fit in memory (openaml.optimizer=saga).

SAGA (Defazio, Bach and Lacoste-Julien, 2014) keeps each record's last loss gradient with
respect to its scores and steps along the record's new gradient minus its old one plus the
mean of the kept ones (over the records seen so far, in the first pass, as scikit-learn's SAG
does): a variance-reduced step that converges linearly on these convex problems at a constant
step size. The step is scikit-learn's (step_size), from the largest curvature of a record's loss: a
quarter of its weight times its squared norm with the bias's 1 for the logistic and softmax
losses, all of it for the squared error, plus the L2 amount.
Rows are sparse, so the dense mean term reaches a feature's weights only when a record touches
it ("just in time", from running sums of the step sizes over the records seen); L2 is a scale
on all the weights.
The objective is the mean over records of weight x loss, plus L2 / 2 times the squared weights.

Measured in the quality suite (`openaml bench --dataset quality`'s folds, OpenAML's side,
4-fold means, random / sequential; with sgd.shuffleType=auto, against AdaGrad with it):
- one-hot images gain: MNIST sample macro F1 0.9090 / 0.9061 against 0.9050 / 0.9022,
  Fashion-MNIST 10k 0.8332 / 0.8347 against 0.8324 / 0.8333;
- tables whose records' norms vary (standardized numbers with outliers) train with steps
  sized for the largest and fall short in 10 passes: 24 classes 0.260 / 0.263 against
  0.331 / 0.324, amounts RMSE 28.7 against 27.3, digits 0.952 / 0.929 against 0.964 / 0.938;
  the bank tables score alike. So AdaGrad stays the default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from numba import njit

from openaml.ml.errors import InputError
from openaml.ml.model_type import ModelType
from openaml.ml.training.blocks import Block, stack
from openaml.ml.training.kernel import KINDS, _loss_and_gradient
from openaml.ml.training.params import SGDParams
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.sgd import LinearState, LossTrend
from openaml.ml.training.stop import ShouldStop, check

INDEX_BYTES, VALUE_BYTES = 4, 8  # a stored feature entry: its int32 feature number, its float64 value
CHUNK_RECORDS = 4096  # should_stop is asked between chunks of this many records
SMALLEST_SCALE = 1e-9  # the L2 scale is folded into the weights below this


def curvature_share(kind: ModelType) -> float:
    """The largest curvature of a record's loss per unit of its squared norm."""
    return {ModelType.BINARY: 0.25, ModelType.MULTICLASS: 0.25, ModelType.REGRESSION: 1.0}[kind]


def step_size(kind: ModelType, block: Block, l2: float) -> float:
    """scikit-learn's SAGA step, 1 / (2 L + min(2 n L2, L)), L being the largest curvature of a
    record's loss: its weight times its squared norm with the bias's 1, times
    curvature_share, plus L2."""
    curvature = float(np.max((block.squared_norms() + 1.0) * block.w)) * curvature_share(kind) + l2
    return 1.0 / max(2.0 * curvature + min(2.0 * len(block.w) * l2, curvature), 1e-12)


def fit_saga(kind: ModelType, blocks: Callable[[], Iterator[Block]], n_features: int, outputs: int,
             params: SGDParams, memory_bytes: int,
             progress: Callable[[TrainingProgress], None] | None = None,
             should_stop: ShouldStop | None = None) -> LinearState:
    """Up to params.max_passes SAGA passes over every record, until the loss converges
    (sgd.LossTrend); the records' features are read once and kept
    (InputError when they would take more than half of `memory_bytes`)."""
    kept: list[Block] = []
    model = 2 * n_features * outputs * 8  # the weights and the mean of the kept gradients
    valued, entries, records = False, 0, 0
    for block in blocks():
        check(should_stop)
        valued = valued or len(block.values) > 0
        entries += len(block.indices)
        records += len(block.y)
        # the features twice (kept, then stacked; values of 1 too once some block has values),
        # and per record its row start, target, weight, kept gradient, and two per-pass numbers
        features = 2 * entries * (INDEX_BYTES + VALUE_BYTES * valued)
        if model + features + records * (8 * 5 + 8 * outputs + 1) > memory_bytes // 2:
            raise InputError("openaml.optimizer=saga keeps the training features in memory, and these "
                             f"need more than {memory_bytes // 2**21} MiB, its share of this training's "
                             "memory: train with the default optimizer, or with more memory "
                             "(OPENAML_TRAINING_MEMORY)")
        kept.append(block)
    data = stack(kept) if kept else Block.empty()
    del kept
    rows = len(data.y)
    weights = np.zeros((n_features, outputs))
    bias = np.zeros(outputs)
    if rows == 0:
        return LinearState(weights, bias, np.zeros(n_features), np.zeros(outputs))
    step = step_size(kind, data, params.l2)
    state = _State(rows, n_features, outputs)
    done = TrainingProgress(params.max_passes)
    trend = LossTrend()
    weight = float(data.w.sum())
    rng = np.random.default_rng([params.seed, rows])
    for _ in range(params.max_passes):
        order = rng.permutation(rows) if params.shuffle else np.arange(rows)
        total = 0.0
        state.begin_pass()
        for start in range(0, rows, CHUNK_RECORDS):
            check(should_stop)
            total += _saga_steps(KINDS[kind], data.indptr, data.indices, data.values, data.y, data.w,
                                 order[start:start + CHUNK_RECORDS], weights, bias, state.memory, state.seen,
                                 state.mean, state.mean_bias, state.last, state.sums, state.counters, step,
                                 params.l2)
        _catch_up(weights, state.mean, state.last, state.sums, int(state.counters[0]))
        loss = total / weight if weight else 0.0
        if not np.isfinite(loss):
            raise InputError("SAGA's training loss is not finite: the records' values or weights are too "
                             "large for it; train with the default optimizer")
        done = done.after(loss)
        if progress is not None:
            progress(done)
        if trend.converged(loss):
            break
        trend.add(loss)
    return LinearState(weights * state.counters[1], bias, np.zeros(n_features), np.zeros(outputs))


class _State:
    """SAGA's memory: each record's kept gradient (rows, outputs), their sum times each
    feature's value (n_features, outputs) and for the bias, the step of the pass from which each
    feature's weights still lack the mean term, the running sums over the pass of step / (scale
    x records seen) (rows + 1), which records have been seen, and counters: [steps taken in the
    pass, the L2 scale of the weights, records seen]."""

    def __init__(self, rows: int, n_features: int, outputs: int) -> None:
        self.memory = np.zeros((rows, outputs))
        self.mean = np.zeros((n_features, outputs))
        self.mean_bias = np.zeros(outputs)
        self.last = np.zeros(n_features, np.int64)
        self.sums = np.zeros(rows + 1)
        self.seen = np.zeros(rows, np.bool_)
        self.counters = np.array([0.0, 1.0, 0.0])

    def begin_pass(self) -> None:
        """Every feature has taken the mean term up to the end of the last pass."""
        self.last[:] = 0
        self.sums[:] = 0.0
        self.counters[0] = 0.0


@njit(cache=True, nogil=True)
def _saga_steps(kind: int, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, y: np.ndarray,
                w: np.ndarray, order: np.ndarray, weights: np.ndarray, bias: np.ndarray, memory: np.ndarray,
                seen: np.ndarray, mean: np.ndarray, mean_bias: np.ndarray, last: np.ndarray, sums: np.ndarray,
                counters: np.ndarray, step: float, l2: float) -> float:
    """SAGA steps on the records `order`, in order; their summed weighted loss. `weights` hold
    the true weights divided by the scale counters[1]; the mean term of a step is `mean` over
    the records seen so far (all of them after the first pass), as scikit-learn's SAG does.
    `values` empty: every value is 1."""
    outputs = weights.shape[1]
    valued = len(values) > 0
    z = np.empty(outputs)
    change = np.empty(outputs)
    total = 0.0
    for i in order:
        t = int(counters[0])
        if not seen[i]:
            seen[i] = True
            counters[2] += 1.0
        n = counters[2]
        if counters[1] < SMALLEST_SCALE:
            _catch_up(weights, mean, last, sums, t)
            weights *= counters[1]
            counters[1] = 1.0
            sums[t] = 0.0  # every feature took the mean term up to step t: sums start again
        lo, hi = indptr[i], indptr[i + 1]
        for p in range(lo, hi):  # the mean term of the steps since each feature last took it
            f = indices[p]
            lag = sums[t] - sums[last[f]]
            for k in range(outputs):
                weights[f, k] -= lag * mean[f, k]
            last[f] = t + 1  # it takes this step's below
        scale = counters[1]
        for k in range(outputs):
            z[k] = 0.0
        for p in range(lo, hi):
            f, value = indices[p], values[p] if valued else 1.0
            for k in range(outputs):
                z[k] += value * weights[f, k]
        for k in range(outputs):
            z[k] = scale * z[k] + bias[k]
        total += w[i] * _loss_and_gradient(kind, z, y[i])
        scale *= 1.0 - step * l2
        rate = step / scale
        for k in range(outputs):
            change[k] = w[i] * z[k] - memory[i, k]
            memory[i, k] = w[i] * z[k]
            bias[k] -= step * (change[k] + mean_bias[k] / n)
            mean_bias[k] += change[k]
        for p in range(lo, hi):
            f, value = indices[p], values[p] if valued else 1.0
            for k in range(outputs):
                weights[f, k] -= rate * (change[k] * value + mean[f, k] / n)
                mean[f, k] += change[k] * value
        counters[1] = scale
        counters[0] = t + 1
        sums[t + 1] = sums[t] + rate / n
    return total


@njit(cache=True, nogil=True)
def _catch_up(weights: np.ndarray, mean: np.ndarray, last: np.ndarray, sums: np.ndarray, t: int) -> None:
    """Bring every feature's mean term up to step t of the pass."""
    for f in range(weights.shape[0]):
        lag = sums[t] - sums[last[f]]
        if lag != 0.0:
            for k in range(weights.shape[1]):
                weights[f, k] -= lag * mean[f, k]
        last[f] = t
