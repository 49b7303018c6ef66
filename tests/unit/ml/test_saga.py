"""SAGA (openaml.optimizer=saga, ml/training/saga.py): its passes reach the exact optimum of
the regularized loss for every model type (scikit-learn's, at C = 1 / (records x L2)), a
record's weight counts as that many copies of it, and its limits are refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from openaml.ml import parse_parameters, train_model
from openaml.ml.errors import InputError
from openaml.ml.model_type import ModelType
from openaml.ml.training import Cancelled, sgd
from openaml.ml.training.blocks import Block
from openaml.ml.training.params import ParameterError, SGDParams
from openaml.ml.training.saga import fit_saga, step_size
from tests.unit.ml.conftest import converged_at, make_batch, make_schema

L2 = 1e-3


def _data(kind: ModelType, rows: int = 3000, features: int = 30) -> tuple[np.ndarray, np.ndarray, Block]:
    """Sparse numeric rows (a fifth of the features set), targets drawn from a linear score."""
    rng = np.random.default_rng(0)
    x = (rng.random((rows, features)) < 0.2) * rng.normal(size=(rows, features))
    score = x @ rng.normal(size=features)
    if kind == ModelType.BINARY:
        y = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(float)
    elif kind == ModelType.MULTICLASS:
        y = np.digitize(score + rng.normal(size=rows), [-1, 1]).astype(float)
    else:
        y = score + rng.normal(size=rows)
    where = np.nonzero(x)
    indptr = np.concatenate([[0], np.cumsum((x != 0).sum(axis=1))]).astype(np.int64)
    return x, y, Block(indptr, where[1].astype(np.int32), x[where], y, np.ones(rows))


def _fit(kind: ModelType, block: Block, features: int, passes: int = 300, **given: object):
    outputs = 3 if kind == ModelType.MULTICLASS else 1
    params = SGDParams(max_passes=passes, l2=L2, shuffle=True, **given)  # type: ignore[arg-type]
    return fit_saga(kind, lambda: iter([block]), features, outputs, params, 2**30)


@pytest.mark.parametrize("kind", list(ModelType))
def test_passes_reach_the_exact_optimum(kind: ModelType, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression, Ridge

    monkeypatch.setattr(sgd, "TOLERANCE", 0.0)  # every pass runs
    x, y, block = _data(kind)
    state = _fit(kind, block, x.shape[1])
    rows = len(y)
    if kind == ModelType.REGRESSION:  # half the squared error: Ridge's alpha is records x L2
        exact = Ridge(alpha=L2 * rows).fit(x, y)
        weights, bias = exact.coef_[:, None], np.atleast_1d(exact.intercept_)
    else:
        exact = LogisticRegression(C=1 / (rows * L2), tol=1e-12, max_iter=10_000).fit(x, y)
        weights, bias = exact.coef_.T, exact.intercept_
    ours, our_bias = state.weights, state.bias
    if kind == ModelType.MULTICLASS:  # softmax scores are the same up to a constant per record
        weights, bias = weights - weights.mean(axis=1, keepdims=True), bias - bias.mean()
        ours, our_bias = ours - ours.mean(axis=1, keepdims=True), our_bias - our_bias.mean()
    np.testing.assert_allclose(ours, weights, atol=1e-5)
    np.testing.assert_allclose(our_bias, bias, atol=1e-5)


def test_a_records_weight_counts_as_that_many_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sgd, "TOLERANCE", 0.0)
    x, y, block = _data(ModelType.BINARY, rows=600)
    doubled = np.arange(len(y)) % 3 == 0
    weighted = Block(block.indptr, block.indices, block.values, y, np.where(doubled, 2.0, 1.0))
    twice = np.concatenate([np.arange(len(y)), np.flatnonzero(doubled)])
    copied = _rows(block, twice)
    # the objective is the mean over records of weight x loss, plus L2: over 600 weighted
    # records it is the mean over the 800 copies' times 800 / 600, so L2 scales alike
    a = fit_saga(ModelType.BINARY, lambda: iter([weighted]), x.shape[1], 1,
                 SGDParams(max_passes=400, l2=L2 * len(twice) / len(y), shuffle=True), 2**30)
    b = _fit(ModelType.BINARY, copied, x.shape[1], passes=400)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-5)


def _rows(block: Block, rows: np.ndarray) -> Block:
    """The records `rows` of `block`, in that order, repeats allowed."""
    starts, ends = block.indptr[rows], block.indptr[rows + 1]
    picks = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
    indptr = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
    return Block(indptr, block.indices[picks], block.values[picks], block.y[rows], block.w[rows])


def test_the_loss_stops_it_once_a_pass_improves_it_by_less_than_the_tolerance() -> None:
    from openaml.ml.training.sgd import TOLERANCE

    x, _, block = _data(ModelType.BINARY)
    losses: list[float] = []
    fit_saga(ModelType.BINARY, lambda: iter([block]), x.shape[1], 1, SGDParams(max_passes=100, l2=L2),
             2**30, lambda done: losses.append(done.losses[-1]))
    improvements = [(a - b) / a for a, b in zip(losses, losses[1:])]
    assert 2 <= len(losses) < 100 and 0 <= improvements[-1] < TOLERANCE
    assert converged_at(improvements) == len(improvements) - 1  # and not before


def test_features_beyond_the_memory_budget_and_a_stop_are_refused() -> None:
    x, _, block = _data(ModelType.BINARY)
    with pytest.raises(InputError, match="openaml.optimizer=saga keeps the training features in memory"):
        fit_saga(ModelType.BINARY, lambda: iter([block]), x.shape[1], 1, SGDParams(), len(block.indices) * 12)
    with pytest.raises(Cancelled):
        fit_saga(ModelType.BINARY, lambda: iter([block]), x.shape[1], 1, SGDParams(), 2**30, should_stop=lambda: True)


def test_the_optimizer_is_stored_only_when_it_is_not_the_default() -> None:
    """A worker of the version before openaml.optimizer still reads the specs of models that
    do without it (a rolling update)."""
    from openaml.jobs.specs import MLModelSpec

    for given, stored in (({}, False), ({"openaml.optimizer": "saga"}, True)):
        spec = MLModelSpec(ModelType.BINARY, "ds", "{}", None, parse_parameters(given, "BINARY"), given)
        doc = spec.to_json()
        assert ("optimizer" in doc["parameters"]) == stored
        assert MLModelSpec.from_json(doc).parameters == spec.parameters


@pytest.mark.parametrize(("given", "message"), [
    ({"openaml.optimizer": "newton"}, "openaml.optimizer must be one of adagrad, saga, not 'newton'"),
    ({"openaml.optimizer": "saga", "sgd.l1RegularizationAmount": "1e-4"}, "takes no sgd.l1RegularizationAmount"),
    ({"openaml.optimizer": "saga", "openaml.algorithm": "gbdt"}, "applies to openaml.algorithm=sgd alone"),
])
def test_the_parameter_is_checked(given: dict[str, str], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_parameters(given, "BINARY")
    assert parse_parameters({}, "BINARY").optimizer == "adagrad"
    assert parse_parameters({"openaml.optimizer": " saga "}, "BINARY").optimizer == "saga"


def test_a_model_trained_by_saga_from_records() -> None:
    """Through train_model: the recipe's features, the passes told to `progress`."""
    rng = np.random.default_rng(4)
    schema = make_schema([("c", "CATEGORICAL"), ("x", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y")
    c = rng.integers(0, 5, 2000)
    x = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(c - 2 + x)))).astype(int)
    batch = make_batch({"c": [str(v) for v in c], "x": [f"{v:.3f}" for v in x], "y": [str(v) for v in y]})
    passes: list[int] = []
    model = train_model("BINARY", schema, '{"outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC"]}',
                        parse_parameters({"openaml.optimizer": "saga", "sgd.maxPasses": "5"}, "BINARY"), None,
                        lambda: iter([batch]), progress=lambda done: passes.append(done.passes))
    assert passes == list(range(1, len(passes) + 1)) and 1 <= len(passes) <= 5
    scores = model.score_batch(batch)
    assert np.corrcoef(scores, c - 2 + x)[0, 1] > 0.9


