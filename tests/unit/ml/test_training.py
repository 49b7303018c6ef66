import dataclasses
import gc
import io
import json
import os
import subprocess
import sys
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression

from openaml.ml import number_sketch
from openaml.ml.data import DataObject, ingest, parse_rearrangement, read_materialized
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.execution import Execution
from openaml.ml.metrics.accumulators import auc_score
from openaml.ml.prediction import RecordScorer, predict_record
from openaml.ml.schema import Schema
from openaml.ml.training import (
    ParameterError,
    SGDParams,
    TrainingError,
    check_target,
    parse_parameters,
    sgd,
    train_model,
)
from openaml.ml.training import kernel as kernel_module
from openaml.ml.training.blocks import Block
from openaml.ml.training.sgd import ETA, ETA_REGRESSION, LinearState, Stepper, _step_costs, minibatch_size
from openaml.ml.training.size import feature_costs, trim_features

from .conftest import make_batch, make_schema


def test_parameter_defaults_and_rules():
    assert parse_parameters({}, "BINARY") == SGDParams(max_passes=10, shuffle=False, l1=0.0, l2=1e-6,
                                                       max_size=33_554_432)
    p = parse_parameters({"sgd.l1RegularizationAmount": "1.0E-04", "sgd.l2RegularizationAmount": "0.0",
                          "sgd.shuffleType": "auto", "sgd.maxPasses": "3"}, "BINARY")
    assert (p.l1, p.l2, p.shuffle, p.max_passes) == (1e-4, 0.0, True, 3)
    assert parse_parameters({"sgd.l1RegularizationAmount": "1e-4"}, "BINARY").l2 == 0.0
    for bad in ({"sgd.l1RegularizationAmount": "1e-4", "sgd.l2RegularizationAmount": "1e-4"},
                {"sgd.maxPasses": "0"}, {"sgd.maxPasses": "10001"}, {"sgd.maxPasses": "x"},
                {"sgd.maxMLModelSizeInBytes": "99999"}, {"sgd.maxMLModelSizeInBytes": "2147483649"},
                {"sgd.shuffleType": "AUTO"}, {"sgd.l2RegularizationAmount": "-1"},
                {"sgd.l2RegularizationAmount": "nan"}, {"sgd.other": "1"}):
        with pytest.raises(ParameterError):
            parse_parameters(bad, "BINARY")


def test_check_target():
    schema = make_schema([("a", "NUMERIC"), ("y", "CATEGORICAL")], targetAttributeName="y")
    check_target("MULTICLASS", schema)
    for kind in ("BINARY", "REGRESSION"):
        with pytest.raises(ValueError, match="cannot use"):
            check_target(kind, schema)
    with pytest.raises(ValueError, match="no targetAttributeName"):
        check_target("BINARY", make_schema([("a", "NUMERIC")]))


def _numeric_data(x: np.ndarray, y: np.ndarray, target_type: str):
    names = [f"f{i}" for i in range(x.shape[1])]
    schema = make_schema([(n, "NUMERIC") for n in names] + [("y", target_type)], targetAttributeName="y")
    cols = {n: [repr(float(v)) for v in x[:, i]] for i, n in enumerate(names)}
    cols["y"] = [str(int(v)) if target_type == "BINARY" else repr(float(v)) for v in y]
    return schema, make_batch(cols)


def test_binary_breast_cancer_auc():
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    schema, batch = _numeric_data(x, y, "BINARY")
    train, test = batch.slice(0, 400), batch.slice(400)
    model = train_model("BINARY", schema, '{"outputs": ["ALL_NUMERIC"]}',
                        parse_parameters({"sgd.shuffleType": "auto"}, "BINARY"), None, lambda: iter([train]))
    assert auc_score(model.score_batch(test), y[400:]) >= 0.98


def test_regression_diabetes_rmse_close_to_least_squares():
    x, y = load_diabetes(return_X_y=True)
    schema, batch = _numeric_data(x, y, "NUMERIC")
    n = 300
    model = train_model("REGRESSION", schema, '{"outputs": ["ALL_NUMERIC"]}',
                        parse_parameters({"sgd.maxPasses": "100", "sgd.shuffleType": "auto"}, "REGRESSION"),
                        None, lambda: iter([batch.slice(0, n)]))
    ours = np.sqrt(np.mean((model.score_batch(batch.slice(n)) - y[n:]) ** 2))
    ref = LinearRegression().fit(x[:n], y[:n]).predict(x[n:])
    assert ours <= 1.05 * np.sqrt(np.mean((ref - y[n:]) ** 2))


def test_multiclass_softmax_and_weights_and_determinism():
    schema = make_schema([("c", "CATEGORICAL"), ("w", "NUMERIC"), ("y", "CATEGORICAL")],
                         targetAttributeName="y", rowWeight="w")
    batch = make_batch({"c": ["a", "b", "c", "a", "b", "c"] * 20, "w": ["1"] * 120,
                        "y": ["x", "y", "z", "x", "y", "z"] * 20})
    params = parse_parameters({"sgd.shuffleType": "auto"}, "MULTICLASS", seed=7)
    seen = []
    m1 = train_model("MULTICLASS", schema, '{"outputs": ["c"]}', params, None, lambda: iter([batch]), seen.append)
    m2 = train_model("MULTICLASS", schema, '{"outputs": ["c"]}', params, None, lambda: iter([batch]))
    assert m1.classes == ["x", "y", "z"] and np.array_equal(m1.weights, m2.weights)
    trained = [p for p in seen if p.losses]  # after those of cross-validation (small data)
    assert [p.passes for p in trained] == list(range(1, len(trained) + 1))
    assert len(trained) == trained[-1].chosen_passes >= 2
    assert trained[-1].losses[:-1] == trained[-2].losses and trained[-1].losses[-1] < trained[0].losses[0]
    probs = m1.score_batch(batch.slice(0, 3))
    assert np.allclose(probs.sum(axis=1), 1) and probs.argmax(axis=1).tolist() == [0, 1, 2]


def test_class_limits_and_no_records():
    schema = make_schema([("c", "CATEGORICAL"), ("y", "CATEGORICAL")], targetAttributeName="y")
    many = make_batch({"c": ["a"] * 101, "y": [str(i) for i in range(101)]})
    with pytest.raises(TrainingError, match="exceeds the limit of 100"):
        train_model("MULTICLASS", schema, '{"outputs": ["c"]}', SGDParams(), None, lambda: iter([many]))
    one = make_batch({"c": ["a", "b"], "y": ["k", "k"]})
    with pytest.raises(TrainingError, match="fewer than 2"):
        train_model("MULTICLASS", schema, '{"outputs": ["c"]}', SGDParams(), None, lambda: iter([one]))
    rejected = make_batch({"c": ["a"], "y": ["k"]}, rejected=[True])
    with pytest.raises(TrainingError, match="no usable"):
        train_model("MULTICLASS", schema, '{"outputs": ["c"]}', SGDParams(), None, lambda: iter([rejected]))


def test_trimming_order_and_failure():
    w = np.array([[0.5], [0.1], [0.0], [0.1]])
    names = ["aa", "b", "c", "a"]
    costs = feature_costs(np.array([len(n) for n in names]), 1)
    assert trim_features(w, costs, 0, 10**6, lambda: names).tolist() == [True, True, False, True]
    # 1024 + (2+8) + (1+8) + (1+8) = 1052; limit 1045 drops the weakest ("a" before "b" on ties)
    assert trim_features(w, costs, 0, 1045, lambda: names).tolist() == [True, True, False, False]
    assert trim_features(w, costs, 100, 1500, lambda: names) is None


def test_minibatch_grows_with_the_data():
    # about 300 steps per pass within [16, 256] records per step (small data: 100 steps
    # within [1, 256], so that 133 records take 100 steps, not 8); beyond 256,000 records
    # about 1,000 steps per pass, up to 1,024 records per step
    sizes = (10, 4_900, 12_800, 29_400, 256_000, 350_000, 10**6, 1_400_000, 10**8)
    assert [minibatch_size(n) for n in sizes] == [16, 16, 42, 98, 256, 350, 1000, 1024, 1024]
    assert [minibatch_size(n, small=True) for n in sizes[:5]] == [1, 49, 128, 256, 256]
    assert [minibatch_size(n, small=True) for n in (133, 331, 1_348, 1_599)] == [1, 3, 13, 15]


