"""Minibatch SGD with AdaGrad steps for linear models (models.md §2.1).

Records arrive as feature blocks; they are grouped into buffers of BUFFER_ROWS rows (fewer when
that would pass an eighth of the memory budget, but at least MIN_BUFFER_ROWS). When shuffling
is on, each buffer is split into minibatches by a random partition drawn once, visited in a new
random order every pass (buffers kept in memory also in a random order). Buffers are kept in memory between
passes, as their transposed minibatches, while they fit half the budget; beyond that every pass
re-reads the data, so memory stays bounded whatever the number of records.

The model returned is the average of the iterates over the last AVERAGED_PASSES passes, or
over the last pass when the loss converged (Polyak-Ruppert averaging,
kept lazily per touched coordinate, started again each pass): the last iterate of AdaGrad on
one-hot data depends on the order of the final minibatches (MNIST sample macro F1 0.873-0.899
over seeds 1-12), the average much less (0.895-0.899 over seeds 1-30). Passes average only
where they may be among the last (averaging costs MNIST's wide steps a third more). On small
data the number of passes is chosen first by cross-validation (validation.py), whose folds'
models are averaged the same way.
"""

from __future__ import annotations

import operator
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial, reduce

import numpy as np

from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.model_type import ModelType
from openaml.ml.training.blocks import Block, group_buffers
from openaml.ml.training.kernel import (
    KINDS,
    FlatPlan,
    Part,
    feature_counts,
    run_steps,
    run_steps_two,
    two_compiled_threads,
)
from openaml.ml.training.params import SGDParams
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.stop import ShouldStop, check
from openaml.ml.training.thread_choice import ThreadChoice
from openaml.ml.training.validation import (
    CV_MIN_ROWS,
    FOLDS,
    HeldOut,
    PassResult,
    Validation,
    fold_rows,
    in_memory,
    validation_curve,
)

