"""The compiled inner loops of minibatch SGD (Numba).

The features are cut into two ranges of about equal work; each range has its own scratch
(a `Part`), and a step runs in three phases: each part transposes the minibatch restricted to
its features (a CSC over the features it touches, in increasing order) and adds their weights
to the minibatch's scores; the loss and its gradient with respect to the scores are computed
from both parts' scores; each part takes one AdaGrad step on its touched feature rows (one
accumulator per row, lazy L2, truncated L1) and adds the step to the running sums that averaging needs. Parts write
disjoint rows, so they can run on two threads (the functions release the GIL) and the result
does not depend on whether they do. Reading weight rows once per step, in increasing order,
is what makes this fast: scattered row accesses dominated the earlier NumPy step. A
transposed minibatch (a `Plan`) can be kept and taken again in later passes, which then cost
only the score and update sweeps.

Indicator features present in more than half the minibatch's rows (a pixel's usual value, a
common category) are "flipped": their column lists the rows where they are absent, and their
weight row is added to every row's scores and taken off those, their gradient is the
minibatch's total minus those rows'. The arithmetic is the same; the sweeps touch
min(present, absent) rows per feature (Fashion-MNIST one-hot pixels: 0.75 of the entries,
MNIST: 0.35).

Only the columns of features with a value other than 1 in the minibatch (a standardized number)
keep their values, one after the other in the order of the columns: indicators (one-hot
values, bins, tokens) cost no value. A 2 M-record tabular training kept 450 MB of plans, two
thirds of them values of 1.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from openaml.ml.model_type import ModelType

MULTICLASS, BINARY, REGRESSION = 0, 1, 2
KINDS = {ModelType.MULTICLASS: MULTICLASS, ModelType.BINARY: BINARY, ModelType.REGRESSION: REGRESSION}
# Parallel regions (run_steps_two) run on TBB or OpenMP, never on Numba's own work queue: it
# costs about 90 us a region here (OpenMP 1.5 us) and aborts the process when two threads
# enter it at once, as two jobs' trainings do. A layer the user chose stays.
CHOSEN_LAYER: str = numba.config.THREADING_LAYER  # type: ignore[attr-defined]  # NUMBA_THREADING_LAYER's
if CHOSEN_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"  # type: ignore[attr-defined]


# touched (relative to the range; ~f for a flipped feature f), col_start, col_rows, valued
# (whether column t has values), col_vals (the valued columns' values, one after the other)
Plan = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Part:
    """Scratch of one feature range [lo, hi) for minibatches of up to `size` rows of at most
    `widest` features each, and its part of their scores."""

    def __init__(self, lo: int, hi: int, size: int, widest: int, outputs: int) -> None:
        self.lo, self.hi, self.widest = lo, hi, widest
        self.count = np.zeros(hi - lo, np.int32)  # all zero between steps
        self.after = np.full(hi - lo, -1, np.int32)  # all -1 between steps
        self.valued = np.zeros(hi - lo, np.bool_)  # all false between steps
        # the narrowest types that hold column starts and minibatch rows: kept plans are
        # read twice a step, and for Fashion-MNIST they take 123 MB instead of 201 MB
        rows = np.uint8 if size <= 1 << 8 else np.uint16 if size <= 1 << 16 else np.int32
        starts = np.int32 if size * widest < 1 << 31 else np.int64
        self.scratch: Plan = (np.zeros(hi - lo, np.int32), np.zeros(size * widest + 1, starts),
                              np.zeros(size * widest, rows), np.zeros(hi - lo, np.bool_),
                              np.zeros(size * widest))
        self.scores = np.zeros((size, outputs))

    @property
    def work(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """transpose's per-feature scratch: count, after, has_values."""
        return self.count, self.after, self.valued