def test_l1_drives_weights_to_zero_and_keeps_quality():
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    schema, batch = _numeric_data(x, y, "BINARY")
    params = parse_parameters({"sgd.shuffleType": "auto", "sgd.l1RegularizationAmount": "3e-2"}, "BINARY")
    model = train_model("BINARY", schema, '{"outputs": ["ALL_NUMERIC"]}', params, None,
                        lambda: iter([batch.slice(0, 400)]))
    assert model.weights.shape[0] < 30  # exact zeros are trimmed from the model
    assert auc_score(model.score_batch(batch.slice(400)), y[400:]) >= 0.98


def _block(x: sp.csr_matrix, y: np.ndarray, w: np.ndarray) -> Block:
    values = None if (x.data == 1).all() else x.data
    return Block.from_rows((x.indptr, x.indices, values), y.astype(float), w)


def _reference_step(kind, state, x, y, w, l1, l2):
    """One minibatch step written plainly with dense NumPy arrays."""
    x = x.toarray()
    z = x @ state.weights + state.bias
    if kind == "MULTICLASS":
        grad = np.exp(z - z.max(axis=1, keepdims=True))
        grad /= grad.sum(axis=1, keepdims=True)
        grad[np.arange(len(y)), y.astype(int)] -= 1
    elif kind == "BINARY":
        grad = 1 / (1 + np.exp(-z)) - y[:, None]
    else:
        grad = z - y[:, None]
    grad *= (w / len(y))[:, None]
    touched = (x != 0).any(axis=0)
    g = (x.T @ grad + l2 * state.weights)[touched]
    state.g2_weights[touched] += (g * g).mean(axis=1)  # one accumulator per feature row
    eta = ETA_REGRESSION if kind == "REGRESSION" else ETA
    step = eta / np.sqrt(state.g2_weights[touched])[:, None]
    new = state.weights[touched] - g * step
    state.weights[touched] = np.sign(new) * np.maximum(np.abs(new) - step * l1, 0)
    gb = grad.sum(axis=0)
    state.g2_bias += gb * gb
    state.bias -= eta * gb / np.sqrt(state.g2_bias)


def _plans(flat: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, ...]]:
    """The plans laid end to end in a kept part (kernel.FlatPlan), one by one."""
    touched, col_start, col_rows, valued, col_vals, t, c, r, v = flat
    return [(touched[t[b]:t[b + 1]], col_start[c[b]:c[b + 1]], col_rows[r[b]:r[b + 1]], valued[t[b]:t[b + 1]],
             col_vals[v[b]:v[b + 1]]) for b in range(len(t) - 1)]


@pytest.mark.parametrize(("kind", "outputs", "l1", "l2", "two_threads", "indicators"), [
    ("MULTICLASS", 3, 0.0, 1e-2, False, False), ("MULTICLASS", 3, 0.0, 1e-2, True, False),
    ("BINARY", 1, 0.05, 0.0, True, False), ("REGRESSION", 1, 0.0, 0.1, False, False),
    ("MULTICLASS", 3, 0.0, 1e-2, True, True), ("BINARY", 1, 0.05, 1e-2, False, True),
    ("MULTICLASS", 3, 0.0, 1e-2, True, "mixed"), ("REGRESSION", 1, 0.0, 0.0, False, "mixed")])
def test_kernel_steps_equal_a_plain_numpy_step(kind, outputs, l1, l2, two_threads, indicators, monkeypatch):
    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)  # tiny steps: on two threads all the same
    rng = np.random.default_rng(11)
    if indicators is True:  # all values 1, features in 2% to 98% of the rows: many are flipped
        x = sp.csr_matrix(rng.random((50, 40)) < np.linspace(0.02, 0.98, 40), dtype=float)
    else:
        x = sp.random(50, 40, density=0.15, format="csr", random_state=4)
        x.data = rng.normal(size=x.nnz)
        if indicators == "mixed":  # indicators between numbers: only these keep values
            x = _mixed(x)
    y = rng.integers(0, 3, 50).astype(float) if outputs == 3 else rng.integers(0, 2, 50).astype(float)
    w = rng.uniform(0.5, 2.0, 50)
    kernel, reference = LinearState.zeros(40, outputs, 1.0), LinearState.zeros(40, outputs, 1.0)
    stepper = Stepper(kind, kernel, SGDParams(l1=l1, l2=l2), 8, two_threads)
    order = rng.permutation(50)
    batches = [np.sort(order[start:start + 8]) for start in range(0, 50, 8)]
    stepper.run(0, _block(x, y, w), batches, keep=True)
    assert stepper.threaded is two_threads
    plans = [plan for flat in stepper.plans[0].parts for plan in _plans(flat)]
    flipped = sum(int((part[0] < 0).sum()) for part in plans)
    assert (flipped > 0) == (indicators is True)
    valued = sum(int(part[3].sum()) for part in plans)
    assert (valued > 0) == (indicators is not True)
    if indicators == "mixed":  # values of the numeric columns only
        assert 0 < sum(len(part[4]) for part in plans) < sum(len(part[2]) for part in plans)
    for rows in batches:
        _reference_step(kind, reference, x[rows], y[rows], w[rows], l1, l2)
    assert np.allclose(kernel.weights, reference.weights) and np.allclose(kernel.bias, reference.bias)
    assert np.allclose(kernel.g2_weights, reference.g2_weights)
    assert not np.allclose(kernel.weights, 0)


@pytest.mark.parametrize(("kind", "outputs", "l1", "indicators", "size"), [
    ("MULTICLASS", 3, 0.0, False, 8), ("MULTICLASS", 3, 0.002, True, 200), ("BINARY", 1, 0.0, True, 8),
    ("BINARY", 1, 0.002, "mixed", 300), ("REGRESSION", 1, 0.0, False, 150), ("REGRESSION", 1, 0.0, "mixed", 13)])
def test_two_thread_passes_take_the_steps_of_one_thread_passes(kind, outputs, l1, indicators, size, monkeypatch):
    """A pass runs in compiled calls of many steps (kernel.run_steps, or run_steps_two with
    each step's two feature ranges on two threads): making each minibatch's plan in the
    scratch, keeping the plans laid end to end, or taking the kept ones. On two threads the
    weights, accumulators, averaging sums, losses, weight sums and plans are those of one,
    bit for bit."""
    rng = np.random.default_rng(5)
    rows = 700
    if indicators is True:
        x = sp.csr_matrix(rng.random((rows, 40)) < np.linspace(0.02, 0.98, 40), dtype=float)
    else:
        x = sp.random(rows, 40, density=0.15, format="csr", random_state=4)
        x.data = rng.normal(size=x.nnz)
        if indicators == "mixed":
            x = _mixed(x)
    y = rng.integers(0, 3, rows).astype(float) if outputs == 3 else rng.integers(0, 2, rows).astype(float)
    block = _block(x, y, rng.uniform(0.5, 2.0, rows))
    order = rng.permutation(rows)
    partition = [np.sort(order[start:start + size]) for start in range(0, rows, size)]

    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)  # tiny steps: on two threads all the same

    def four_passes(two_threads: bool) -> tuple[Stepper, list[tuple[float, float]]]:
        stepper = Stepper(kind, LinearState.zeros(40, outputs, 1.0), SGDParams(l1=l1, l2=1e-3), size, two_threads)
        sums = [stepper.run(0, block, partition[::-1]), stepper.run(0, block, partition, keep=True)]
        stepper.start_averaging()
        for k in (1, 2):
            visit = np.random.default_rng(k).permutation(len(partition))
            sums.append(stepper.run(0, block.without_features(), [partition[i] for i in visit]))
        assert stepper.threaded is two_threads
        return stepper, sums

    (two, two_sums), (one, one_sums) = four_passes(True), four_passes(False)
    assert two_sums == one_sums
    assert two.steps == one.steps == 2 * len(partition)
    for name in ("weights", "bias", "g2_weights", "g2_bias"):
        assert np.array_equal(getattr(two.state, name), getattr(one.state, name)), name
    assert np.array_equal(two.shift, one.shift) and np.array_equal(two.shift_bias, one.shift_bias)
    assert not np.allclose(two.state.weights, 0)
    assert two.plans[0].positions == one.plans[0].positions
    for mine, theirs in zip(two.plans[0].parts, one.plans[0].parts):  # the same plans, laid out alike
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(mine, theirs))