MEMORY_BYTES = 2**30  # default budget of a training job's data: buffers and cache
ETA = 0.3
# The squared loss's curvature is a record's squared norm, four times the logistic loss's:
# REGRESSION takes a quarter of the step, the same share of 1 / L (scikit-learn's diabetes in
# 4-fold cross-validation: RMSE 54.62 against 54.76 at 0.1 and 56.86 at 0.01).
ETA_REGRESSION = ETA / 4
EPSILON = 1e-8
# Converged: a pass improves the mean training loss by less than this share. The tabular
# benchmark's 1.4 M training records stop after 7 passes of 10 (the 7th improved it by 0.074 %),
# AUC 0.84608 against 0.84617 after 10; no training of the quality suite stops earlier (its
# image models improve by over 10 % a pass, small data stop by cross-validation first).
TOLERANCE = 1e-3
# Minibatch size grows with the data: data too large to cross-validate take about 300 steps a
# pass, small data 100 (quality), large ones fewer, larger steps (each step costs a fixed
# overhead on top of its records): MAX_MINIBATCH records up to 256,000 records, then about
# 1,000 steps per pass up to LARGE_MINIBATCH. Tabular benchmark (BINARY, default recipe):
# 1.4 M training records, passes 0.65 -> 0.37 s at 1,024 (AUC 0.84697 -> 0.84692; 4,096 was
# no faster, AUC 0.84628); 350,000 records, 0.15 -> 0.12 s at 512 (AUC 0.84359 -> 0.84358).
# MNIST sample (5,250 records, 4 folds; oracle 0.9104 random, 0.9087 sequential): macro F1
# 0.9020 / 0.9016 in 100 steps of 52 records at 0.25 of the norm, 192 at least (below),
# 0.9044 / 0.9041 in 300 of 17, 0.9060 / 0.9054 with 0.125 of the norm, 128 at least, as
# now. Small data stay at 100: with 300, digits lost 0.004 and diabetes 0.3 RMSE.
STEPS_PER_PASS, SMALL_STEPS_PER_PASS = 300, 100
MIN_MINIBATCH, MAX_MINIBATCH = 16, 256
LARGE_MINIBATCH, LARGE_STEPS_PER_PASS = 1024, 1000
# Small data (cross-validated, validation.py, or too few records to be) take their 100 steps a
# pass whatever their size, in minibatches down to one record (SMALL_MIN_MINIBATCH). In
# minibatches of 64, a few hundred records of MNIST's 784 one-hot pixels took 2 or 3 steps a
# pass, each far too large for a record's 784 active features; the folds' losses stayed
# several times the uniform model's, cross-validation chose 1 or 2 passes by chance, and half
# of 12 seeds of 150 records scored macro F1 under 0.1. Minibatches of at least 16 still left
# data under 1,600 records short of 100 steps a pass (wine's 133 training records 8), and
# short of convergence in 10 passes: the quality suite's 4-fold means, random (3 draws) /
# sequential, with 16 -> with 1: wine macro F1 0.9689 / 0.9775 -> 0.9741 / 0.9849
# (scikit-learn 0.9739 / 0.9867), diabetes RMSE 55.40 / 54.64 -> 55.19 / 54.53, digits
# 0.9683 / 0.9364 -> 0.9685 / 0.9391, breast cancer alike; MNIST sample subsets (held-out
# macro F1, seeds): 150 records 0.706 -> 0.709 (12 seeds), 400 0.808 both, 1,000 0.858 ->
# 0.860; generated tables of 600-1,500 records within 0.002 either way.
SMALL_MIN_MINIBATCH = 1
# AdaGrad accumulators start at (reference / minibatch)^2 instead of 0: a feature's step per
# record is then at most ETA / reference until its squared gradients outgrow that. Rare features
# (one-hot values seen a few times) take such steps instead of full ETA-sized ones, which
# regularizes them (MNIST one-hot macro F1 0.87 -> 0.90); frequent features soon behave as in
# plain AdaGrad. The reference is the larger of
# - NORM_SHARE of the records' mean squared norm: the step is then at most a share of 1 / L,
#   L being a record's largest curvature (a quarter of its squared norm for the logistic loss);
#   one-hot MNIST: 784 / 4 = 196, what tuning on it had found (192) in steps of 52 records;
#   the three times as many steps a pass of data too large to cross-validate take half that
#   share (LARGE_NORM_SHARE);
# - SIZE_REFERENCE, unless the data are small (cross-validation then chooses the passes when
#   there are more than one, see fit_linear), with which larger data converge within 10
#   passes and which regularizes them (35,000 records of a generated table: AUC 0.8309,
#   against 0.8265 with the norm alone, about 10). Small data take 10 passes at 192 to go
#   where larger data go in one (that table at 8,000 records: AUC 0.81-0.83 after 3 passes
#   at its norm, reached after 40 at 192), and then overfit, which cross-validation
#   (validation.py) stops.
# (models.md §2.1 allows any deterministic, tuning-free step size.)
NORM_SHARE, LARGE_NORM_SHARE = 0.25, 0.125
SIZE_REFERENCE = 128.0
AVERAGED_PASSES = 2
AVERAGE_BELOW = 10  # averaging starts once a pass improves the loss by less than this many tolerances
STOP_CHECK_STEPS = 16  # should_stop is asked every this many minibatches (a step: ms at most)
# A step runs on two threads only when its expected work (`_step_costs`, times the outputs) is
# at least this many ns. A hand-over costs about 1.5 us (kernel.run_steps_two), but tabular
# steps gained nothing measurable on two threads: training of the tabular benchmark's
# 1.4 M records (steps of 0.35 ms expected) 3.00-3.35 s against 2.99-3.09 s on one, at
# 350,000 records 0.98-1.22 s against 1.09-1.29 s, at 35,000 the same; the second thread
# makes their features meanwhile. MNIST sample (70 %, about 1.5 ms expected in steps of 16
# records): 0.39-0.45 s against 0.60 s.
THREADED_STEP_NS = 500_000