@njit(cache=True, nogil=True)
def transpose(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, rows: np.ndarray,
              lo: int, hi: int, count: np.ndarray, after: np.ndarray, has_values: np.ndarray,
              touched: np.ndarray, col_start: np.ndarray, col_rows: np.ndarray,
              valued: np.ndarray, col_vals: np.ndarray) -> tuple[int, int]:
    """The entries of CSR `rows` (values empty: all 1) whose feature is in [lo, hi), as
    columns: touched[:n] are the features in increasing order (relative to lo), column t holds
    col_rows[col_start[t]:col_start[t + 1]]; valued[t] says whether some value of column t is
    not 1, and the values of such columns follow each other in col_vals[:kept]. In a block of
    indicators only (values empty), a feature in more than half the rows, and at most once in
    each, is flipped: touched holds ~f and its column the rows without it. count, after and
    has_values are scratch (zero, -1 and false, as they are left). Returns (n, kept)."""
    ones = len(values) == 0
    m = len(rows)
    n = 0
    for i in range(len(rows)):
        r = rows[i]
        for j in range(indptr[r], indptr[r + 1]):
            f = indices[j] - lo
            if 0 <= f < hi - lo:
                if count[f] == 0:
                    touched[n] = f
                    n += 1
                count[f] += 1
                if not ones and values[j] != 1.0:
                    has_values[f] = True
                if after[f] == i:  # twice in one row (a value of 2): never flipped
                    after[f] = -2
                elif after[f] != -2:
                    after[f] = i  # the last row seen with f
    if n * 16 < hi - lo:
        touched[:n].sort()
    else:  # most features touched: a scan of the counts is cheaper than sorting
        t = 0
        for f in range(hi - lo):
            if count[f] > 0:
                touched[t] = f
                t += 1
    position = 0
    for t in range(n):
        f = touched[t]
        col_start[t] = position
        if ones and 2 * count[f] > m and after[f] != -2:
            position += m - count[f]
            after[f] = 0  # the rows from here on not yet known to hold f
        else:
            position += count[f]
            after[f] = -1
        count[f] = col_start[t]  # now the next free slot of feature f
    col_start[n] = position
    for i in range(m):
        r = rows[i]
        for j in range(indptr[r], indptr[r + 1]):
            f = indices[j] - lo
            if 0 <= f < hi - lo:
                if after[f] < 0:
                    col_rows[count[f]] = i
                    if has_values[f]:
                        col_vals[count[f]] = values[j]
                    count[f] += 1
                else:  # flipped: the rows between the last one holding f and this one
                    for a in range(after[f], i):
                        col_rows[count[f]] = a
                        count[f] += 1
                    after[f] = i + 1
    kept = 0
    for t in range(n):
        f = touched[t]
        if after[f] >= 0:
            for a in range(after[f], m):
                col_rows[count[f]] = a
                count[f] += 1
            after[f] = -1
            touched[t] = ~f
        count[f] = 0
        valued[t] = has_values[f]
        if has_values[f]:  # its values move next to the valued columns' before it
            for p in range(col_start[t], col_start[t + 1]):
                col_vals[kept] = col_vals[p]
                kept += 1
            has_values[f] = False
    return n, kept


@njit(cache=True, nogil=True)
def add_scores(weights: np.ndarray, lo: int, touched: np.ndarray, col_start: np.ndarray,
               col_rows: np.ndarray, valued: np.ndarray, col_vals: np.ndarray,
               scores: np.ndarray) -> None:
    """scores (rows, outputs) = the transposed minibatch times the weights of its features."""
    scores[:] = 0.0
    single = scores.shape[1] == 1
    value_at = 0  # where the next valued column's values start
    common = np.zeros(scores.shape[1])  # the flipped features' weights: in every row but some
    flipped = False
    for t in range(len(touched)):
        if touched[t] < 0:
            f = lo + ~touched[t]
            flipped = True
            for k in range(scores.shape[1]):
                common[k] += weights[f, k]
            for p in range(col_start[t], col_start[t + 1]):
                i = col_rows[p]
                for k in range(scores.shape[1]):
                    scores[i, k] -= weights[f, k]
        elif not valued[t]:
            f = lo + touched[t]
            if single:  # one output: no loop over outputs inside the loop over entries
                w = weights[f, 0]
                for p in range(col_start[t], col_start[t + 1]):
                    scores[col_rows[p], 0] += w
            else:
                for p in range(col_start[t], col_start[t + 1]):
                    i = col_rows[p]
                    for k in range(scores.shape[1]):
                        scores[i, k] += weights[f, k]
        else:
            f = lo + touched[t]
            moved = value_at - col_start[t]
            if single:
                w = weights[f, 0]
                for p in range(col_start[t], col_start[t + 1]):
                    scores[col_rows[p], 0] += col_vals[p + moved] * w
            else:
                for p in range(col_start[t], col_start[t + 1]):
                    i = col_rows[p]
                    v = col_vals[p + moved]
                    for k in range(scores.shape[1]):
                        scores[i, k] += v * weights[f, k]
            value_at += col_start[t + 1] - col_start[t]
    if flipped:
        for i in range(scores.shape[0]):
            for k in range(scores.shape[1]):
                scores[i, k] += common[k]