@pytest.mark.parametrize("threaded", [False, True])
def test_a_buffer_left_without_minibatches_by_a_fold_passes_without_steps(threaded, monkeypatch):
    """Cross-validation may leave a buffer no training record (all in the held-out fold): its
    keeping pass and the later ones take no step, on one thread and on two (the two-thread
    path once failed to lay out its empty plans)."""
    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)
    block = _rows_block(5)
    stepper = Stepper("BINARY", LinearState.zeros(5, 1, 1.0), SGDParams(), 8, threaded)
    assert stepper.run(0, block, [], keep=True) == (0.0, 0.0)
    assert stepper.run(0, block.without_features(), []) == (0.0, 0.0)
    assert stepper.threaded is threaded and stepper.steps == 0


def test_kernel_pairwise_sum_is_numpys_sum_bit_for_bit():
    rng = np.random.default_rng(3)
    for n in [*range(0, 40), 127, 128, 129, 255, 256, 257, 1000, 1024, 4099]:
        values = rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, size=n)
        assert kernel_module.pairwise_sum(values) == values.sum(), n


@pytest.mark.parametrize(("width", "outputs", "threaded"), [(20, 1, False), (20, 10, False), (600, 10, True)])
def test_steps_use_the_second_thread_only_when_their_work_is_worth_it(width, outputs, threaded):
    """A step of a few tabular features runs on one thread, a wide step with many outputs
    (MNIST's) on two, and both take the same steps."""
    rng = np.random.default_rng(5)
    rows = 256
    x = sp.csr_matrix(rng.random((rows, width)) < 0.5, dtype=float)
    y = rng.integers(0, outputs if outputs > 1 else 2, rows).astype(float)
    kind = "MULTICLASS" if outputs > 1 else "BINARY"
    block, batches = _block(x, y, np.ones(rows)), [np.arange(i, i + 64) for i in range(0, rows, 64)]
    states = [LinearState.zeros(width, outputs, 1.0) for _ in range(2)]
    two = Stepper(kind, states[0], SGDParams(), 64, True)
    two.run(0, block, batches)
    Stepper(kind, states[1], SGDParams(), 64).run(0, block, batches)
    assert two.threaded is threaded
    assert np.array_equal(states[0].weights, states[1].weights)


def _mixed(x: sp.csr_matrix) -> sp.csr_matrix:
    """x with its even-numbered columns made indicators (1 where x has an entry)."""
    x = x.tocsr(copy=True)
    x.data[x.indices % 2 == 0] = 1.0
    return x


@pytest.mark.parametrize("mixed", [False, True])
def test_kept_plans_train_like_transposing_again(mixed, monkeypatch):
    """Minibatches transposed in the first pass and kept give the same steps later."""
    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)  # tiny steps: on two threads all the same
    rng = np.random.default_rng(8)
    x = sp.random(90, 30, density=0.2, format="csr", random_state=3)
    x = _mixed(x) if mixed else x
    block = _block(x, rng.integers(0, 3, 90), np.ones(90))
    light = block.without_features()
    states = [LinearState.zeros(30, 3, 1.0) for _ in range(2)]
    kept, again = (Stepper("MULTICLASS", st, SGDParams(l2=1e-3), 16, True) for st in states)
    order = rng.permutation(90)
    batches = [np.sort(order[i:i + 16]) for i in range(0, 90, 16)]
    kept.run(0, block, batches, keep=True)
    again.run(0, block, batches)
    assert kept.plan_bytes(0) > 0
    for _ in range(2):
        shuffled = [batches[i] for i in rng.permutation(len(batches))]
        kept.run(0, light, shuffled)  # no features left: plans only
        again.run(0, block, shuffled)
    assert np.array_equal(states[0].weights, states[1].weights)
    assert np.array_equal(states[0].bias, states[1].bias)
    with pytest.raises(ValueError, match="kept plans"):
        again.run(1, light, batches)


def test_a_buffer_without_features_frees_them():
    """What a buffer keeps once its plans are kept holds no reference to its features (empty
    views of them did: the 2 M-record tabular benchmark kept 480 MB of features alive)."""
    rng = np.random.default_rng(2)
    block = Block(np.arange(0, 271, 3), rng.integers(0, 30, 270, dtype=np.int32), rng.random(270),
                  np.zeros(90), np.ones(90))
    features = [weakref.ref(a) for a in (block.indptr, block.indices, block.values)]
    light = block.without_features()
    del block
    gc.collect()
    assert all(ref() is None for ref in features)
    assert len(light.y) == 90 and len(light.indptr) == 0



@pytest.mark.parametrize("indicators", [False, True])
def test_squared_norms_are_the_rows_sums_of_squares(indicators):
    """Each record's squared norm, the sum of its entries' squares (empty records first,
    inside and last: zero); one-hot records (no values) count their features."""
    rng = np.random.default_rng(4)
    lengths = np.array([0, 3, 0, 0, 5, 1, 0])
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = rng.integers(0, 6, lengths.sum(), dtype=np.int32)
    values = np.zeros(0) if indicators else rng.normal(size=lengths.sum())
    block = Block(indptr, indices, values, np.zeros(len(lengths)), np.ones(len(lengths)))
    entries = np.ones(len(indices)) if indicators else values
    expected = [float(np.sum(entries[start:end] ** 2)) for start, end in zip(indptr[:-1], indptr[1:])]
    np.testing.assert_allclose(block.squared_norms(), expected, rtol=1e-15)

def test_a_wider_later_buffer_keeps_the_split_of_kept_plans():
    """Kept plans hold features relative to their range: a later, wider buffer must not move
    the split (it once did, and cached passes then wrote other rows)."""
    rng = np.random.default_rng(4)
    narrow = sp.csr_matrix((np.ones(40), rng.integers(0, 50, 40), np.arange(41)), shape=(40, 50))
    wide = sp.random(40, 50, density=0.06, format="csr", random_state=5)
    wide.data[:] = 1.0
    blocks = [_block(narrow, rng.integers(0, 2, 40), np.ones(40)),
              _block(wide, rng.integers(0, 2, 40), np.ones(40))]
    states = [LinearState.zeros(50, 2, 1.0) for _ in range(2)]
    kept, again = (Stepper("MULTICLASS", st, SGDParams(l2=1e-3), 8) for st in states)
    batches = [np.arange(i, i + 8) for i in range(0, 40, 8)]
    for pass_number in range(3):
        for index, block in enumerate(blocks):
            light = block.without_features()
            kept.run(index, block if pass_number == 0 else light, batches, keep=pass_number == 0)
            again.run(index, block, batches)
    assert np.array_equal(states[0].weights, states[1].weights)


def test_step_costs_follow_touched_rows_and_entries():
    """An always-present indicator costs its row update only (flipped, it lists no row); a
    feature in half the rows costs the most; a rare one about its chance of being touched."""
    rows = 1000
    present = [[0, 1] if i % 2 else [0, 2] for i in range(rows)]
    present[0] = [0, 3]                                            # feature 3: in one row
    indptr = np.arange(rows + 1, dtype=np.int64) * 2
    block = Block(indptr, np.asarray(present, np.int32).ravel(), np.zeros(0), np.zeros(rows), np.ones(rows))
    costs = _step_costs(block, 5, 64)
    assert costs[4] == 0.0
    assert costs[0] == pytest.approx(27.0)
    assert costs[1] == pytest.approx(27.0 + 13.0 * 32, rel=1e-3) and costs[1] == costs.max()
    assert costs[3] == pytest.approx(27.0 * (1 - (1 - 1 / rows) ** 64) + 13.0 * 64 / rows)


@pytest.mark.parametrize("l1", [0.0, 0.05])
def test_lazy_average_equals_mean_of_iterates(l1):
    rng = np.random.default_rng(5)
    x = sp.random(60, 12, density=0.3, format="csr", random_state=2)
    block = _block(x, rng.integers(0, 3, 60), np.ones(60))
    state = LinearState.zeros(12, 3, 1.0)
    stepper = Stepper("MULTICLASS", state, SGDParams(l1=l1, l2=0.0), 8)
    order = rng.permutation(60)
    stepper.run(0, block, [np.sort(order[i:i + 8]) for i in range(0, 60, 8)])  # not averaged
    stepper.start_averaging()
    iterates, biases = [], []
    for _ in range(2):
        for start in range(0, 60, 8):
            stepper.run(0, block, [np.arange(start, min(start + 8, 60))])  # one step
            iterates.append(state.weights.copy())
            biases.append(state.bias.copy())
    mean = np.mean(iterates, axis=0)
    if l1 > 0:  # L1 zeros of the last iterate stay exact zeros
        assert (state.weights == 0).any()
        mean[state.weights == 0] = 0.0
    averaged = stepper.averaged()
    assert np.allclose(averaged.weights, mean) and np.allclose(averaged.bias, np.mean(biases, axis=0))
    assert not np.allclose(averaged.weights, state.weights)