def _plain_saga(kind: ModelType, x: np.ndarray, y: np.ndarray, w: np.ndarray, passes: int, step: float,
                outputs: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """SAGA written plainly, every weight stepped every step (records in order; the mean of the
    kept gradients over the records seen so far)."""
    rows, features = x.shape
    weights, bias = np.zeros((features, outputs)), np.zeros(outputs)
    memory, total, total_bias, seen = np.zeros((rows, outputs)), np.zeros((features, outputs)), np.zeros(outputs), 0
    for _ in range(passes):
        for i in range(rows):
            seen += int(_ == 0)
            z = x[i] @ weights + bias
            if kind == ModelType.MULTICLASS:
                g = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
                g[int(y[i])] -= 1.0
            elif kind == ModelType.BINARY:
                g = 1 / (1 + np.exp(-z)) - y[i]
            else:
                g = z - y[i]
            change = w[i] * g - memory[i]
            weights = (1 - step * l2) * weights - step * (np.outer(x[i], change) + total / seen)
            bias = bias - step * (change + total_bias / seen)
            total += np.outer(x[i], change)
            total_bias += change
            memory[i] = w[i] * g
    return weights, bias


@pytest.mark.parametrize("kind", list(ModelType))
@pytest.mark.parametrize(("passes", "l2"), [(1, L2), (3, L2), (3, 5.0)])
def test_the_just_in_time_steps_are_the_plain_steps(kind: ModelType, passes: int, l2: float,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Sparse rows, an empty one, varied weights, and a first pass whose mean is over the
    records seen so far: the lazy kernel takes the plain algorithm's steps; also where L2 is so
    large that the weights' scale is folded into them again and again."""
    monkeypatch.setattr(sgd, "TOLERANCE", 0.0)
    x, y, block = _data(kind, rows=200, features=15)
    x[7] = 0.0
    where = np.nonzero(x)
    w = np.linspace(0.5, 2.0, len(y))
    indptr = np.concatenate([[0], np.cumsum((x != 0).sum(axis=1))]).astype(np.int64)
    block = Block(indptr, where[1].astype(np.int32), x[where], y, w)
    outputs = 3 if kind == ModelType.MULTICLASS else 1
    state = fit_saga(kind, lambda: iter([block]), x.shape[1], outputs, SGDParams(max_passes=passes, l2=l2), 2**30)
    step = step_size(kind, block, l2)
    weights, bias = _plain_saga(kind, x, y, w, passes, step, outputs, l2)
    np.testing.assert_allclose(state.weights, weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.bias, bias, rtol=1e-12, atol=1e-12)


def test_records_without_values_train_as_values_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """One-hot records (no values stored) are not given an array of ones: the kernel reads 1."""
    monkeypatch.setattr(sgd, "TOLERANCE", 0.0)
    _, y, block = _data(ModelType.MULTICLASS, rows=300)
    one_hot = Block(block.indptr, block.indices, np.zeros(0), y, block.w)
    ones = Block(block.indptr, block.indices, np.ones(len(block.indices)), y, block.w)
    a, b = (_fit(ModelType.MULTICLASS, data, 30, passes=3) for data in (one_hot, ones))
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)


def test_heavy_records_of_small_norm_train_at_a_step_that_converges(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record's weight counts in its bias's curvature too: weights of 100 on records of small
    norm made the loss diverge when the step counted them for the features alone."""
    from sklearn.linear_model import Ridge

    monkeypatch.setattr(sgd, "TOLERANCE", 0.0)
    x, y, block = _data(ModelType.REGRESSION, rows=1000)
    x *= 0.1
    w = np.where(np.arange(len(y)) % 10 == 0, 100.0, 1.0)
    heavy = Block(block.indptr, block.indices, block.values * 0.1, y, w)
    state = fit_saga(ModelType.REGRESSION, lambda: iter([heavy]), x.shape[1], 1,
                     SGDParams(max_passes=300, l2=L2, shuffle=True), 2**30)
    exact = Ridge(alpha=L2 * len(y)).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(state.weights[:, 0], exact.coef_, rtol=1e-2)  # it diverged to NaN