@njit(cache=True, nogil=True)
def update(weights: np.ndarray, g2_weights: np.ndarray, shift: np.ndarray, lo: int,
           touched: np.ndarray, col_start: np.ndarray, col_rows: np.ndarray, valued: np.ndarray,
           col_vals: np.ndarray, grads: np.ndarray, eta: float, l1: float, l2: float,
           averaging: bool, steps: int) -> None:
    """One AdaGrad step on each touched feature row, with the score gradients grads (rows,
    outputs) of the minibatch's rows (all of them: flipped features need their total); when
    averaging, shift += steps * decrement."""
    outputs = weights.shape[1]
    single = outputs == 1
    g = np.empty(outputs)
    total = np.zeros(outputs)  # the gradient of a feature in every row, for flipped ones
    if len(touched) and touched.min() < 0:
        for i in range(grads.shape[0]):
            for k in range(outputs):
                total[k] += grads[i, k]
    value_at = 0  # where the next valued column's values start
    for t in range(len(touched)):
        if touched[t] < 0:  # flipped: the total less the rows without the feature
            f = lo + ~touched[t]
            for k in range(outputs):
                g[k] = l2 * weights[f, k] + total[k]
            for p in range(col_start[t], col_start[t + 1]):
                i = col_rows[p]
                for k in range(outputs):
                    g[k] -= grads[i, k]
        else:
            f = lo + touched[t]
            for k in range(outputs):
                g[k] = l2 * weights[f, k]
            if single:  # one output: a scalar sum, added in the same order
                total_f = g[0]
                if not valued[t]:
                    for p in range(col_start[t], col_start[t + 1]):
                        total_f += grads[col_rows[p], 0]
                else:
                    moved = value_at - col_start[t]
                    for p in range(col_start[t], col_start[t + 1]):
                        total_f += col_vals[p + moved] * grads[col_rows[p], 0]
                    value_at += col_start[t + 1] - col_start[t]
                g[0] = total_f
            elif not valued[t]:
                for p in range(col_start[t], col_start[t + 1]):
                    i = col_rows[p]
                    for k in range(outputs):
                        g[k] += grads[i, k]
            else:
                moved = value_at - col_start[t]
                for p in range(col_start[t], col_start[t + 1]):
                    i = col_rows[p]
                    v = col_vals[p + moved]
                    for k in range(outputs):
                        g[k] += v * grads[i, k]
                value_at += col_start[t + 1] - col_start[t]
        h = 0.0
        for k in range(outputs):
            h += g[k] * g[k]
        h = g2_weights[f] + h / outputs
        g2_weights[f] = h
        step = eta / math.sqrt(h)
        if l1 == 0.0:  # separate loops without branches: they vectorize
            for k in range(outputs):
                g[k] *= step  # g becomes the decrement
                weights[f, k] -= g[k]
        else:  # truncated gradient: soft-threshold by the row's step
            for k in range(outputs):
                old = weights[f, k]
                new = old - g[k] * step
                new = math.copysign(max(abs(new) - step * l1, 0.0), new)
                weights[f, k] = new
                g[k] = old - new
        if averaging:
            for k in range(outputs):
                shift[f, k] += steps * g[k]


@njit(cache=True, nogil=True)
def gradients(kind: int, first: np.ndarray, second: np.ndarray, bias: np.ndarray,
              y: np.ndarray, w: np.ndarray, rows: np.ndarray, grads: np.ndarray) -> float:
    """Scores = first + second + bias for the minibatch `rows`; writes into grads the gradient
    of the mean weighted loss with respect to the scores; returns the weighted loss sum."""
    total = 0.0
    m = len(rows)
    for i in range(m):
        r = rows[i]
        z = grads[i]
        for k in range(len(bias)):
            z[k] = first[i, k] + second[i, k] + bias[k]
        total += w[r] * _loss_and_gradient(kind, z, y[r])
        for k in range(len(bias)):
            z[k] *= w[r] / m
    return total


@njit(cache=True, nogil=True)
def bias_step(gradient: np.ndarray, bias: np.ndarray, g2_bias: np.ndarray, shift_bias: np.ndarray,
              eta: float, averaging: bool, steps: int) -> None:
    """One AdaGrad step of the bias (one accumulator per output) with its minibatch gradient;
    when averaging, shift_bias += steps * decrement."""
    for k in range(len(bias)):
        g = gradient[k]
        g2_bias[k] += g * g
        g *= eta / math.sqrt(g2_bias[k])
        bias[k] -= g
        if averaging:
            shift_bias[k] += steps * g