@pytest.mark.parametrize(("kind", "target"), [("MULTICLASS", "CATEGORICAL"), ("BINARY", "BINARY")])
def test_statistics_spare_the_fitting_pass_and_give_the_same_model(kind, target):
    """Vocabularies and class counts from the datasource statistics: a value seen only in a
    record without a valid target, and a rejected record, change nothing."""
    rng = np.random.default_rng(5)
    labels = rng.choice(["0", "1", "2"] if kind == "MULTICLASS" else ["yes", "no"], 300).tolist()
    labels[7] = ""  # no valid target: its "only-here" value is in the statistics alone
    rows = [f"{'abcd'[i % 4]}{rng.integers(0, 5)},{rng.choice(['u', 'v', 'w'])},{labels[i]}" for i in range(300)]
    rows[7] = "only-here,u,"
    data = ("c,d,y\n" + "\n".join(rows) + "\nbad,line,with,too,many\n").encode()
    schema = make_schema([("c", "CATEGORICAL"), ("d", "CATEGORICAL"), ("y", target)],
                         targetAttributeName="y", dataFileContainsHeader=True)
    sink = io.BytesIO()
    report = ingest([DataObject(uri="s3://b/d.csv", key="d.csv", size=len(data), open=lambda: io.BytesIO(data))],
                    schema, parse_rearrangement(None), True, sink)
    assert report.rejected_records == 1
    stored = sink.getvalue()
    reads = []

    def batches():
        reads.append(1)
        return read_materialized(io.BytesIO(stored))

    params = SGDParams(max_passes=2, shuffle=True, seed=3)
    other = dataclasses.replace(report.statistics,
                                target=dataclasses.replace(report.statistics.target, name="c"))
    models, counts = [], []
    for statistics in (report.statistics, None, other):  # another target's counts are not used
        reads.clear()
        models.append(train_model(kind, schema, '{"outputs": ["ALL_CATEGORICAL"]}', params, statistics,
                                  batches, memory_bytes=0))  # nothing kept: every pass reads
        counts.append(len(reads))
    with_stats, without, _ = models
    assert counts == [2, 3, 3]  # no fitting pass (no budget: no cross-validation either)
    assert np.array_equal(with_stats.weights, without.weights) and np.array_equal(with_stats.bias, without.bias)
    assert with_stats.pipeline.feature_names() == without.pipeline.feature_names()
    assert "c=only-here" not in with_stats.pipeline.feature_names()
    assert (with_stats.classes, with_stats.summary) == (without.classes, without.summary)
    assert with_stats.size_in_bytes == without.size_in_bytes


def _mixed_datasource(kind: str, invalid_target: bool):
    """A datasource of numbers (some invalid or missing; e always missing), categories and
    text, and a rejected line, ingested with its statistics (as stored), and a reader that
    counts its reads."""
    rng = np.random.default_rng(11)
    labels = {"BINARY": ["yes", "no"], "MULTICLASS": ["a", "b", "c"], "REGRESSION": ["1.5", "-2", "40"]}[kind]
    words = ["Red", "red.", "GREEN", "blue!", "Blue", "x", "...", "ÉTÉ", "été", "Straße"]
    rows = []
    for i in range(400):
        n = {0: "", 1: "oops"}.get(i % 10, f"{rng.normal() * 1e6 + 3e7:.3f}" if i % 2 else str(rng.integers(0, 9)))
        text = " ".join(rng.choice(words, rng.integers(0, 4)))
        rows.append(f"{n},{rng.integers(0, 30)},,{rng.choice(['p', 'q', 'R'])},{text},{rng.choice(labels)}")
    if invalid_target:  # no valid target, and a token no other record has
        rows[5] = "4,5,,p,only-here,"
    data = ("n,m,e,c,t,y\n" + "\n".join(rows) + "\nbad,line,with,too,many,fields,here\n").encode()
    target = {"BINARY": "BINARY", "MULTICLASS": "CATEGORICAL", "REGRESSION": "NUMERIC"}[kind]
    schema = make_schema([("n", "NUMERIC"), ("m", "NUMERIC"), ("e", "NUMERIC"), ("c", "CATEGORICAL"), ("t", "TEXT"),
                          ("y", target)],
                         targetAttributeName="y", dataFileContainsHeader=True)
    sink = io.BytesIO()
    report = ingest([DataObject(uri="s3://b/d.csv", key="d.csv", size=len(data), open=lambda: io.BytesIO(data))],
                    schema, parse_rearrangement(None), True, sink)
    assert report.rejected_records == 1
    reads = []

    def batches():
        reads.append(1)
        return read_materialized(io.BytesIO(sink.getvalue()))

    # as a training job reads them: stored as JSON
    stored = DatasetStatistics.from_json(json.loads(json.dumps(report.statistics.to_json())))
    return schema, stored, batches, reads


MIXED_RECIPE = json.dumps({"outputs": ["quantile_bin(n,7)", "quantile_bin(normalize(m),5)", "normalize(n)", "m",
                                       "quantile_bin(e,5)", "normalize(e)",
                                       "ALL_CATEGORICAL", "lowercase(c)", "lowercase(no_punct(t))", "t"]})


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("kind", ["BINARY", "MULTICLASS", "REGRESSION"])
def test_statistics_give_the_numbers_and_tokens_of_a_fit(kind, cut, monkeypatch):
    """When every record has a valid target, the statistics give the numeric moments, the
    quantile bins (from the sketch: the same boundaries, exact or cut past EXACT_DISTINCT
    distinct values), the token vocabularies and a regression target's scale: no fitting
    pass, and the model a fitting pass gives."""
    if cut:  # n's 200 or so distinct values are cut, fine enough for its 7 bins (m's 30 are not cut)
        monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 40)
        monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 30)
    schema, statistics, batches, reads = _mixed_datasource(kind, invalid_target=False)
    sketch = statistics.attributes["n"].values.sketch
    assert (sketch.exact, sketch.bits is not None, len(sketch.values) <= 30) == (not cut, cut, cut)
    params = SGDParams(max_passes=2, shuffle=True, seed=3)
    models, counts = [], []
    for given in (statistics, None):
        reads.clear()
        models.append(train_model(kind, schema, MIXED_RECIPE, params, given, batches, memory_bytes=0))
        counts.append(len(reads))
    with_stats, without = models
    assert counts == [2, 3]
    assert with_stats.pipeline.feature_names() == without.pipeline.feature_names()
    assert with_stats.pipeline.params.keys() == without.pipeline.params.keys()
    for name, fitted in without.pipeline.params.items():
        for key, value in fitted.items():
            assert with_stats.pipeline.params[name][key] == pytest.approx(value, rel=1e-12), (name, key)
    assert with_stats.pipeline.params["quantile_bin(n,7)"] == without.pipeline.params["quantile_bin(n,7)"]
    assert np.allclose(with_stats.weights, without.weights, rtol=1e-9, atol=1e-12)
    assert (with_stats.classes, with_stats.summary.keys()) == (without.classes, without.summary.keys())
    if kind == "REGRESSION":
        assert with_stats.summary["target_mean"] == pytest.approx(without.summary["target_mean"], rel=1e-12)


def test_numbers_are_fitted_on_the_records_when_some_target_is_invalid():
    """A record without a valid target is in the statistics' numbers but not in training's:
    the fit reads the numbers, and the model is the one made without statistics (the token
    only that record holds, taken from the statistics, is a feature no step touches)."""
    schema, statistics, batches, reads = _mixed_datasource("BINARY", invalid_target=True)
    params = SGDParams(max_passes=2, shuffle=True, seed=3)
    models, counts = [], []
    for given in (statistics, None):
        reads.clear()
        models.append(train_model("BINARY", schema, MIXED_RECIPE, params, given, batches, memory_bytes=0))
        counts.append(len(reads))
    assert counts == [3, 3]
    assert "only-here" in statistics.attributes["t"].values.top_tokens
    assert models[0].pipeline.params == models[1].pipeline.params
    assert models[0].pipeline.feature_names() == models[1].pipeline.feature_names()
    assert np.array_equal(models[0].weights, models[1].weights)


