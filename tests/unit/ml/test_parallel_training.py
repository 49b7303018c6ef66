"""Data-parallel training (ml/training/parallel.py): passes run on several workers' partitions
and mixed train the model a single training does; one worker's passes are exactly its passes."""

from __future__ import annotations

import operator
import pickle
from collections.abc import Callable, Iterator
from functools import reduce

import numpy as np
import pyarrow as pa
import pytest

from openaml.ml import parse_parameters, train_model
from openaml.ml.training.parallel import Parts, PassSum, Weighted, first_state, fit_parallel, train_pass
from openaml.ml.training.train import prepare_training
from tests.unit.ml.conftest import make_batch, make_schema

FEATURES = 40
ROWS = 30_000
RECIPE = '{"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL"]}'
SCHEMA = make_schema([(f"c{j}", "CATEGORICAL") for j in range(FEATURES)] + [("y", "CATEGORICAL")],
                     targetAttributeName="y")


def noisy_classes(rows: int, seed: int) -> list[pa.RecordBatch]:
    """Three classes, each attribute's value a noisy hint of the class, in batches of 2,000."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    hint = np.where(rng.random((rows, FEATURES)) < 0.07, y[:, None], rng.integers(0, 6, (rows, FEATURES)))
    return [make_batch({**{f"c{j}": [str(v) for v in hint[i:i + 2000, j]] for j in range(FEATURES)},
                        "y": [str(v) for v in y[i:i + 2000]]})
            for i in range(0, rows, 2000)]


def parts_of(batches: list[pa.RecordBatch], count: int) -> Parts:
    """The batches cut into `count` partitions, in order."""
    bounds = np.linspace(0, len(batches), count + 1).astype(int)
    return [(k, _source(batches[bounds[k]:bounds[k + 1]])) for k in range(count)]


def _source(batches: list[pa.RecordBatch]) -> Callable[[], Iterator[pa.RecordBatch]]:
    return lambda: iter(batches)


def accuracy(model, batches: list[pa.RecordBatch]) -> float:
    from openaml.ml.metrics import evaluate_model

    result = evaluate_model(model, iter(batches), SCHEMA)
    return float(result.metrics["MulticlassAvgFScore"])


def parallel_model(batches: list[pa.RecordBatch], workers: int, partitions: int, params):
    setup = prepare_training("MULTICLASS", SCHEMA, RECIPE, params, None, lambda: iter(batches))
    parts = parts_of(batches, partitions)
    start = first_state(setup, parts)
    assert start is not None
    groups = [list(parts)[g::workers] for g in range(workers)]

    def run_pass(state, k, averaging):
        sums = [pickle.loads(pickle.dumps(PassSum.of(train_pass(setup, state, k, averaging, group))))
                for group in groups]  # as a worker sends it
        return reduce(operator.add, reversed(sums))  # any grouping: a tree of tasks on a cluster

    return setup.model(fit_parallel(setup, start, run_pass)), setup


@pytest.fixture(scope="module")
def data() -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    return noisy_classes(ROWS, 1), noisy_classes(6000, 2)


@pytest.mark.parametrize("given", [
    {"sgd.maxPasses": "4"},
    {"sgd.maxPasses": "50"},  # the loss converges after 4, averaged in the 4th only
    {"sgd.maxPasses": "2", "sgd.l1RegularizationAmount": "3e-3"},  # what L1 zeroed stays zero
])
def test_one_worker_over_one_partition_trains_the_single_trainings_model(data, given) -> None:
    train, _ = data
    params = parse_parameters(given, "MULTICLASS")
    single = train_model("MULTICLASS", SCHEMA, RECIPE, params, None, lambda: iter(train))
    parallel, setup = parallel_model(train, 1, 1, params)
    assert pickle.loads(pickle.dumps(setup)).rows == ROWS
    assert np.count_nonzero(parallel.weights == 0) == np.count_nonzero(single.weights == 0)
    np.testing.assert_allclose(parallel.weights, single.weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(parallel.bias, single.bias, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("workers", "partitions"), [(2, 2), (2, 5), (3, 6)])
def test_several_workers_train_a_model_as_good_as_a_single_training(data, workers, partitions) -> None:
    train, held = data
    params = parse_parameters({}, "MULTICLASS")
    single = accuracy(train_model("MULTICLASS", SCHEMA, RECIPE, params, None, lambda: iter(train)), held)
    parallel = accuracy(parallel_model(train, workers, partitions, params)[0], held)
    assert abs(parallel - single) <= 0.005, (parallel, single)


def test_small_data_are_left_to_a_single_training_which_cross_validates_them() -> None:
    small = noisy_classes(2000, 3)
    params = parse_parameters({}, "MULTICLASS")
    setup = prepare_training("MULTICLASS", SCHEMA, RECIPE, params, None, lambda: iter(small))
    assert first_state(setup, parts_of(small, 1)) is None


def test_mixing_weights_states_by_the_records_each_trained_on() -> None:
    from openaml.ml.training.sgd import LinearState

    a = LinearState(np.ones((2, 1), np.float32), np.zeros(1), np.ones(2, np.float32), np.ones(1))
    b = LinearState(np.full((2, 1), 4, np.float32), np.ones(1), np.full(2, 3, np.float32), np.ones(1))
    mixed = (Weighted.of(a, 3.0) + Weighted.of(b, 1.0)).mean()
    assert mixed.weights.dtype == np.float32 and mixed.weights.tolist() == [[1.75], [1.75]]
    assert mixed.bias.tolist() == [0.25] and mixed.g2_weights.tolist() == [1.5, 1.5]
    none = (Weighted.of(a, 0.0) + Weighted.of(b, 0.0)).mean()  # none trained: each is the start
    assert none.weights.tolist() == [[1.0], [1.0]]


def test_training_converges_only_in_a_pass_whose_iterates_were_averaged() -> None:
    """A pass that improves the loss by under the tolerance without averaging (the pass
    before improved it by over AVERAGE_BELOW tolerances) is followed by one that averages:
    the model is never a bare last iterate."""
    from openaml.ml.training.parallel import PassOutcome
    from openaml.ml.training.sgd import LinearState

    setup = prepare_training("MULTICLASS", SCHEMA, RECIPE, parse_parameters({}, "MULTICLASS"), None,
                             lambda: iter(noisy_classes(6000, 4)))
    losses = [1.0, 0.98, 0.9795, 0.9794, 0.97939]
    flags: list[bool] = []

    def run_pass(state: LinearState, k: int, averaging: bool) -> PassSum:
        flags.append(averaging)
        last = LinearState(np.full((2, 1), k, np.float32), np.zeros(1), np.ones(2, np.float32), np.ones(1))
        mean = LinearState(np.full((2, 1), k + 0.5, np.float32), np.zeros(1), np.ones(2, np.float32), np.ones(1))
        return PassSum.of(PassOutcome(last, mean if averaging else None, 10, losses[k] * 100, 100.0))

    start = LinearState(np.zeros((2, 1), np.float32), np.zeros(1), np.ones(2, np.float32), np.ones(1))
    model = fit_parallel(setup, start, run_pass)
    assert flags == [False, False, False, True]  # the 3rd pass improved by 0.05 %, unaveraged
    assert model.weights.tolist() == [[3.5], [3.5]]  # the 4th pass's mean iterate