@njit(cache=True, nogil=True)
def feature_counts(indices: np.ndarray, n_features: int) -> np.ndarray:
    """The number of entries of each feature (np.bincount without its int64 copy of `indices`)."""
    counts = np.zeros(n_features, np.int64)
    for f in indices:
        counts[f] += 1
    return counts


@njit(cache=True, nogil=True)
def row_squared_sums(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The sum of each CSR row's squared values (no temporaries: on fresh memory, squaring
    and padding a 35,000-record block's million values took 20 ms)."""
    sums = np.zeros(len(indptr) - 1)
    for row in range(len(sums)):
        total = 0.0
        for k in range(indptr[row], indptr[row + 1]):
            total += values[k] * values[k]
        sums[row] = total
    return sums


@njit(cache=True, nogil=True, inline="always")
def _loss_and_gradient(kind: int, z: np.ndarray, y: float) -> float:
    """Loss of one record with scores z; overwrites z with dLoss/dz. MULTICLASS: softmax
    cross-entropy (y = class index); BINARY: logistic loss (y in {0, 1}); REGRESSION: half
    squared error."""
    if kind == MULTICLASS:
        top = z.max()
        total = 0.0
        for k in range(len(z)):
            z[k] = math.exp(z[k] - top)
            total += z[k]
        c = int(y)
        for k in range(len(z)):
            z[k] /= total
        loss = -math.log(max(z[c], 1e-300))
        z[c] -= 1.0
        return loss
    s: float = z[0]
    if kind == BINARY:
        # log(1 + e^s) - y s, and sigmoid(s) - y, without overflow
        softplus = max(s, 0.0) + math.log1p(math.exp(-abs(s)))
        z[0] = math.exp(s - softplus) - y
        return softplus - y * s
    z[0] = s - y
    return 0.5 * (s - y) * (s - y)


# Plans one after the other: per part, the five arrays of every minibatch's plan concatenated
# (touched, col_start, col_rows, valued, col_vals), then where each minibatch's entries start
# in them: in touched and valued, in col_start (n + 1 entries each), in col_rows and in
# col_vals (minibatches + 1 starts each). col_start stays relative to the minibatch's own
# col_rows. A buffer's kept plans are laid out so; a pass that keeps none uses its Part's
# scratch so, as minibatch 0 every step.
FlatPlan = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                 np.ndarray, np.ndarray]
# a Part's per-feature scratch for transpose: count, after, has_values
Work = tuple[np.ndarray, np.ndarray, np.ndarray]
# what run_steps takes: the model's arrays (weights, g2_weights, shift, bias, g2_bias,
# shift_bias, grads); each feature range's (scores, lo, hi, plans, work); the buffer's
# (positions, rows, row_starts, y, w, indptr, indices, values); and (eta, l1, l2, averaging,
# finish, transposing)
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Range = tuple[np.ndarray, int, int, FlatPlan, Work]
Buffer = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Settings = tuple[float, float, float, bool, bool, bool]


@njit(cache=True, nogil=True)
def run_steps(kind: int, model: Arrays, ranges: tuple[Range, Range], buffer: Buffer, settings: Settings,
              carried: np.ndarray) -> None:
    """Steps without a Python call each (at 35,000 records, two thirds of a pass went to
    those), with the arithmetic of a Stepper's steps one by one, in the same order. Minibatch
    s is plan positions[s] of both ranges, its records rows[row_starts[s]:row_starts[s + 1]];
    `transposing`: its plan is first made there from the CSR buffer (indptr, indices, values),
    each range's features being [lo, hi). carried holds, and is left holding, the running
    loss sum, weight sum, step count (Stepper.steps), the position of the minibatch whose
    update is still due (-1: none), its record count and its step number; `finish` makes
    that update at the end. The GIL is released throughout: the next feature blocks are
    made meanwhile."""
    _steps(kind, model, ranges, buffer, settings, carried)


@njit(cache=True, nogil=True, parallel=True)
def run_steps_two(kind: int, model: Arrays, ranges: tuple[Range, Range], buffer: Buffer, settings: Settings,
                  carried: np.ndarray) -> None:
    """run_steps with each step's two ranges on two threads (a thread-safe Numba threading
    layer's; a hand-over costs microseconds): the same arithmetic, bit for bit."""
    _steps(kind, model, ranges, buffer, settings, carried)