def test_statistics_of_another_target_or_type_give_no_numbers():
    """Statistics whose target is another attribute, or that type an attribute otherwise than
    the training schema, say nothing of the records training reads: those are fitted on the
    records, and the model is the one made without statistics."""
    schema, statistics, batches, reads = _mixed_datasource("BINARY", invalid_target=False)
    other = dataclasses.replace(statistics, target=dataclasses.replace(statistics.target, name="c"))
    params = SGDParams(max_passes=2, shuffle=True, seed=3)
    reads.clear()
    without = train_model("BINARY", schema, MIXED_RECIPE, params, None, batches, memory_bytes=0)
    assert len(reads) == 3
    reads.clear()
    model = train_model("BINARY", schema, MIXED_RECIPE, params, other, batches, memory_bytes=0)
    assert len(reads) == 3 and model.pipeline.params == without.pipeline.params
    assert np.array_equal(model.weights, without.weights)
    from openaml.ml.features.fit import known_from

    as_text = make_schema([(a.name, "TEXT" if a.name == "c" else a.type.value) for a in schema.attributes],
                          targetAttributeName="y")
    assert "c" in known_from(statistics, schema).values and "c" not in known_from(statistics, as_text).values


def _ingested_column(values: np.ndarray, rng: np.random.Generator, fmt: str):
    """A NUMERIC column x of `values` (written with `fmt`) and a random yes/no target y,
    ingested with statistics: the schema, the ingest report and its stored copy."""
    rows = [f"{v:{fmt}},{rng.choice(['yes', 'no'])}" for v in values]
    data = ("x,y\n" + "\n".join(rows) + "\n").encode()
    schema = make_schema([("x", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y", dataFileContainsHeader=True)
    sink = io.BytesIO()
    report = ingest([DataObject(uri="s3://b/x.csv", key="x.csv", size=len(data), open=lambda: io.BytesIO(data))],
                    schema, parse_rearrangement(None), True, sink)
    return schema, report, sink.getvalue()


def _binned_with_and_without(schema, statistics: DatasetStatistics, stored: bytes):
    """The models of quantile_bin(x,10) trained with `statistics` and without, and how many
    times each read the records."""
    reads = []

    def batches():
        reads.append(1)
        return read_materialized(io.BytesIO(stored))

    models, counts = [], []
    for given in (statistics, None):
        reads.clear()
        models.append(train_model("BINARY", schema, '{"outputs": ["quantile_bin(x,10)"]}', SGDParams(max_passes=2),
                                  given, batches, memory_bytes=0))
        counts.append(len(reads))
    return models, counts


def test_bins_come_from_the_exact_values_where_the_cut_sketch_is_too_coarse(monkeypatch):
    """Cut values spaced evenly in magnitude can crowd most records into one (times of one
    week among others of thirty years): bins on such a sketch would collapse, so both the fit
    from statistics (which then reads the records) and the one from records take the exact
    quantiles, and the models are the same."""
    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 40)
    monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 12)
    rng = np.random.default_rng(3)
    times = np.where(rng.random(400) < 0.9, 1.7e9 + rng.uniform(0, 6e5, 400), rng.uniform(7e8, 1.7e9, 400)).round()
    schema, report, stored = _ingested_column(times, rng, ".0f")
    sketch = report.statistics.attributes["x"].values.sketch
    assert not sketch.exact and max(sketch.counts) * 10 > sum(sketch.counts)  # too coarse for 10 bins
    models, counts = _binned_with_and_without(schema, report.statistics, stored)
    assert counts == [3, 3]
    boundaries = models[0].pipeline.params["quantile_bin(x,10)"]["boundaries"]
    assert boundaries == models[1].pipeline.params["quantile_bin(x,10)"]["boundaries"]
    assert boundaries == np.unique(np.quantile(times, np.arange(1, 10) / 10)).tolist()
    assert np.array_equal(models[0].weights, models[1].weights)


def test_a_frequent_single_value_leaves_the_cut_sketch_fine_for_bins(monkeypatch):
    """A cut value that is one value alone (zeros of amounts) is given as it is, and however
    many records hold it the sketch is fine for bins: the fit from statistics reads no
    records, and gives the model of the fit from records."""
    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 80)
    monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 60)
    rng = np.random.default_rng(4)
    amounts = np.where(rng.random(400) < 0.4, 0.0, rng.lognormal(3, 1, 400).round(2))
    schema, report, stored = _ingested_column(amounts, rng, ".2f")
    sketch = report.statistics.attributes["x"].values.sketch
    zero = sketch.values.index(0.0)
    assert not sketch.exact and sketch.single[zero] and sketch.counts[zero] * 10 > sum(sketch.counts)
    models, counts = _binned_with_and_without(schema, report.statistics, stored)
    assert counts == [2, 3]
    boundaries = models[0].pipeline.params["quantile_bin(x,10)"]["boundaries"]
    assert boundaries == models[1].pipeline.params["quantile_bin(x,10)"]["boundaries"] and 0.0 in boundaries
    assert np.array_equal(models[0].weights, models[1].weights)


def test_cut_sketches_written_without_single_flags_give_no_bins(monkeypatch):
    """Cut sketches written before the single flags (mantissa bits, no "single") give each
    single value as its cut value, where a fit on the records keeps the value itself (a
    reviewer's lognormal amounts: the 7th of 10 boundaries 1.58125 against 1.5872): their bins
    come from the records, so the model is the fit from records; their moments still come
    from the statistics."""
    from openaml.ml.features.fit import known_from

    monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 200)
    monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 150)
    rng = np.random.default_rng(0)
    schema, report, stored = _ingested_column(rng.lognormal(0, 1, 400).round(3), rng, ".3f")
    numbers = report.statistics.attributes["x"]
    sketch = numbers.values.sketch
    assert not sketch.exact and any(sketch.single)
    # as those versions wrote it: every value cut, no flags
    older = dataclasses.replace(sketch, single=None, values=number_sketch.cut(
        np.asarray(sketch.values), sketch.bits).tolist())
    statistics = dataclasses.replace(report.statistics, attributes=report.statistics.attributes | {
        "x": dataclasses.replace(numbers, values=dataclasses.replace(numbers.values, sketch=older))})
    known = known_from(statistics, schema)
    assert "x" in known.moments and "x" not in known.sketches and "x" in known_from(report.statistics, schema).sketches
    models, counts = _binned_with_and_without(schema, statistics, stored)
    assert counts == [3, 3]
    assert models[0].pipeline.params == models[1].pipeline.params
    assert np.array_equal(models[0].weights, models[1].weights)


def test_weighted_points_of_earlier_statistics_give_moments_but_no_bins():
    """Past 100,000 distinct values, statistics of earlier versions kept weighted points that
    depend on the ingest's batches (not exact, no mantissa bits): their bins come from the
    records, their moments still from the statistics."""
    from openaml.ml.features.fit import known_from

    schema, statistics, _, _ = _mixed_datasource("BINARY", invalid_target=False)
    numbers = statistics.attributes["n"]
    points = dataclasses.replace(numbers.values, sketch=dataclasses.replace(numbers.values.sketch, exact=False))
    changed = dataclasses.replace(statistics, attributes=statistics.attributes
                                  | {"n": dataclasses.replace(numbers, values=points)})
    known = known_from(changed, schema)
    assert "n" in known.moments and "n" not in known.sketches and "m" in known.sketches
    assert "n" in known_from(statistics, schema).sketches


def test_a_feature_twice_in_an_indicator_row_counts_twice_and_is_not_flipped():
    """CSR rows with a repeated feature (all values 1) mean a value of 2, as in a dense sum."""
    x = sp.csr_matrix((np.ones(5), np.array([0, 0, 1, 0, 1]), np.array([0, 3, 5])), shape=(2, 2))
    assert x.toarray().tolist() == [[2, 1], [1, 1]]
    kernel, reference = LinearState.zeros(2, 1, 1.0), LinearState.zeros(2, 1, 1.0)
    kernel.weights[:] = reference.weights[:] = [[1.0], [10.0]]
    stepper = Stepper("REGRESSION", kernel, SGDParams(l2=0.0), 2)
    block = Block(x.indptr.astype(np.int64), x.indices.astype(np.int32), np.zeros(0), np.array([1.0, 2.0]),
                  np.ones(2))
    for rows in ([np.array([0])], [np.array([0, 1])], [np.array([1])]):
        stepper.run(0, block, rows)
        _reference_step("REGRESSION", reference, x[rows[0]], block.y[rows[0]], block.w[rows[0]], 0.0, 0.0)
        assert np.allclose(kernel.weights, reference.weights) and np.allclose(kernel.bias, reference.bias)


