"""Data-parallel training: SGD passes over the partitions of a datasource on several workers,
their models mixed after every pass (iterative parameter mixing, as Vowpal Wabbit's AllReduce
averages its workers' weights).

The coordinator (`fit_parallel`, given a function that runs one pass on the workers) starts
from the state a single training would start from; each worker runs the pass from the mixed
state over its partitions (`train_pass`) with the same minibatches, step sizes and AdaGrad
updates as sgd.fit_linear; their outcomes add up (`PassSum`: weighted sums, which a cluster
adds in a tree of tasks) into the workers' weights and AdaGrad accumulators averaged, weighted
by the records each one trained on, and so on. Passes average the iterates where a single
training's do, and training stops early on the same convergence test of the pass loss. With one worker the passes are a
single training's (over buffers built part by part).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from itertools import islice

import numpy as np
import pyarrow as pa

from openaml.ml.execution import ONE_THREAD, Execution, one_native_thread, two_at_a_time
from openaml.ml.training.blocks import Block, group_buffers
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.sgd import (
    AVERAGED_PASSES,
    EPSILON,
    MEMORY_BYTES,
    LinearState,
    LossTrend,
    Stepper,
    Weighted,
    minibatch_size,
    minibatches,
    step_reference,
)
from openaml.ml.training.stop import ShouldStop, check
from openaml.ml.training.train import TrainingSetup
from openaml.ml.training.validation import CV_MAX_ENTRIES, CV_MIN_ROWS, FOLDS, MODEL_BYTES

PART_STRIDE = 1 << 20  # buffer numbers of partition k start at k * PART_STRIDE (their random draws)
Parts = Sequence[tuple[int, Callable[[], Iterator[pa.RecordBatch]]]]  # (partition number, its batches)


@dataclass(frozen=True)
class PassOutcome:
    """One worker's pass: its last iterate, the mean of its iterates when averaging (and
    their number), and its summed loss and record weight."""

    state: LinearState
    averaged: LinearState | None
    steps: int
    loss: float
    weight: float


def first_state(setup: TrainingSetup, parts: Parts, memory_bytes: int = MEMORY_BYTES,
                execution: Execution = ONE_THREAD) -> LinearState | None:
    """The state a training starts from: zero weights, and AdaGrad accumulators set by the
    first buffer of the partitions (sgd.step_reference; the first partitions of a split may
    hold no record). None when the data look small
    enough for a single training to cross-validate them (validation.in_memory: the features of
    all records, estimated from that buffer, within CV_MAX_ENTRIES, and the folds' models
    within its share of the budget, `memory_bytes` being a whole training's), which it
    should then do."""
    size = minibatch_size(setup.rows)
    first = next(_buffers(setup, parts, memory_bytes, execution), None)
    if first is None or len(first[1].y) == 0:
        return None
    block = first[1]
    entries = len(block.indices) / len(block.y) * setup.rows
    coefficients = setup.pipeline.n_features * setup.outputs
    if setup.rows < CV_MIN_ROWS or (entries <= CV_MAX_ENTRIES
                                    and FOLDS * coefficients * MODEL_BYTES <= memory_bytes * 3 // 8):
        return None
    reference = step_reference(block, False)
    state = LinearState.zeros(setup.pipeline.n_features, setup.outputs, 0.0)
    initial = EPSILON + (reference / size) ** 2
    state.g2_weights[:] = initial
    state.g2_bias[:] = initial
    return state


def train_pass(setup: TrainingSetup, state: LinearState, pass_number: int, averaging: bool, parts: Parts,
               memory_bytes: int = MEMORY_BYTES, should_stop: ShouldStop | None = None,
               execution: Execution = ONE_THREAD) -> PassOutcome:
    """Pass `pass_number` from `state` over the records of `parts`, each buffer's minibatches
    drawn as a single training draws them (by its number); the mean iterate too when
    `averaging`."""
    params = setup.params
    with one_native_thread():
        stepper = Stepper(setup.model_type, state.copy(), params, minibatch_size(setup.rows), execution.parallel,
                          should_stop, crowded=execution.crowded)
        if averaging:
            stepper.start_averaging()
        loss = weight = 0.0
        for index, buffer in _buffers(setup, parts, memory_bytes, execution):
            check(should_stop)
            order = np.random.default_rng([params.seed, pass_number, index + 1])
            batches = minibatches(len(buffer.y), stepper.size, params, index, order)
            found, w = stepper.run(index, buffer, batches)
            loss, weight = loss + found, weight + w
        averaged = stepper.averaged() if averaging else None
        return PassOutcome(stepper.state, averaged, stepper.steps, loss, weight)


@dataclass(frozen=True)
class PassSum:
    """Workers' pass outcomes added up: their last iterates weighted by the records each
    trained on, their mean iterates (averaging passes) by their steps, and their losses.
    Sums add in any grouping (a tree of tasks on a cluster), so no one place holds every
    worker's model at once."""

    states: Weighted
    means: Weighted | None
    steps: int
    loss: float
    weight: float

    @classmethod
    def of(cls, outcome: PassOutcome) -> PassSum:
        means = None if outcome.averaged is None else Weighted.of(outcome.averaged, outcome.steps)
        return cls(Weighted.of(outcome.state, outcome.weight), means, outcome.steps, outcome.loss, outcome.weight)

    def __add__(self, other: PassSum) -> PassSum:
        means = None if self.means is None or other.means is None else self.means + other.means
        return PassSum(self.states + other.states, means, self.steps + other.steps, self.loss + other.loss,
                       self.weight + other.weight)


def fit_parallel(setup: TrainingSetup, start: LinearState,
                 run_pass: Callable[[LinearState, int, bool], PassSum],
                 progress: Callable[[TrainingProgress], None] | None = None) -> LinearState:
    """Up to params.max_passes passes, each run by `run_pass(state, pass number, averaging)`
    on the workers, which gives their outcomes added up (PassSum); the next pass starts from
    their mix. Averaging runs, and training stops early, as in a single training
    (sgd._passes); the model is the mean iterate of the last AVERAGED_PASSES averaging passes
    (of the last one when the loss converged), or the last mixed one."""
    passes = setup.params.max_passes
    state, trend = start, LossTrend()
    done = TrainingProgress(passes)
    windows: deque[Weighted] = deque(maxlen=AVERAGED_PASSES)
    for k in range(passes):
        averaging = trend.averages(k, passes, bool(windows))
        added = run_pass(state, k, averaging)
        state = added.states.mean()
        loss = added.loss / added.weight if added.weight else 0.0
        converged = averaging and trend.converged(loss)
        if averaging:
            if converged:
                windows.clear()
            windows.append(added.means if added.means is not None else Weighted.of(state, added.steps))
        done = done.after(loss)
        if progress is not None:
            progress(done)
        if converged:
            break
        trend.add(loss)
    final = reduce(operator.add, windows).mean() if windows else state
    final = replace(final, weights=final.weights.astype(np.float64))
    if setup.params.l1 > 0:
        final.weights[state.weights == 0] = 0.0  # what L1 zeroed in the last iterate stays zero
    return final


def _buffers(setup: TrainingSetup, parts: Parts, memory_bytes: int,
             execution: Execution) -> Iterator[tuple[int, Block]]:
    """(number, buffer) of the parts' records, buffers as a single training groups them, numbered
    PART_STRIDE apart from one partition to the next."""
    for part, batches in parts:
        records = (setup.records(batch) for batch in batches())
        blocks = two_at_a_time(setup.block, records, execution)
        for number, buffer in enumerate(islice(group_buffers(blocks, memory_bytes // 8), PART_STRIDE)):
            yield part * PART_STRIDE + number, buffer