@njit(cache=True, nogil=True, inline="always")
def _steps(kind: int, model: Arrays, ranges: tuple[Range, Range], buffer: Buffer, settings: Settings,
           carried: np.ndarray) -> None:
    """run_steps; its ranges' loops are parallel where inlined into a parallel function."""
    grads = model[6]
    positions, rows, row_starts = buffer[0], buffer[1], buffer[2]
    # a parallel loop takes tuples of arrays, not tuples of those: the ranges, taken apart
    scores0, lo0, hi0, plans0, work0 = ranges[0]
    scores1, lo1, hi1, plans1, work1 = ranges[1]
    done, done_rows, t_done = int(carried[3]), int(carried[4]), int(carried[5])
    sums = np.empty(len(model[3]) + grads.shape[0])
    for s in range(len(positions) + 1):
        # the last round makes the update still due, when finishing
        last = s == len(positions)
        if last and not (settings[4] and done >= 0):
            break
        upcoming = rows[:0] if last else rows[row_starts[s]:row_starts[s + 1]]
        b = -1 if last else positions[s]
        for part in prange(2):
            _range_step(_pick(part, scores0, scores1), _pick(part, lo0, lo1), _pick(part, hi0, hi1),
                        _pick(part, plans0, plans1), _pick(part, work0, work1), model, grads[:done_rows], done,
                        t_done, upcoming, b, buffer, settings)
        if last:
            done = -1
        else:
            done, done_rows, t_done = _joint_step(kind, model, scores0, scores1, upcoming, b, buffer, settings,
                                                  carried, sums)
    carried[3], carried[4], carried[5] = done, done_rows, t_done


def two_compiled_threads() -> bool:
    """Whether run_steps_two can run (`one_thread_reason`); if so, the calling thread's
    parallel regions get two threads (its own setting, whatever the machine's cores)."""
    if one_thread_reason() is not None:
        return False
    numba.set_num_threads(2)
    return True


def one_thread_reason() -> str | None:
    """Why SGD steps run on one thread here, or None: Numba needs a thread-safe threading
    layer (TBB, or OpenMP through the system's libgomp) and two threads."""
    with _probing:  # the probe runs once: Numba's work queue aborts when two threads enter it
        return _probed_layer()


_probing = threading.Lock()


@functools.cache
def _probed_layer() -> str | None:
    threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    if threads < 2:
        return f"Numba may use {threads} thread (NUMBA_NUM_THREADS; by default the CPUs)"
    if CHOSEN_LAYER == "workqueue":  # not even tried
        return "NUMBA_THREADING_LAYER is workqueue, which two threads may not enter at once"
    try:
        _probe(np.zeros(2))
    except ValueError:  # no layer could be loaded
        if CHOSEN_LAYER == "default":
            return ("Numba found no thread-safe threading layer: install the system's OpenMP runtime "
                    "(libgomp1 on Debian and Ubuntu) or `pip install tbb`")
        return f"the threading layer that NUMBA_THREADING_LAYER chose ({CHOSEN_LAYER!r}) could not be loaded"
    layer = numba.threading_layer()
    return None if layer in ("tbb", "omp") else f"Numba's threading layer is {layer}, which is not thread-safe"


@njit(cache=True, nogil=True, parallel=True)
def _probe(out: np.ndarray) -> None:
    for i in prange(len(out)):
        out[i] = i


@njit(cache=True, nogil=True, inline="always")
def _pick(part: int, first: Any, second: Any) -> Any:
    """first for part 0, else second (values of one type: a parallel loop's selection)."""
    return first if part == 0 else second


@njit(cache=True, nogil=True)
def _range_step(scores: np.ndarray, lo: int, hi: int, plans: FlatPlan, work: Work, model: Arrays,
                grads: np.ndarray, done: int, t_done: int, upcoming: np.ndarray, b: int, buffer: Buffer,
                settings: Settings) -> None:
    """One feature range's share of a step (the range's Range taken apart): the update of
    minibatch `done` (position; -1: none), whose gradient is `grads`, then, unless b is -1,
    the plan of minibatch `upcoming` at position b (made first when transposing: before it
    replaces the done one's) and its scores."""
    weights, g2_weights, shift = model[0], model[1], model[2]
    eta, l1, l2, averaging, transposing = settings[0], settings[1], settings[2], settings[3], settings[5]
    if done >= 0:
        _update_planned(weights, g2_weights, shift, lo, plans, done, grads, eta, l1, l2, averaging, t_done)
    if b < 0:
        return
    if transposing:
        transpose_into(buffer[5], buffer[6], buffer[7], upcoming, lo, hi, work, plans, b)
    _scores_planned(weights, lo, plans, b, scores[:len(upcoming)])