def test_blocks_are_built_two_at_a_time_in_order():
    from openaml.ml.training.train import two_at_a_time

    threads = set()

    def square(x):
        import threading
        import time

        threads.add(threading.get_ident())
        time.sleep(0.01 * (1 + x % 3))   # busy when the next comes; later ones may finish first
        return x * x

    assert list(two_at_a_time(square, range(9), Execution(2))) == [x * x for x in range(9)]
    assert len(threads) == 2

    def fail_at_4(x):
        if x == 4:
            raise ValueError("bad block")
        return x

    with pytest.raises(ValueError, match="bad block"):
        list(two_at_a_time(fail_at_4, range(9), Execution(2)))


def test_blocks_are_built_in_the_caller_with_one_thread():
    import threading

    from openaml.ml.training import train

    threads = []

    def negate(x):
        threads.append(threading.get_ident())
        return -x

    assert list(train.two_at_a_time(negate, range(4), Execution(1))) == [0, -1, -2, -3]
    assert set(threads) == {threading.get_ident()}


def test_training_progress_survives_json_and_reads_the_earlier_layout():
    from openaml.ml.training.progress import TrainingProgress

    progress = TrainingProgress(10).after(0.5).after(float("nan")).after(0.25)
    stored = json.loads(json.dumps(progress.to_json()))   # no NaN in JSON
    assert stored == {"pass": 3, "max_passes": 10, "loss": 0.25, "losses": [0.5, None, 0.25], "first_pass": 1}
    again = TrainingProgress.from_json(stored)
    assert again is not None and again.passes == 3 and again.losses[::2] == (0.5, 0.25)
    earlier = TrainingProgress.from_json({"pass": 4, "max_passes": 10, "loss": 0.75})
    assert earlier is not None and earlier.passes == 4 and earlier.losses[-1] == 0.75
    assert TrainingProgress.from_json(None) is None and TrainingProgress.from_json({"pass": 1}) is None


def test_a_long_training_stores_the_losses_of_its_last_passes_only():
    from openaml.ml.training.progress import STORED_LOSSES, TrainingProgress

    progress = TrainingProgress(10_000, tuple(1.0 / k for k in range(1, 5001)))
    stored = progress.to_json()
    assert len(stored["losses"]) == STORED_LOSSES and stored["first_pass"] == 5001 - STORED_LOSSES
    again = TrainingProgress.from_json(json.loads(json.dumps(stored)))
    assert again is not None and again.passes == 5000 and again.losses[-1] == 1 / 5000
    assert np.isnan(again.losses[0]) and again.losses[5000 - STORED_LOSSES] == 1 / (5001 - STORED_LOSSES)


def _ingested(data: bytes, schema: Schema, statistics: str) -> tuple[Callable[[], Any], DatasetStatistics | None]:
    """The stored records of a CSV and the statistics training is given: none, the ingest's,
    or the ingest's as stored (JSON)."""
    sink = io.BytesIO()
    report = ingest([DataObject(uri="s3://b/d.csv", key="d.csv", size=len(data), open=lambda: io.BytesIO(data))],
                    schema, parse_rearrangement(None), True, sink)
    given = {"none": None, "in memory": report.statistics,
             "stored": DatasetStatistics.from_json(orjson.loads(orjson.dumps(report.statistics.to_json())))}[statistics]
    return lambda: read_materialized(io.BytesIO(sink.getvalue())), given


@pytest.mark.parametrize("pattern", ["a,{v}\nb,-{v}\n", "a,{v}\nb,-{v}\nb,-{v}\nb,-{v}\n"])
@pytest.mark.parametrize("statistics", ["none", "in memory", "stored"])
def test_regression_targets_near_a_doubles_range_train(statistics, pattern):
    """Their squared deviations pass the double's range (training used to fail on them, and
    warned first), their mean and spread do not: the target is standardized by them, so the
    model predicts 1.7e308 times what it predicts for targets of 1 and -1. Three records to one
    (a mean far from 0), a target's difference with the mean, and z * std, pass the range
    too: standardizing and its inverse take the mean apart (moments.standardize). Predict
    answers such a prediction as the largest 32-bit float of its sign (a batch, the double)."""
    schema = make_schema([("c", "CATEGORICAL"), ("y", "NUMERIC")], targetAttributeName="y", dataFileContainsHeader=True)
    predicted = []
    for one in ("1", "1.7e308"):
        records, given = _ingested(b"c,y\n" + pattern.format(v=one).encode() * 50, schema, statistics)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = train_model("REGRESSION", schema, '{"outputs": ["c"]}', SGDParams(), given, records)
            scorer = RecordScorer(model)
            predicted.append([float(scorer.scores({"c": c})[0]) for c in "ab"])
            answered = [predict_record(scorer, {"c": c}, 0.5)["predictedValue"] for c in "ab"]
    assert predicted[0][0] > 0 > predicted[0][1]
    assert predicted[1] == pytest.approx([p * 1.7e308 for p in predicted[0]], rel=1e-6)
    assert answered == [float(np.finfo(np.float32).max), -float(np.finfo(np.float32).max)]