class LossTrend:
    """The mean losses of a training's passes so far, as the convergence test reads them: a
    pass converged when it lowered the loss by less than TOLERANCE right after a pass that
    lowered it by less than AVERAGE_BELOW tolerances. A rising loss is not convergence, and
    neither is one small fall: small data overshoot in their first passes, whose losses
    (several times the uniform model's) rise and fall by chance. A fold of 490 MNIST records
    whose loss went from 13.96 to 13.95 stopped after 2 passes, so cross-validation chose 2
    passes (macro F1 0.01); 3 seeds of 75 stopped so, at macro F1 0.01 to 0.60. The loss is
    levelling off once a pass lowered it by less than AVERAGE_BELOW tolerances, or raised it
    (the next passes may be the last: they average their iterates)."""

    def __init__(self) -> None:
        self.previous = self.improvement = np.inf

    def converged(self, loss: float) -> bool:
        return bool(np.isfinite(self.previous) and 0 <= self.previous - loss < TOLERANCE * abs(self.previous)
                    and 0 <= self.improvement < AVERAGE_BELOW * TOLERANCE)

    def levelling(self) -> bool:
        return bool(self.improvement < AVERAGE_BELOW * TOLERANCE)

    def averages(self, k: int, passes: int, averaging: bool) -> bool:
        """Whether pass k (from 0) of `passes` averages its iterates: it may be among the
        last AVERAGED_PASSES, averaging has begun (`averaging`), or the loss levels off."""
        return k >= passes - AVERAGED_PASSES or averaging or self.levelling()

    def add(self, loss: float) -> None:
        """The next pass's loss."""
        finite = np.isfinite(self.previous) and self.previous
        self.improvement = (self.previous - loss) / abs(self.previous) if finite else np.inf
        self.previous = loss