@njit(cache=True, nogil=True)
def _joint_step(kind: int, model: Arrays, first: np.ndarray, second: np.ndarray, upcoming: np.ndarray, b: int,
                buffer: Buffer, settings: Settings, carried: np.ndarray, sums: np.ndarray) -> tuple[int, int, int]:
    """The part of a step both ranges' scores take: the loss gradient into grads, the bias's
    step, and carried's loss sum, weight sum and step count; sums is scratch. The step's
    (position, records, step number), whose update is then due."""
    bias, g2_bias, shift_bias, grads = model[3], model[4], model[5], model[6]
    y, w = buffer[3], buffer[4]
    eta, averaging = settings[0], settings[3]
    m, t = len(upcoming), int(carried[2])
    carried[0] += gradients(kind, first, second, bias, y, w, upcoming, grads)
    bias_gradient, scratch = sums[:len(bias)], sums[len(bias):len(bias) + m]
    # as NumPy sums grads[:m] over its rows: pairwise for one output, else row by row
    if len(bias) == 1:
        scratch[:] = grads[:m, 0]
        bias_gradient[0] = pairwise_sum(scratch)
    else:
        bias_gradient[:] = 0.0
        for i in range(m):
            for k in range(len(bias)):
                bias_gradient[k] += grads[i, k]
    bias_step(bias_gradient, bias, g2_bias, shift_bias, eta, averaging, t)
    if averaging:
        carried[2] += 1
    for i in range(m):
        scratch[i] = w[upcoming[i]]
    carried[1] += pairwise_sum(scratch)
    return b, m, t


@njit(cache=True, nogil=True)
def transpose_into(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, rows: np.ndarray, lo: int,
                    hi: int, work: Work, plans: FlatPlan, b: int) -> None:
    """Transpose minibatch `rows` into plans at position b (where the plan before it ends)."""
    touched, col_start, col_rows, valued, col_vals, t_at, s_at, r_at, v_at = plans
    count, after, has_values = work
    t, c, r, v = t_at[b], s_at[b], r_at[b], v_at[b]
    n, kept = transpose(indptr, indices, values, rows, lo, hi, count, after, has_values, touched[t:],
                        col_start[c:], col_rows[r:], valued[t:], col_vals[v:])
    t_at[b + 1], s_at[b + 1], r_at[b + 1], v_at[b + 1] = t + n, c + n + 1, r + col_start[c + n], v + kept


@njit(cache=True, nogil=True, inline="always")
def _scores_planned(weights: np.ndarray, lo: int, plans: FlatPlan, b: int, scores: np.ndarray) -> None:
    touched, col_start, col_rows, valued, col_vals, t_at, s_at, r_at, v_at = plans
    add_scores(weights, lo, touched[t_at[b]:t_at[b + 1]], col_start[s_at[b]:s_at[b + 1]],
               col_rows[r_at[b]:r_at[b + 1]], valued[t_at[b]:t_at[b + 1]], col_vals[v_at[b]:v_at[b + 1]],
               scores)


@njit(cache=True, nogil=True, inline="always")
def _update_planned(weights: np.ndarray, g2_weights: np.ndarray, shift: np.ndarray, lo: int, plans: FlatPlan,
                    b: int, grads: np.ndarray, eta: float, l1: float, l2: float, averaging: bool,
                    steps: int) -> None:
    touched, col_start, col_rows, valued, col_vals, t_at, s_at, r_at, v_at = plans
    update(weights, g2_weights, shift, lo, touched[t_at[b]:t_at[b + 1]], col_start[s_at[b]:s_at[b + 1]],
           col_rows[r_at[b]:r_at[b + 1]], valued[t_at[b]:t_at[b + 1]], col_vals[v_at[b]:v_at[b + 1]],
           grads, eta, l1, l2, averaging, steps)


@njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray) -> float:
    """NumPy's sum of a float64 array, bit for bit: pairwise over halves cut at multiples of 8,
    blocks of up to 128 summed in 8 interleaved accumulators."""
    n = len(a)
    if n < 8:
        total = 0.0
        for i in range(n):
            total += a[i]
        return total
    if n <= 128:
        r = a[:8].copy()
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        total = float(((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])))
        while i < n:
            total += a[i]
            i += 1
        return total
    half = n // 2
    half -= half % 8
    return pairwise_sum(a[:half]) + pairwise_sum(a[half:])