@pytest.mark.parametrize("statistics", ["none", "in memory", "stored"])
def test_a_numeric_attribute_near_a_doubles_range_keeps_its_raw_feature(statistics):
    """Its statistics give its standard deviation (their variance, past the double's range, is
    null), and training standardizes by it: the feature was 0 everywhere and trimmed."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=400) * 10.0 ** rng.uniform(150, 300, 400)
    data = ("x,y\n" + "".join(f"{float(v)!r},{int(v > 0)}\n" for v in x)).encode()
    schema = make_schema([("x", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y", dataFileContainsHeader=True)
    records, given = _ingested(data, schema, statistics)
    mean, std = (x / 2.0**1000).mean() * 2.0**1000, (x / 2.0**1000).std() * 2.0**1000
    if given is not None:
        summary = given.attributes["x"].values
        assert summary.variance is None and summary.stddev == pytest.approx(std, rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = train_model("BINARY", schema, '{"outputs": ["x"]}', SGDParams(max_passes=5), given, records)
        scorer = RecordScorer(model)
        scores = [predict_record(scorer, {"x": v}, 0.5)["predictedLabel"] for v in ("5e298", "-5e298")]
    assert model.pipeline.scales[0] == pytest.approx((mean, std), rel=1e-9)
    assert scores == ["1", "0"]


def test_a_read_left_before_its_end_leaves_the_next_one_to_keep_the_records():
    from openaml.ml.features.values import Columns
    from openaml.ml.training import train

    reads = []

    def source():
        reads.append(1)
        return iter([Columns(make_batch({"c": ["a", "b"]}), make_schema([("c", "CATEGORICAL")]))] * 3)

    replay = train._Replay(source, limit=1 << 30)
    next(iter(replay()))  # left after one batch (cross-validation's size probe stops so)
    assert len(list(replay())) == 3 and len(list(replay())) == 3
    assert len(reads) == 2  # the complete read was kept


def test_the_last_read_of_kept_records_lets_each_go_once_handed_out():
    """Training's first pass reads the kept records for the last time: each is let go once the
    reader has gone past it (its memory is the next feature blocks'), and a read after it
    reads the source again, keeping nothing."""
    from openaml.ml.features.values import Columns
    from openaml.ml.training import train

    reads = []
    schema = make_schema([("c", "CATEGORICAL")])

    def source():
        reads.append(1)
        return iter([Columns(make_batch({"c": ["a", "b"]}), schema) for _ in range(3)])

    replay = train._Replay(source, limit=1 << 30)
    assert len(list(replay())) == 3 and len(reads) == 1  # kept
    alive = [weakref.ref(columns) for columns in replay.kept or []]
    last = replay(last=True)
    next(last), next(last)
    gc.collect()
    assert alive[0]() is None and alive[2]() is not None  # the first, taken and passed, is gone
    assert len(list(last)) == 1 and replay.kept is None
    assert len(list(replay())) == 3 and len(list(replay())) == 3 and len(reads) == 3 and replay.kept is None


def _rows_block(rows: int, first: int = 0) -> Block:
    ids = np.arange(first, first + rows)
    return Block(np.arange(rows + 1, dtype=np.int64), (ids % 5).astype(np.int32), np.zeros(0),
                 (ids % 2).astype(np.float64), np.ones(rows))


@pytest.mark.parametrize("sizes, buffers", [
    ([52_000, 52_000, 1_000], [[52_000], [52_000, 1_000]]),   # each would pass BUFFER_ROWS with the next
    ([70_000, 3_000], [[70_000], [3_000]]),                     # larger than a buffer: alone
    ([9_800] * 8, [[9_800] * 6, [9_800] * 2]),                   # small ones fill a buffer
    ([4_000, 62_000, 5_000], [[4_000, 62_000], [5_000]]),     # under MIN_BUFFER_ROWS: the next joins
])
def test_buffers_never_split_a_block_nor_copy_one_alone(sizes, buffers):
    """A block that would take a buffer past BUFFER_ROWS starts the next one, so the tabular
    benchmark's 52,000-record blocks are buffers as they are (no stacking copy)."""
    from openaml.ml.training.blocks import group_buffers
    blocks, first = [], 0
    for rows in sizes:
        blocks.append(_rows_block(rows, first))
        first += rows
    grouped = list(group_buffers(iter(blocks), 1 << 40))
    assert [len(b.y) for b in grouped] == [sum(group) for group in buffers]
    assert np.array_equal(np.concatenate([b.y for b in grouped]), np.concatenate([b.y for b in blocks]))
    alone = [i for i, group in enumerate(buffers) if len(group) == 1]
    for i in alone:
        assert any(grouped[i] is block for block in blocks)


@pytest.mark.parametrize("statistics", ["none", "in memory"])
def test_a_training_whose_cartesian_makes_too_many_pairs_at_once_gives_the_same_model(monkeypatch, statistics):
    """Training reads its records once (text tokenized, raw columns let go: Columns.read) and
    takes a batch whose cartesian() passes MAX_CARTESIAN_PAIRS in halves, the tokens read
    sliced with it: the model is the one of whole batches (a training used to fail by its
    number of records)."""
    from openaml.ml.features import tokens as tk

    rng = np.random.default_rng(8)
    words = [f"w{i}" for i in range(40)]
    lines = [f"{' '.join(rng.choice(words, int(rng.integers(0, 7))))},{rng.choice(list('abc'))},"
             f"{int(rng.random() < 0.5)}" for _ in range(300)]
    data = ("t,c,y\n" + "\n".join(lines) + "\n").encode()
    schema = make_schema([("t", "TEXT"), ("c", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y",
                         dataFileContainsHeader=True)
    records, given = _ingested(data, schema, statistics)
    recipe = '{"outputs": ["cartesian(t, c)", "cartesian(lowercase(t), t)", "c"]}'
    whole = train_model("BINARY", schema, recipe, SGDParams(), given, records)
    monkeypatch.setattr(tk, "MAX_CARTESIAN_PAIRS", 40)
    in_halves = train_model("BINARY", schema, recipe, SGDParams(), given, records)
    assert in_halves.feature_names() == whole.feature_names()
    assert np.array_equal(in_halves.weights, whole.weights) and np.array_equal(in_halves.bias, whole.bias)


@pytest.mark.parametrize("statistics", ["none", "in memory", "stored"])
def test_a_numeric_attribute_at_one_end_of_the_doubles_range_keeps_its_raw_feature(statistics):
    """Three values of -1.7e308 to one of 1.7e308: the mean is far from 0, and a value's
    difference with it passes the double's range though its standardized value (1.73) does
    not; the feature was 1e200 (STANDARDIZED_LIMIT) and the model kept no weight for it."""
    from openaml.ml.features.rows import standardized

    big = 1.7e308
    data = ("x,y\n" + f"-{big!r},0\n-{big!r},0\n-{big!r},0\n{big!r},1\n" * 50).encode()
    schema = make_schema([("x", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y", dataFileContainsHeader=True)
    records, given = _ingested(data, schema, statistics)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = train_model("BINARY", schema, '{"outputs": ["x"]}', SGDParams(max_passes=5), given, records)
        mean, std = model.pipeline.scales[0]
        assert standardized(big, mean, std) == pytest.approx(3**0.5, rel=1e-12)
        assert model.pipeline.transform(make_batch({"x": [repr(big), repr(-big)]})).toarray().ravel() \
            == pytest.approx([3**0.5, -1 / 3**0.5], rel=1e-12)
        scorer = RecordScorer(model)
        assert [predict_record(scorer, {"x": repr(v)}, 0.5)["predictedLabel"] for v in (big, -big)] == ["1", "0"]


@pytest.mark.parametrize("model_type", ["BINARY", "REGRESSION"])
def test_the_same_weight_on_every_record_makes_the_same_model(model_type):
    """AdaGrad's steps do not change when every gradient is scaled alike, but its accumulators
    started from the records' unweighted norms: weights of 0.001 on every record (or weights
    summing to 1) left a model near zero after 10 passes (a score of 0.68 for 0.997)."""
    rng = np.random.default_rng(14)
    x, c = rng.normal(size=600), rng.choice(list("abc"), 600)
    y = (x + (c == "a") + rng.normal(scale=0.5, size=600) > 0.3).astype(int)
    target = [str(v) for v in y] if model_type == "BINARY" else [f"{3 * a + b:.4f}" for a, b in zip(x, y)]
    kind = "BINARY" if model_type == "BINARY" else "NUMERIC"
    schema = make_schema([("x", "NUMERIC"), ("c", "CATEGORICAL"), ("w", "NUMERIC"), ("y", kind)],
                         targetAttributeName="y", rowWeight="w")
    scores = []
    for weight in ("1", "0.01", str(1 / 600)):
        batch = make_batch({"x": [f"{v:.4f}" for v in x], "c": list(c), "w": [weight] * 600, "y": target})
        model = train_model(model_type, schema, '{"outputs": ["x", "c"]}', SGDParams(l2=0.0), None,
                            lambda batch=batch: iter([batch]))
        scores.append(model.score_batch(make_batch({"x": ["1", "-1"], "c": ["a", "b"], "w": ["1", "1"],
                                                    "y": ["0", "0"]})))
    assert scores[1] == pytest.approx(scores[0], rel=0.02, abs=1e-3)  # AdaGrad's epsilon alone differs
    assert scores[2] == pytest.approx(scores[0], rel=0.02, abs=1e-3)


def test_an_l2_amount_past_its_limit_regularizes_as_the_limit():
    """Amounts up to the largest double are accepted (models.md §3); past about 1e155 AdaGrad's
    squared gradients overflowed and froze the weights, so 1e155 regularized less than 1. Past
    L2_LIMIT an amount acts as the limit, which holds every weight at about 0."""
    from openaml.ml.training.params import L2_LIMIT

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    schema = make_schema([("a", "NUMERIC"), ("b", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y")
    batch = make_batch({"a": [f"{v:.4f}" for v in x[:, 0]], "b": [f"{v:.4f}" for v in x[:, 1]],
                        "y": [str(v) for v in y]})
    models = {amount: train_model("BINARY", schema, '{"outputs": ["a", "b"]}',
                                  parse_parameters({"sgd.l2RegularizationAmount": amount}, "BINARY"), None,
                                  lambda: iter([batch])) for amount in ("1", repr(L2_LIMIT), "1e155", "1.7e308")}
    assert parse_parameters({"sgd.l2RegularizationAmount": "1e300"}, "BINARY").l2 == L2_LIMIT
    limited = models[repr(L2_LIMIT)].weights
    assert np.array_equal(models["1e155"].weights, limited) and np.array_equal(models["1.7e308"].weights, limited)
    # AdaGrad's steps at such an amount leave weights of a few hundredths (0.056 in steps of 4
    # records, 0.008 in steps of 16) against 0.22 at 1 and 2.9 at 1e-6
    assert np.abs(limited).max() < np.abs(models["1"].weights).max() / 3


@pytest.mark.parametrize(("key", "value"), [
    ("sgd.maxPasses", "1_0"), ("sgd.maxPasses", "３"), ("sgd.maxPasses", "٣"), ("sgd.maxMLModelSizeInBytes", "100_000"),
    ("sgd.l2RegularizationAmount", "1_0e-3"), ("sgd.l1RegularizationAmount", "１e-4"),
    ("sgd.l2RegularizationAmount", "nan"), ("sgd.l2RegularizationAmount", "infinity"),
])
def test_numbers_in_forms_no_client_writes_are_refused(key, value):
    """Python's int() and float() read "1_0" and other scripts' digits; a parameter is a
    usual written number (models.md §3): these were accepted, and echoed as given."""
    from openaml.ml.training.params import ParameterError

    with pytest.raises(ParameterError, match=f"{key} must be an? (integer|number)"):
        parse_parameters({key: value}, "BINARY")
    assert parse_parameters({"sgd.maxPasses": " 10 ", "sgd.l2RegularizationAmount": "1E-5"}, "BINARY").max_passes == 10


@pytest.mark.parametrize("key", ["sgd.l2RegularizationAmount", "gbdt.learningRate"])
def test_a_long_parameter_that_is_almost_a_number_is_refused_promptly(key):
    """The number pattern tried every split of the digits (some 20 s for 30,000 digits and a
    letter, more for a longer value in a Create call's body)."""
    import time

    from openaml.ml.training.params import ParameterError

    started = time.perf_counter()
    with pytest.raises(ParameterError, match="must be a number"):
        parse_parameters({key: "1" * 30_000 + "a", **({"openaml.algorithm": "gbdt"} if "gbdt" in key else {})},
                         "BINARY")
    assert time.perf_counter() - started < 2.0


INTEGER_PARAMETERS = [("sgd.maxMLModelSizeInBytes", 100_000), ("sgd.maxPasses", 1), ("gbdt.rounds", 1),
                      ("gbdt.leaves", 2), ("gbdt.minRecordsInLeaf", 1), ("gbdt.earlyStoppingRounds", 0),
                      ("gbdt.maxBins", 4)]


@pytest.mark.parametrize(("key", "low"), INTEGER_PARAMETERS)
def test_an_integer_parameter_of_thousands_of_digits_is_out_of_range(key, low, monkeypatch):
    """A value of over 4,300 digits got Python's int() message ("Exceeds the limit (4300
    digits) for integer string conversion ... use sys.set_int_max_str_digits()"), naming
    neither the parameter nor its range. Leading zeros do not count."""
    from openaml.ml.training import params as params_module

    monkeypatch.setattr(params_module, "trees_installed", lambda: True)  # checked before any value
    trees = {"openaml.algorithm": "gbdt"} if key.startswith("gbdt.") else {}
    for value in ("1" * 5000, "-" + "9" * 5000, "+" + "1" * 4301):
        with pytest.raises(params_module.ParameterError, match=f"^{key} must be .*between {low} and "):
            parse_parameters({key: value, **trees}, "BINARY")
    parsed = parse_parameters({key: "0" * 6000 + str(low), **trees}, "BINARY")
    found = {"sgd.maxMLModelSizeInBytes": parsed.max_size, "sgd.maxPasses": parsed.max_passes}
    if parsed.trees is not None:
        found = {"gbdt.rounds": parsed.trees.rounds, "gbdt.leaves": parsed.trees.leaves,
                 "gbdt.minRecordsInLeaf": parsed.trees.min_leaf_records,
                 "gbdt.earlyStoppingRounds": parsed.trees.early_stopping_rounds,
                 "gbdt.maxBins": parsed.trees.max_bins}
    assert found[key] == low


def test_training_parameters_as_shown_create_a_model_like_it(monkeypatch):
    """GetMLModel shows `"algorithm": "sgd"` (models.md §3), which CreateMLModel refused as an
    unknown key: a client that made a model with another's TrainingParameters failed. The key
    is taken when it names the algorithm the other keys select."""
    from openaml.ml.training import params as params_module
    from openaml.ml.training.params import ParameterError, shown_parameters

    monkeypatch.setattr(params_module, "trees_installed", lambda: True)  # parsing alone
    for given in ({}, {"sgd.l1RegularizationAmount": "1e-4", "sgd.maxPasses": "3"},
                  {"sgd.shuffleType": "auto", "openaml.optimizer": "saga", "openaml.classWeights": "balanced"},
                  {"openaml.algorithm": "gbdt", "gbdt.rounds": "50"}):
        shown = shown_parameters(given)
        assert shown["algorithm"] == given.get("openaml.algorithm", "sgd")
        assert parse_parameters(shown, "BINARY") == parse_parameters(given, "BINARY")
        assert shown_parameters(shown) == shown
    for wrong in ({"algorithm": "gbdt"}, {"algorithm": "SGD"}, {"algorithm": "sgd", "openaml.algorithm": "gbdt"}):
        with pytest.raises(ParameterError, match="algorithm"):
            parse_parameters(wrong, "BINARY")


def test_two_trainings_at_once_take_two_threads_each(monkeypatch):
    """Jobs train at the same time, each on two threads (Numba's work queue would abort the
    process here, so a thread-safe threading layer is used): each takes the steps it takes
    alone."""
    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)
    rng = np.random.default_rng(4)
    x = sp.csr_matrix(rng.random((2000, 60)) < 0.3, dtype=float)
    block = _block(x, rng.integers(0, 3, 2000).astype(float), np.ones(2000))
    batches = [np.arange(i, i + 16) for i in range(0, 2000, 16)]

    def train(_: int) -> np.ndarray:
        stepper = Stepper("MULTICLASS", LinearState.zeros(60, 3, 1.0), SGDParams(), 16, True)
        for _ in range(5):
            stepper.run(0, block, batches)
        assert stepper.threaded
        return stepper.state.weights

    alone = train(0)
    with ThreadPoolExecutor(4) as pool:
        for weights in pool.map(train, range(8)):
            assert np.array_equal(weights, alone)


def test_steps_stay_on_one_thread_without_a_thread_safe_threading_layer():
    """With Numba's own work queue as its threading layer (what Numba falls back to where
    neither TBB nor the system's libgomp is found, or what NUMBA_THREADING_LAYER chose),
    steps run on one thread."""
    script = ("import numpy as np\n"
              "from openaml.ml.training.sgd import LinearState, Stepper, SGDParams\n"
              "from openaml.ml.training.blocks import Block\n"
              "stepper = Stepper('BINARY', LinearState.zeros(2, 1, 1.0), SGDParams(), 4, True)\n"
              "rows = np.arange(4)\n"
              "block = Block(np.arange(5), (rows % 2).astype(np.int32), np.ones(4), (rows % 2) * 1.0, np.ones(4))\n"
              "print(stepper.two_threads, stepper.run(0, block, [rows]))\n")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NUMBA_THREADING_LAYER": "workqueue"})
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("False (")


@pytest.mark.parametrize("layer", ["workqueue", None])
def test_first_looks_at_the_threading_layer_from_several_threads_at_once(layer: str | None) -> None:
    """The first trainings of a process (and the start-up warm-up) ask at the same time which
    threading layer steps may use: with Numba's work queue chosen, its probe entered the work
    queue from several threads, and Numba aborted the process (27 runs of 30)."""
    script = ("import threading\n"
              "from openaml.ml.training import kernel\n"
              "barrier, found = threading.Barrier(4), []\n"
              "def ask():\n"
              "    barrier.wait()\n"
              "    found.append(kernel.two_compiled_threads())\n"
              "threads = [threading.Thread(target=ask) for _ in range(4)]\n"
              "[t.start() for t in threads]\n[t.join() for t in threads]\n"
              "print(sorted(set(found)))\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    for _ in range(5):
        found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                               env={**env, **({"NUMBA_THREADING_LAYER": layer} if layer else {})})
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() in (["[False]"] if layer == "workqueue" else ["[False]", "[True]"])


def test_steps_stay_on_one_thread_while_other_work_runs_beside(monkeypatch):
    """On two cores, four trainings at once took 17.4 s with two-thread steps against 14.1 s
    with one: while a job has others beside it (`crowded`, asked before each buffer), its
    steps run on one thread, and the same."""
    monkeypatch.setattr(sgd, "THREADED_STEP_NS", 0)
    calls: list[str] = []
    for name in ("run_steps", "run_steps_two"):
        compiled = getattr(sgd, name)
        monkeypatch.setattr(sgd, name, lambda *args, f=compiled, n=name: calls.append(n) or f(*args))
    rng = np.random.default_rng(2)
    x = sp.csr_matrix(rng.random((64, 30)) < 0.3, dtype=float)
    block = _block(x, rng.integers(0, 3, 64).astype(float), np.ones(64))
    batches = [np.arange(i, i + 16) for i in range(0, 64, 16)]
    crowded = [True]
    states = [LinearState.zeros(30, 3, 1.0) for _ in range(2)]
    stepper = Stepper("MULTICLASS", states[0], SGDParams(), 16, True, crowded=lambda: crowded[0])
    stepper.run(0, block, batches)
    assert stepper.threaded and set(calls) == {"run_steps"}
    crowded[0] = False
    calls.clear()
    stepper.run(0, block, batches)
    assert set(calls) == {"run_steps_two"}
    alone = Stepper("MULTICLASS", states[1], SGDParams(), 16)
    alone.run(0, block, batches)
    alone.run(0, block, batches)
    assert np.array_equal(states[0].weights, states[1].weights)
