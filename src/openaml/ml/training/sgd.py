"""Minibatch SGD with AdaGrad steps for linear models (models.md §2.1).

Records arrive as feature blocks; they are grouped into buffers of BUFFER_ROWS rows (fewer when
that would pass an eighth of the memory budget, but at least MIN_BUFFER_ROWS). When shuffling
is on, each buffer is split into minibatches by a random partition drawn once, visited in a new
random order every pass (buffers kept in memory also in a random order). Buffers are kept in memory between
passes, as their transposed minibatches, while they fit half the budget; beyond that every pass
re-reads the data, so memory stays bounded whatever the number of records.

The model returned is the average of the iterates over the last AVERAGED_PASSES passes
(Polyak-Ruppert averaging, kept lazily per touched coordinate): the last iterate of AdaGrad on
one-hot data depends on the order of the final minibatches (MNIST sample macro F1 0.873-0.899
over seeds 1-12), the average much less (0.895-0.899 over seeds 1-30).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.model_type import ModelType
from openaml.ml.training.kernel import KINDS, Part, Plan, bias_step, feature_counts, gradients, update
from openaml.ml.training.params import SGDParams
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.stop import ShouldStop, check

BUFFER_ROWS, MIN_BUFFER_ROWS = 65_536, 10_000
MEMORY_BYTES = 2**30  # default budget of a training job's data: buffers and cache
ETA = 0.3
# The squared loss's gradient grows with the residual, unlike the logistic losses' (at most 1):
# REGRESSION takes a third of the step. MNIST sample (digit as the target, seeds 1-3): test RMSE
# 3.26 with numeric pixels and 1.75 with categorical ones, against 8.44 and 2.31 at ETA.
ETA_REGRESSION = 0.1
EPSILON = 1e-8
TOLERANCE = 1e-5
# Minibatch size grows with the data: small data sets keep about 100 steps per pass (quality),
# large ones take fewer, larger steps (each step costs a fixed overhead on top of its records):
# 256 records up to 256,000 records, then about 1,000 steps per pass up to LARGE_MINIBATCH.
# Tabular benchmark (BINARY, default recipe): 1.4 M training records, passes 0.65 -> 0.37 s at
# 1,024 (AUC 0.84697 -> 0.84692; 4,096 was no faster, AUC 0.84628); 350,000 records, 0.15 ->
# 0.12 s at 512 (AUC 0.84359 -> 0.84358).
MIN_MINIBATCH, MAX_MINIBATCH, STEPS_PER_PASS = 64, 256, 100
LARGE_MINIBATCH, LARGE_STEPS_PER_PASS = 1024, 1000
# AdaGrad accumulators start at (192 / minibatch)^2 instead of 0: rare features (one-hot values
# seen a few times) then take plain-SGD-sized steps of about ETA / 192 = 0.0016 per record
# instead of full ETA-sized ones, which regularizes them (MNIST one-hot macro F1 0.87 -> 0.90);
# frequent features soon behave as in plain AdaGrad. Scaling with the minibatch keeps that
# per-record step. With row-wise accumulators (a mean square over the outputs, smaller than the
# largest output's), (ETA, reference) = (0.3, 192) beat (0.1, 96), whose rare step is 0.0010:
# macro F1 over seeds 1-8, Fashion-MNIST / MNIST sample, 0.8557 / 0.8995 against 0.8537 /
# 0.8967; (0.2, 128), (0.4, 256) and (0.6, 384) come within 0.0015 of (0.3, 192). (models.md
# §2.1 allows any deterministic, tuning-free step size; per-coordinate AdaGrad at 0.1 is its
# example.) BINARY AUC (MNIST sample, "is it a 3"): 0.977 with categorical pixels, 0.974 with
# numeric ones, against 0.976 and 0.972 at (0.1, 64).
REFERENCE_MINIBATCH = 192
AVERAGED_PASSES = 2
STOP_CHECK_STEPS = 16  # should_stop is asked every this many minibatches (a step: ms at most)


def minibatch_size(rows: int) -> int:
    """Records per SGD step for a training set of `rows` records: rows / 100 within [64, 256],
    or rows / 1000 up to 1024 where that is larger."""
    small = int(np.clip(rows // STEPS_PER_PASS, MIN_MINIBATCH, MAX_MINIBATCH))
    return max(small, min(rows // LARGE_STEPS_PER_PASS, LARGE_MINIBATCH))


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

    def without_features(self) -> Block:
        """The targets and weights alone: what a buffer needs once its plans are kept. The
        empty feature arrays are new ones: empty views would keep the features alive."""
        return Block(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0), self.y, self.w)

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.values.nbytes + self.y.nbytes
                   + self.w.nbytes)


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


def fit_linear(kind: ModelType, blocks: Callable[[], Iterator[Block]], n_features: int, outputs: int,
               params: SGDParams, rows: int,
               progress: Callable[[TrainingProgress], None] | None = None,
               memory_bytes: int = MEMORY_BYTES, should_stop: ShouldStop | None = None,
               execution: Execution = ONE_THREAD) -> LinearState:
    """Run up to params.max_passes passes over `rows` records; stop when the pass loss improves
    by < 1e-5 (relative). Returns the iterates averaged over the last passes (pass 1 excluded).
    should_stop is asked before each buffer and every STOP_CHECK_STEPS steps; once it answers
    True, fitting raises Cancelled."""
    size = minibatch_size(rows)
    state = LinearState.zeros(n_features, outputs, (REFERENCE_MINIBATCH / size) ** 2)
    with execution.helper("sgd") as pool:
        return _passes(_Stepper(kind, state, params, size, pool, should_stop), blocks, params,
                       progress, memory_bytes)


def compile_large_minibatches() -> None:
    """Run one step with a minibatch of more than 256 records: the kernels' variants for
    their row numbers (uint16) compile now, not in the first large training (seconds)."""
    size = MAX_MINIBATCH + 1
    rows = np.arange(size)
    block = Block(np.arange(size + 1, dtype=np.int64), (rows % 2).astype(np.int32),
                  np.linspace(0.5, 1.5, size), (rows % 2).astype(np.float64), np.ones(size))
    stepper = _Stepper(ModelType.BINARY, LinearState.zeros(2, 1, 1.0), SGDParams(), size)
    stepper.run(0, block, [rows], keep=True)


def _passes(stepper: _Stepper, blocks: Callable[[], Iterator[Block]], params: SGDParams,
            progress: Callable[[TrainingProgress], None] | None, memory_bytes: int) -> LinearState:
    # After the first pass, buffers that fit half the budget stay in memory as their
    # minibatches already transposed (the kernel's plans), which replace their features.
    cache: list[Block] | None = None
    previous = np.inf
    done = TrainingProgress(params.max_passes)
    for k in range(params.max_passes):
        if k == max(1, params.max_passes - AVERAGED_PASSES):
            stepper.start_averaging()
        rng = np.random.default_rng([params.seed, k])
        buffers: Iterator[tuple[int, Block]] | list[tuple[int, Block]]
        keep = cache is None and k == 0 and params.max_passes > 1  # plans for later passes
        if cache is not None:
            buffers = list(enumerate(cache))
            if params.shuffle:
                buffers = [buffers[i] for i in rng.permutation(len(buffers))]
        else:
            buffers = enumerate(_buffers(blocks(), memory_bytes // 8))
        total, weight, kept_bytes, kept = 0.0, 0.0, 0, []
        for index, buffer in buffers:
            check(stepper.should_stop)
            order = np.random.default_rng([params.seed, k, index + 1])  # same cached or re-read
            batches = _minibatches(len(buffer.y), stepper.size, params, index, order)
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
        done = done.after(mean_loss)
        if progress is not None:
            progress(done)
        # Converged: the loss fell by less than the tolerance. A rising loss (early overshoot on
        # small data) is not convergence, so training goes on.
        if np.isfinite(previous) and 0 <= previous - mean_loss < TOLERANCE * abs(previous):
            break
        previous = mean_loss
    return stepper.averaged()


def _minibatches(rows: int, size: int, params: SGDParams, index: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """The minibatches of buffer `index`, rows sorted within each. Shuffled: a random partition
    of the buffer drawn once (the same every pass, so kept plans stay valid), visited in a new
    random order each pass; else file order. (MNIST sample and Fashion-MNIST macro F1 are the
    same as with a new partition each pass.)"""
    if not params.shuffle:
        return [np.arange(i, min(i + size, rows)) for i in range(0, rows, size)]
    partition = np.random.default_rng([params.seed, index, rows]).permutation(rows)
    batches = [np.sort(partition[i:i + size]) for i in range(0, rows, size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class _Stepper:
    """AdaGrad updates of the coordinates a minibatch touches (lazy regularization), and the
    running average of the iterates once averaging starts: after T steps with decrements d_t,
    mean(w_1..w_T) = w_T + sum((t - 1) * d_t) / T, so only touched coordinates are updated.

    The two feature ranges of the kernel run on two threads when `pool` is given; step k's
    weight update of a range and step k + 1's scores of that range go together, so a step
    costs one hand-over between threads."""

    def __init__(self, kind: ModelType, state: LinearState, params: SGDParams, size: int,
                 pool: ThreadPoolExecutor | None = None, should_stop: ShouldStop | None = None) -> None:
        self.kind, self.state, self.params, self.size, self.pool = kind, state, params, size, pool
        self.should_stop = should_stop
        self.eta = ETA_REGRESSION if kind == ModelType.REGRESSION else ETA
        self.parts: tuple[Part, Part] | None = None
        self.plans: dict[int, dict[int, list[Plan | None]]] = {}  # buffer -> minibatch -> part
        self.grads = np.zeros((size, state.weights.shape[1]))
        self.steps = 0
        self.shift = np.zeros((0, state.weights.shape[1]), state.weights.dtype)  # sum((t - 1) * d_t)
        self.shift_bias = np.zeros_like(state.bias)
        self.averaging = False

    def start_averaging(self) -> None:
        self.shift = np.zeros_like(self.state.weights)
        self.averaging = True

    def averaged(self) -> LinearState:
        """The average of the iterates since start_averaging (the last iterate before it);
        weights that L1 has set to zero in the last iterate stay zero."""
        s = self.state
        weights = s.weights.astype(np.float64)
        if not self.averaging or self.steps == 0:
            return LinearState(weights, s.bias, s.g2_weights, s.g2_bias)
        weights += self.shift / self.steps
        if self.params.l1 > 0:
            weights[s.weights == 0] = 0.0
        return LinearState(weights, s.bias + self.shift_bias / self.steps, s.g2_weights, s.g2_bias)

    def run(self, index: int, block: Block, batches: list[np.ndarray],
            keep: bool = False) -> tuple[float, float]:
        """Take one step per minibatch of buffer `index` (row numbers of `block`, sorted: memory
        is read in order); return (weighted loss sum, weight sum). keep: keep the transposed
        minibatches, by position in the buffer's partition; kept ones are used instead of
        transposing again."""
        s = self.state
        first, second = self._parts(block)
        plans = self.plans.get(index)
        if plans is None and len(block.indptr) <= len(block.y):
            raise ValueError("a buffer without features needs its kept plans")
        if keep and plans is None:
            plans = self.plans[index] = {}
        total, done, t = 0.0, None, 0
        for number, upcoming in enumerate([*batches, None]):
            if number % STOP_CHECK_STEPS == STOP_CHECK_STEPS - 1:
                check(self.should_stop)  # no step is half done: the other thread is idle
            pair: list[Plan | None] | None = None
            if upcoming is not None and plans is not None:
                key = int(upcoming[0])  # its first row names a minibatch of the partition
                pair = plans.setdefault(key, [None, None])
            if self.pool is None:
                self._half(0, first, block, done, upcoming, t, pair)
                self._half(1, second, block, done, upcoming, t, pair)
            else:
                later = self.pool.submit(self._half, 1, second, block, done, upcoming, t, pair)
                self._half(0, first, block, done, upcoming, t, pair)
                later.result()
            if upcoming is None:
                break
            t = self.steps
            total += gradients(KINDS[self.kind], first.scores, second.scores, s.bias, block.y,
                               block.w, upcoming, self.grads)
            # NumPy's sum: pairwise over the rows for one output, as the model always had
            bias_step(self.grads[:len(upcoming)].sum(axis=0), s.bias, s.g2_bias, self.shift_bias,
                      self.eta, self.averaging, t)
            if self.averaging:
                self.steps += 1
            done = upcoming
        return total, float(block.w.sum())

    def plan_bytes(self, index: int) -> int:
        return sum(a.nbytes for pair in self.plans.get(index, {}).values()
                   for plan in pair if plan is not None for a in plan)

    def _half(self, which: int, part: Part, block: Block, done: np.ndarray | None,
              upcoming: np.ndarray | None, t: int, pair: list[Plan | None] | None) -> None:
        """Update the range's weights with the step of minibatch `done`, then compute its part
        of the scores of minibatch `upcoming`, from its kept plan in pair[which] if there is
        one, else transposing it (and keeping that when `pair` is given)."""
        s, p = self.state, self.params
        if done is not None:
            update(s.weights, s.g2_weights, self.shift, part.lo, *part.plan, self.grads[:len(done)],
                   self.eta, p.l1, p.l2, self.averaging, t)
        if upcoming is None:
            return
        plan = pair[which] if pair is not None else None
        part.prepare(block.indptr, block.indices, block.values, upcoming, s.weights, plan)
        if pair is not None and plan is None:
            pair[which] = part.kept()

    def _parts(self, block: Block) -> tuple[Part, Part]:
        """The two feature ranges, split where the first block's expected step cost
        (`_step_costs`) is halved. The split never moves (kept plans hold features relative
        to it); a wider block only gets larger scratch."""
        widest = int(np.diff(block.indptr).max(initial=0))
        n, outputs = self.state.weights.shape
        if self.parts is None:
            costs = np.cumsum(_step_costs(block, n, self.size))
            split = int(np.searchsorted(costs, costs[-1] / 2)) if n else 0
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


def _buffers(blocks: Iterator[Block], limit_bytes: int) -> Iterator[Block]:
    """Group blocks into buffers of BUFFER_ROWS records, or fewer (at least MIN_BUFFER_ROWS)
    when they reach `limit_bytes`; the last may be smaller."""
    pending: list[Block] = []
    rows = size = 0
    for block in blocks:
        if len(block.y) == 0:
            continue
        pending.append(block)
        rows += len(block.y)
        size += block.nbytes
        if rows >= BUFFER_ROWS or (rows >= MIN_BUFFER_ROWS and size >= limit_bytes):
            yield _stack(pending)
            pending, rows, size = [], 0, 0
    if pending:
        yield _stack(pending)


def _stack(blocks: list[Block]) -> Block:
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