def minibatch_size(rows: int, small: bool = False) -> int:
    """Records per SGD step for a training set of `rows` records: rows / 300 within [16, 256]
    (`small` data, cross-validated or too few records to be: rows / 100 within [1, 256]), or
    rows / 1000 up to 1024 where that is larger."""
    steps, least = (SMALL_STEPS_PER_PASS, SMALL_MIN_MINIBATCH) if small else (STEPS_PER_PASS, MIN_MINIBATCH)
    size = int(np.clip(rows // steps, least, MAX_MINIBATCH))
    return max(size, min(rows // LARGE_STEPS_PER_PASS, LARGE_MINIBATCH))


@dataclass
class LinearState:
    """Weights (n_features, outputs), bias (outputs,) and their AdaGrad accumulators, which hold
    EPSILON + the initial value + the sum of squared gradients (a step is eta * g / sqrt(acc)).
    Weights share one accumulator per feature (n_features,), summing the mean square of the
    row's gradient over the outputs ("row-wise AdaGrad"; the same as per-coordinate AdaGrad
    with one output): an update touches 1/outputs of the accumulator memory and takes one
    square root per row instead of one per output. Fashion-MNIST passes went from 0.7 to
    0.45 s, macro F1 unchanged. The bias keeps one per output. While training, the per-feature
    arrays are float32 (steps are computed in float64); the returned model is float64."""

    weights: np.ndarray
    bias: np.ndarray
    g2_weights: np.ndarray
    g2_bias: np.ndarray

    @classmethod
    def zeros(cls, n_features: int, outputs: int, initial: float) -> LinearState:
        return cls(np.zeros((n_features, outputs), np.float32), np.zeros(outputs),
                   np.full(n_features, EPSILON + initial, np.float32),
                   np.full(outputs, EPSILON + initial))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.weights, self.bias, self.g2_weights, self.g2_bias

    def copy(self) -> LinearState:
        return LinearState(*(a.copy() for a in self.arrays()))


@dataclass(frozen=True)
class Weighted:
    """A weighted sum of states (float64 arrays), its total weight, and one of the states
    summed (their mean when none has weight: a worker without records returns the state it
    was given, so then they are all that one)."""

    sums: LinearState
    total: float
    some: LinearState

    @classmethod
    def of(cls, state: LinearState, weight: float) -> Weighted:
        return cls(LinearState(*(np.asarray(a, np.float64) * weight for a in state.arrays())), weight, state)

    def __add__(self, other: Weighted) -> Weighted:
        return Weighted(LinearState(*(a + b for a, b in zip(self.sums.arrays(), other.sums.arrays(), strict=True))),
                        self.total + other.total, self.some)

    def mean(self) -> LinearState:
        """The weighted mean, in the dtypes of the states summed."""
        if self.total <= 0:
            return self.some.copy()
        return LinearState(*((a / self.total).astype(b.dtype) for a, b in zip(self.sums.arrays(),
                                                                                self.some.arrays(), strict=True)))


def fit_linear(kind: ModelType, blocks: Callable[[], Iterator[Block]], n_features: int, outputs: int,
               params: SGDParams, rows: int,
               progress: Callable[[TrainingProgress], None] | None = None,
               memory_bytes: int = MEMORY_BYTES, should_stop: ShouldStop | None = None,
               execution: Execution = ONE_THREAD) -> LinearState:
    """Run up to params.max_passes passes over `rows` records, as many as cross-validation
    chooses on small data (validation.py); stop earlier when the pass loss improves by < TOLERANCE
    (relative). Returns the mean of the iterates of the last AVERAGED_PASSES passes (of the
    last pass when the loss converged; of the only pass: from its first step). `progress` is told of each pass, of the
    folds while cross-validating (the validation losses so far, no training loss) and then
    of the training. should_stop is asked before each buffer and every STOP_CHECK_STEPS
    steps; once it answers True, fitting raises Cancelled."""
    choice = ThreadChoice()  # one for the folds and the training: each way is measured once

    def stepper(small: bool) -> Stepper:
        return Stepper(kind, LinearState.zeros(n_features, outputs, 0.0), params, size, execution.parallel,
                       should_stop, small, execution.crowded, choice)

    def validating(found: Validation) -> None:
        if progress is not None:
            progress(TrainingProgress(params.max_passes, validation=found))

    kept, source = in_memory(blocks, rows, n_features * outputs, memory_bytes)
    # small data take large steps (cross-validation stops them when they overfit)
    small = kept is not None or rows < CV_MIN_ROWS
    size = minibatch_size(rows, small)
    found = Validation() if kept is None or params.max_passes < 2 else validation_curve(kind, [
        _validated_passes(stepper(True), source, params, memory_bytes, fold) for fold in range(FOLDS)], validating)
    done = TrainingProgress(params.max_passes, validation=found, chosen_passes=found.chosen_passes())
    model: Callable[[], LinearState] | None = None
    for loss, latest in _passes(stepper(small), source, params, memory_bytes,
                                done.chosen_passes or params.max_passes):
        done, model = done.after(loss), latest
        if progress is not None:
            progress(done)
    assert model is not None  # one pass at least
    return model()


def compile_steps() -> None:
    """Run the SGD kernels' variants that small trainings do not reach: steps on two threads
    (wide data with many outputs, MNIST's) and on one, with minibatches of up to 256 records
    and of more (uint16 row numbers), each pass making its plans, keeping them and taking
    them again. They compile now, not in the first training that needs them (seconds)."""
    for size in (MIN_MINIBATCH, MAX_MINIBATCH + 1):
        rows = np.arange(size)
        block = Block(np.arange(size + 1, dtype=np.int64), (rows % 2).astype(np.int32),
                      np.linspace(0.5, 1.5, size), (rows % 2).astype(np.float64), np.ones(size))
        for threaded in (False, True):
            stepper = Stepper(ModelType.BINARY, LinearState.zeros(2, 1, 1.0), SGDParams(), size, threaded)
            stepper._parts(block)
            stepper.threaded = stepper.two_threads
            stepper.run(0, block, [rows])
            stepper.run(0, block, [rows], keep=True)
            stepper.run(0, block.without_features(), [rows])


def step_reference(block: Block, small: bool) -> float:
    """The AdaGrad reference of a training whose first buffer is `block`: NORM_SHARE of its
    records' mean squared norm, at least 1, when the data are `small` (small enough to
    cross-validate, or under CV_MIN_ROWS records), else LARGE_NORM_SHARE of it, at least
    SIZE_REFERENCE; times the records' mean weight, which scales their gradients: the same
    weight on every record then makes the same steps (a weight of 0.001 on every record left
    a model near zero after 10 passes)."""
    squares = block.squared_norms()
    share = NORM_SHARE if small else LARGE_NORM_SHARE
    norm = share * float(np.mean(squares)) if len(block.y) else 0.0
    weight = float(np.mean(block.w)) if len(block.w) else 1.0
    return max(1.0, norm, 0.0 if small else SIZE_REFERENCE) * weight


def _passes(stepper: Stepper, blocks: Callable[[], Iterator[Block]], params: SGDParams,
            memory_bytes: int, passes: int, fold: int | None = None,
            held: HeldOut | None = None) -> Iterator[tuple[float, Callable[[], LinearState]]]:
    """Up to `passes` passes, each giving its mean training loss and a function of the model so
    far (to call before the next pass), until the loss converges (falls by under TOLERANCE in a
    pass that averaged); on every record, or on those out of `fold`, which go to `held` in the
    first pass. Averaging starts again every pass that may be among the last (every pass with
    a fold, whose every model is scored): the model is the mean of the iterates of the last
    AVERAGED_PASSES passes, or of the last one's when the loss converged. An earlier pass's
    mean (a copy of a wide model's weights) is kept only where a later pass may use it."""
    # After the first pass, buffers that fit half the budget stay in memory as their
    # minibatches already transposed (the kernel's plans), which replace their features.
    cache: list[Block] | None = None
    trained_rows: dict[int, np.ndarray] = {}  # with a fold: each buffer's records out of it
    trend = LossTrend()
    windows: deque[tuple[LinearState, int]] = deque(maxlen=AVERAGED_PASSES - 1)  # earlier passes' (mean, steps)
    for k in range(passes):
        if fold is not None or trend.averages(k, passes, stepper.averaging):
            stepper.start_averaging()
        rng = np.random.default_rng([params.seed, k])
        buffers: Iterator[tuple[int, Block]] | list[tuple[int, Block]]
        keep = cache is None and k == 0 and passes > 1  # plans for later passes
        if cache is not None:
            buffers = list(enumerate(cache))
            if params.shuffle:
                buffers = [buffers[i] for i in rng.permutation(len(buffers))]
        else:
            buffers = enumerate(group_buffers(blocks(), memory_bytes // 8))
        total, weight, kept_bytes, kept = 0.0, 0.0, 0, []
        for index, buffer in buffers:
            check(stepper.should_stop)
            if k == 0 and index == 0:  # the first buffer sets the step sizes
                stepper.set_reference(step_reference(buffer, stepper.small))
            training = None
            if fold is not None:
                training = trained_rows.get(index)
                if training is None:  # first seen: drawn once, the same in every pass
                    folds = fold_rows(len(buffer.y), index, params.seed)
                    training = trained_rows[index] = np.flatnonzero(folds != fold)
                    if held is not None:
                        held.add(buffer, np.flatnonzero(folds == fold))
            order = np.random.default_rng([params.seed, k, index + 1])  # same cached or re-read
            batches = minibatches(len(buffer.y), stepper.size, params, index, order, training)
            loss, w = stepper.run(index, buffer, batches, keep)
            total += loss
            weight += w
            if keep:
                kept_bytes += stepper.plan_bytes(index) + buffer.y.nbytes + buffer.w.nbytes
                keep = kept_bytes <= memory_bytes // 2
                kept.append(buffer.without_features())
                if not keep:
                    stepper.plans.clear()
        if keep:
            cache = kept
        mean_loss = total / weight if weight else 0.0
        # converged in a pass whose iterates were averaged (else one more pass averages)
        converged = stepper.averaging and trend.converged(mean_loss)
        # this pass's mean, made once for a later pass's model and for this one's (the last
        # pass's, and a converged one's, only when asked for)
        kept_mean = stepper.averaged() if stepper.averaging and not converged and k < passes - 1 else None
        yield mean_loss, partial(_model_now, stepper, [] if converged else list(windows), kept_mean)
        if converged:
            return
        if kept_mean is not None:
            windows.append((kept_mean, stepper.steps))
        trend.add(mean_loss)


def _validated_passes(stepper: Stepper, blocks: Callable[[], Iterator[Block]], params: SGDParams,
                      memory_bytes: int, fold: int) -> Iterator[PassResult]:
    """The passes of a training without `fold`, with the scores of `fold` by each pass's model
    (the final training's of as many passes)."""
    held = HeldOut(stepper.kind, stepper.state.weights.shape[0])
    for loss, model in _passes(stepper, blocks, params, memory_bytes, params.max_passes, fold, held):
        state = model()
        yield PassResult.scored(stepper.kind, loss, held.scores(state.weights, state.bias), *held.targets)


def _model_now(stepper: Stepper, earlier: list[tuple[LinearState, int]],
               latest: LinearState | None = None) -> LinearState:
    """The mean of the iterates of the earlier passes' (mean, steps) and of the stepper's pass
    (its mean `latest`, when made already); weights that L1 has set to zero in the last
    iterate stay zero."""
    model = _mean_of([*earlier, (latest if latest is not None else stepper.averaged(), stepper.steps)])
    if stepper.params.l1 > 0 and earlier:
        model.weights[stepper.state.weights == 0] = 0.0
    return model


def _mean_of(windows: Iterable[tuple[LinearState, int]]) -> LinearState:
    """The mean of runs of iterates, from the mean of each and its number of steps (the latest
    run's state when there is one, or none took a step)."""
    runs = list(windows)[::-1]  # the latest first
    if len(runs) == 1:
        return runs[0][0]
    return reduce(operator.add, (Weighted.of(state, n) for state, n in runs)).mean()


def minibatches(rows: int, size: int, params: SGDParams, index: int,
                 rng: np.random.Generator, training: np.ndarray | None = None) -> list[np.ndarray]:
    """The minibatches of buffer `index`, of its `training` rows (all of them when None), rows
    sorted within each. Shuffled: a random partition of those rows drawn once (the same every
    pass, so kept plans stay valid), visited in a new random order each pass; else file order.
    (MNIST sample and Fashion-MNIST macro F1 are the same as with a new partition each pass.)"""
    rows_used = np.arange(rows) if training is None else training
    if not params.shuffle:
        return [rows_used[i:i + size] for i in range(0, len(rows_used), size)]
    partition = rows_used[np.random.default_rng([params.seed, index, rows]).permutation(len(rows_used))]
    batches = [np.sort(partition[i:i + size]) for i in range(0, len(rows_used), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass(frozen=True)
class FlatPlans:
    """A buffer's kept plans laid out for run_steps (kernel.FlatPlan, one per part) and the
    position of each minibatch's, by its first row."""

    parts: tuple[FlatPlan, FlatPlan]
    positions: dict[int, int]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for part in self.parts for a in part)


def _arena(part: Part, block: Block, minibatches: int) -> FlatPlan:
    """Room for the plans of `minibatches` minibatches of `block` in `part`: every plan array
    holds at most one entry per feature entry (a flipped column lists fewer rows than it has),
    col_start one more per minibatch. Pages never written cost no memory; _trimmed keeps what
    was."""
    entries = len(block.indices)
    _, starts, rows, _, _ = part.scratch
    return (np.empty(entries, np.int32), np.empty(entries + minibatches, starts.dtype), np.empty(entries, rows.dtype),
            np.empty(entries, np.bool_), np.empty(entries if len(block.values) else 0),
            *(np.zeros(minibatches + 1, np.int64) for _ in range(4)))  # type: ignore[return-value]


def _scratch_plan(part: Part) -> FlatPlan:
    """The part's scratch as plans of one minibatch, for a pass that keeps none."""
    return (*part.scratch, *(np.zeros(2, np.int64) for _ in range(4)))  # type: ignore[return-value]


def _trimmed(plans: FlatPlan) -> FlatPlan:
    """Plans laid out in an _arena, copied to their size."""
    touched, col_start, col_rows, valued, col_vals, t_at, s_at, r_at, v_at = plans
    return (touched[:t_at[-1]].copy(), col_start[:s_at[-1]].copy(), col_rows[:r_at[-1]].copy(),
            valued[:t_at[-1]].copy(), col_vals[:v_at[-1]].copy(), t_at, s_at, r_at, v_at)


class Stepper:
    """AdaGrad updates of the coordinates a minibatch touches (lazy regularization), and the
    running average of the iterates once averaging starts: after T steps with decrements d_t,
    mean(w_1..w_T) = w_T + sum((t - 1) * d_t) / T, so only touched coordinates are updated.

    The two feature ranges of the kernel run on two threads when `two_threads` is given, a
    step's expected work is worth it (THREADED_STEP_NS), nothing else runs beside
    (`crowded`: on two cores, four trainings at once took 17.4 s with two-thread steps, 14.1 s
    with one) and, chunk by chunk, they have not lately cost more than one thread
    (thread_choice: another process on a core makes every step wait); step k's weight update
    of a range and step k + 1's scores of that range go together, so a step costs one
    hand-over between threads."""

    def __init__(self, kind: ModelType, state: LinearState, params: SGDParams, size: int,
                 two_threads: bool = False, should_stop: ShouldStop | None = None,
                 small: bool = False, crowded: Callable[[], bool] = ONE_THREAD.crowded,
                 choice: ThreadChoice | None = None) -> None:
        self.kind, self.state, self.params, self.size = kind, state, params, size
        self.two_threads = two_threads and two_compiled_threads()
        self.threaded = False  # whether steps run on two threads: set with the ranges, by their cost
        self.crowded = crowded  # asked before each buffer: other work beside keeps the steps on one
        # two threads or one, chunk by chunk, by their recent costs (shared by a training's folds)
        self.choice = choice if choice is not None else ThreadChoice()
        self.small = small  # small data, whose passes cross-validation chooses: larger steps
        self.should_stop = should_stop
        self.eta = ETA_REGRESSION if kind == ModelType.REGRESSION else ETA
        self.parts: tuple[Part, Part] | None = None
        self.plans: dict[int, FlatPlans] = {}  # buffer -> its kept plans
        self.grads = np.zeros((size, state.weights.shape[1]))
        self.steps = 0
        self.shift = np.zeros((0, state.weights.shape[1]), state.weights.dtype)  # sum((t - 1) * d_t)
        self.shift_bias = np.zeros_like(state.bias)
        self.averaging = False

    def set_reference(self, reference: float) -> None:
        """Start the weights' and bias's AdaGrad accumulators at (reference / size)^2."""
        initial = EPSILON + (reference / self.size) ** 2
        self.state.g2_weights[:] = initial
        self.state.g2_bias[:] = initial

    def start_averaging(self) -> None:
        """Average the iterates from the next step on (again, when averaging already)."""
        self.shift = np.zeros_like(self.state.weights)
        self.shift_bias = np.zeros_like(self.state.bias)
        self.steps = 0
        self.averaging = True

    def averaged(self) -> LinearState:
        """The average of the iterates since start_averaging (the last iterate before it);
        weights that L1 has set to zero in the last iterate stay zero."""
        s = self.state
        weights = s.weights.astype(np.float64)
        if not self.averaging or self.steps == 0:
            return LinearState(weights, s.bias.copy(), s.g2_weights, s.g2_bias)
        weights += self.shift / self.steps
        if self.params.l1 > 0:
            weights[s.weights == 0] = 0.0
        return LinearState(weights, s.bias + self.shift_bias / self.steps, s.g2_weights, s.g2_bias)

    def run(self, index: int, block: Block, batches: list[np.ndarray],
            keep: bool = False) -> tuple[float, float]:
        """Take one step per minibatch of buffer `index` (row numbers of `block`, sorted: memory
        is read in order); return (weighted loss sum, weight sum). STOP_CHECK_STEPS steps a
        compiled call (kernel.run_steps, or run_steps_two when `threaded` and self.choice says
        so): over the kept plans, or transposing each minibatch into its Part's scratch, or,
        with `keep`, into plans laid end to end that the next passes take."""
        s, p = self.state, self.params
        plans = self.plans.get(index)
        if plans is None and len(block.indptr) <= len(block.y):
            raise ValueError("a buffer without features needs its kept plans")
        parts = self._parts(block)
        transposing = plans is None
        if plans is not None:
            flat = plans.parts
            positions = np.array([plans.positions[int(rows[0])] for rows in batches], np.int64)
        elif keep:
            flat = (_arena(parts[0], block, len(batches)), _arena(parts[1], block, len(batches)))
            positions = np.arange(len(batches), dtype=np.int64)
        else:  # each minibatch's plan in the scratch, as minibatch 0
            flat = (_scratch_plan(parts[0]), _scratch_plan(parts[1]))
            positions = np.zeros(len(batches), np.int64)
        rows = np.concatenate(batches) if batches else np.zeros(0, np.int64)
        row_starts = np.zeros(len(batches) + 1, np.int64)
        np.cumsum([len(rows) for rows in batches], out=row_starts[1:])
        carried = np.array([0.0, 0.0, self.steps, -1, 0, 0])  # see run_steps
        model = (s.weights, s.g2_weights, self.shift, s.bias, s.g2_bias, self.shift_bias, self.grads)
        first, second = parts
        ranges = ((first.scores, first.lo, first.hi, flat[0], first.work),
                  (second.scores, second.lo, second.hi, flat[1], second.work))
        threaded = self.threaded and not self.crowded()
        if threaded:
            two_compiled_threads()
        for start in range(0, len(batches), STOP_CHECK_STEPS):
            if start:
                check(self.should_stop)  # no step is half done
            end = min(start + STOP_CHECK_STEPS, len(batches))
            buffer = (positions[start:end], rows, row_starts[start:end + 1], block.y, block.w, block.indptr,
                      block.indices, block.values)
            two = threaded and self.choice.two_threads(transposing)
            began = time.perf_counter()
            (run_steps_two if two else run_steps)(KINDS[self.kind], model, ranges, buffer,
                                                  (self.eta, p.l1, p.l2, self.averaging, end == len(batches),
                                                   transposing), carried)
            if threaded:
                self.choice.record(transposing, two, time.perf_counter() - began, end - start)
        self.steps = int(carried[2])
        if keep and transposing:
            self._keep(index, flat, batches)
        return float(carried[0]), float(carried[1])

    def _keep(self, index: int, arenas: tuple[FlatPlan, FlatPlan], batches: list[np.ndarray]) -> None:
        """Keep buffer `index`'s plans, made in `arenas` in the order of `batches`."""
        self.plans[index] = FlatPlans((_trimmed(arenas[0]), _trimmed(arenas[1])),
                                      {int(rows[0]): b for b, rows in enumerate(batches)})

    def plan_bytes(self, index: int) -> int:
        plans = self.plans.get(index)
        return plans.nbytes if plans is not None else 0

    def _parts(self, block: Block) -> tuple[Part, Part]:
        """The two feature ranges, split where the first block's expected step cost
        (`_step_costs`) is halved. The split never moves (kept plans hold features relative
        to it); a wider block only gets larger scratch."""
        widest = int(np.diff(block.indptr).max(initial=0))
        n, outputs = self.state.weights.shape
        if self.parts is None:
            costs = np.cumsum(_step_costs(block, n, self.size))
            split = int(np.searchsorted(costs, costs[-1] / 2)) if n else 0
            self.threaded = self.two_threads and n > 0 and bool(costs[-1] * outputs >= THREADED_STEP_NS)
        elif widest > self.parts[0].widest:
            split = self.parts[0].hi
        else:
            return self.parts
        self.parts = (Part(0, split, self.size, widest, outputs),
                      Part(split, n, self.size, widest, outputs))
        return self.parts


def _step_costs(block: Block, n_features: int, size: int) -> np.ndarray:
    """Each feature's expected cost in a step of `size` rows, from its frequency in the
    block: an update costs about 27 ns per touched feature row and the sweeps 13 ns per entry
    of the transposed minibatch, where a flipped feature lists the rows without it (measured
    on Fashion-MNIST, 10 outputs). Halving the entries instead left one thread waiting a
    fifth of each pass. Every entry is counted: in a sample, rare features (most of them)
    would be seen once or not at all, and the touched cost of the sampled ones overstated."""
    share = np.minimum(feature_counts(block.indices, n_features) / max(1, len(block.y)), 1.0)
    touched = 1.0 - (1.0 - share) ** size
    return 27.0 * touched + 13.0 * size * np.minimum(share, 1.0 - share)
