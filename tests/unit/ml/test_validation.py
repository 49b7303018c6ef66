"""Cross-validation of the number of passes (validation.py) and the step sizes it makes safe."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from openaml.ml import train_model
from openaml.ml.metrics.accumulators import MulticlassAccumulator, macro_f1
from openaml.ml.model_type import ModelType
from openaml.ml.training import SGDParams, sgd, validation
from openaml.ml.training.blocks import Block
from openaml.ml.training.kernel import KINDS, gradients
from openaml.ml.training.progress import TrainingProgress
from openaml.ml.training.validation import (
    FOLDS,
    MAX_WAIT,
    PATIENCE,
    HeldOut,
    PassResult,
    Validation,
    fold_rows,
    in_memory,
    record_losses,
    validation_curve,
)

from .conftest import add_labels, make_schema


def test_folds_are_balanced_and_the_same_for_the_same_buffer():
    folds = fold_rows(10_000, 3, seed=5)
    assert np.array_equal(folds, fold_rows(10_000, 3, seed=5))
    assert not np.array_equal(folds, fold_rows(10_000, 4, seed=5))
    counts = np.bincount(folds, minlength=FOLDS)
    assert len(counts) == FOLDS and np.all(np.abs(counts - 2000) < 150)


def passes(held: list[float], training: list[float] | None = None):
    """A fold's passes whose one held-out record has these (REGRESSION) losses; the training
    loss falls unless given."""
    for k, loss in enumerate(held):
        yield PassResult.scored(ModelType.REGRESSION, 1.0 / (k + 1) if training is None else training[k],
                                np.array([[np.sqrt(2 * loss)]]), np.zeros(1), np.ones(1))


def test_the_curve_pools_the_folds_and_stops_after_patience():
    folds = [passes([0.9, 0.5, 0.4, 0.45, 0.5, 0.6, 0.1]), passes([0.7, 0.5, 0.2, 0.35, 0.5, 0.6, 0.1])]
    found = validation_curve(ModelType.REGRESSION, folds)
    assert found.losses == pytest.approx([0.8, 0.5, 0.3, 0.4, 0.5])  # two passes without improving
    assert found.metrics == () and len(found.losses) == 3 + PATIENCE and found.chosen_passes() == 3
    assert validation_curve(ModelType.REGRESSION, [passes([0.5, 0.4]), passes([0.5])]).losses == (0.5,)
    assert Validation().chosen_passes() == 0


def test_passes_whose_training_loss_rises_do_not_count_towards_patience():
    """Small data overshoot in the first passes: held-out and training losses rise, then fall."""
    held = [2.0, 3.0, 4.0, 5.0, 1.0, 1.5, 1.6, 0.5]
    rising = [1.0, 2.0, 3.0, 4.0, 0.9, 0.8, 0.7, 0.6]
    found = validation_curve(ModelType.REGRESSION, [passes(held, rising)])
    assert found.chosen_passes() == 5 and len(found.losses) == 5 + PATIENCE
    assert len(validation_curve(ModelType.REGRESSION, [passes(held)]).losses) == 1 + PATIENCE
    never_falls = validation_curve(ModelType.REGRESSION, [passes([1.0] + [2.0] * 20, [float("nan")] * 21)])
    assert len(never_falls.losses) == 1 + MAX_WAIT  # a NaN training loss never falls: the cap stops it
    assert Validation((float("nan"), 0.3, 0.3)).chosen_passes() == 2


def test_multiclass_chooses_by_macro_f1_then_loss_and_binary_by_loss():
    """A model can score better while its loss grows (sharper probabilities): for MULTICLASS
    the metric the evaluation will report decides, the loss breaking ties; BINARY goes by the
    loss."""
    y = np.array([0.0, 1.0, 2.0, 2.0])
    sharp = np.array([[9.0, 0, 0], [0, 9.0, 0], [0, 0, 9.0], [9.0, 0, 0]])  # 3 right, one very wrong
    mild = sharp / 9  # the same 3 right, mildly wrong
    worse = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])  # 2 right

    def fold(pass_scores):
        for k, scores in enumerate(pass_scores):
            yield PassResult.scored(ModelType.MULTICLASS, 1.0 / (k + 1), scores, y, np.ones(4))

    found = validation_curve(ModelType.MULTICLASS, [fold([worse, sharp, mild, worse, worse, worse])])
    assert found.losses[1] > found.losses[0] and found.metrics[1] > found.metrics[0]
    assert found.metrics[1] == found.metrics[2] and found.losses[2] < found.losses[1]
    assert found.chosen_passes() == 3 and len(found.losses) == 3 + PATIENCE
    ranked = [np.array([[-1.0], [1.0]]), np.array([[-9.0], [-8.0]])]  # both AUC 1, the second far off
    binary = validation_curve(ModelType.BINARY, [(PassResult.scored(ModelType.BINARY, 1.0 / (k + 1), scores,
                                                                    np.array([0.0, 1.0]), np.ones(2))
                                                  for k, scores in enumerate(ranked))])
    assert binary.metrics == (1.0, 1.0) and not binary.by_metric and binary.chosen_passes() == 1


def test_macro_f1_of_class_numbers_is_the_evaluations():
    rng = np.random.default_rng(3)
    true, predicted = rng.integers(0, 6, 500), rng.integers(1, 7, 500)
    accumulator = MulticlassAccumulator()
    add_labels(accumulator, true, predicted)
    assert macro_f1(true, predicted) == pytest.approx(accumulator.metric(), rel=1e-12)
    assert macro_f1(np.zeros(0, int), np.zeros(0, int)) == 0.0


def test_the_folds_are_closed_when_the_curve_stops():
    closed = []

    def fold():
        try:
            yield from passes([0.5, 0.6, 0.7, 0.8, 0.9])
        finally:
            closed.append(True)

    validation_curve(ModelType.REGRESSION, [fold(), fold()])
    assert closed == [True, True]


def block(rows: int, width: int) -> Block:
    return Block(np.arange(0, rows * width + 1, width, dtype=np.int64), np.zeros(rows * width, np.int32),
                 np.zeros(0), np.zeros(rows), np.ones(rows))


def test_only_small_data_are_kept_for_cross_validation(monkeypatch):
    monkeypatch.setattr(validation, "CV_MAX_ENTRIES", 1000)
    reads = []

    def blocks():
        for number in range(5):  # 1,500 entries in all
            reads.append(number)
            yield block(100, 3)

    kept, source = in_memory(lambda: iter([block(100, 2)] * 5), 500, 10, 2**20)  # 1,000 entries
    assert kept is not None and len(kept) == 5 and list(source()) == kept
    assert in_memory(blocks, 500, 10, 2**20)[0] is None and reads == [0, 1, 2, 3]  # stopped at the fourth
    assert in_memory(blocks, validation.CV_MIN_ROWS - 1, 10, 2**20)[0] is None and len(reads) == 4  # not read
    assert in_memory(blocks, 500, 2**20 // (2 * FOLDS * validation.MODEL_BYTES) + 1, 2**20)[0] is None  # the models
    assert len(reads) == 4


def test_blocks_found_too_large_are_not_read_again_for_the_first_pass(monkeypatch):
    """The blocks read until the data were found too large to cross-validate are the first
    pass's: their features are built once (at 35k rows of the tabular benchmark, twice cost a
    quarter of the training). Later passes read the source again; a first read left early
    closes the read begun."""
    monkeypatch.setattr(validation, "CV_MAX_ENTRIES", 1000)
    reads, closed = [], []

    def blocks():
        try:
            for number in range(5):
                reads.append(number)
                yield block(100, 3)
        finally:
            closed.append(True)

    kept, source = in_memory(blocks, 500, 10, 2**20)
    assert kept is None and reads == [0, 1, 2, 3] and not closed
    assert len(list(source())) == 5 and reads == [0, 1, 2, 3, 4] and closed == [True]
    assert len(list(source())) == 5 and reads[5:] == [0, 1, 2, 3, 4]  # a pass after the first
    reads.clear()
    _, source = in_memory(blocks, 500, 10, 2**20)
    first = source()
    next(first)
    first.close()
    assert reads == [0, 1, 2, 3] and closed == [True, True, True]
    sgd_reads = []

    def counted():
        for number in range(5):
            sgd_reads.append(number)
            yield Block(np.arange(0, 301, 3, dtype=np.int64), np.tile(np.arange(3, dtype=np.int32), 100),
                        np.zeros(0), np.arange(100) % 2.0, np.ones(100))

    sgd.fit_linear(ModelType.BINARY, counted, 3, 1, SGDParams(max_passes=1), 500)
    assert sgd_reads == [0, 1, 2, 3, 4]  # each block built once


@pytest.mark.parametrize("kind", list(ModelType))
def test_held_out_records_are_scored_with_the_kernels_loss(kind):
    """The held-out loss is the loss training minimizes, record by record (weighted)."""
    rng = np.random.default_rng(2)
    rows, n_features, outputs = 40, 6, 3 if kind == ModelType.MULTICLASS else 1
    indptr = np.arange(0, 2 * rows + 1, 2, dtype=np.int64)
    indices = rng.integers(0, n_features, 2 * rows).astype(np.int32)
    values = rng.normal(size=2 * rows)
    classes = rng.integers(0, max(outputs, 2), rows).astype(float)
    y = rng.normal(size=rows) if kind == ModelType.REGRESSION else classes
    w = rng.uniform(0.5, 2.0, rows)
    weights, bias = rng.normal(size=(n_features, outputs)), rng.normal(size=outputs)
    held = HeldOut(kind, n_features)
    whole = Block(indptr, indices, values, y, w)
    held.add(whole, np.arange(0, rows, 2))
    held.add(whole, np.arange(1, rows, 2))  # every record, in another order
    order = np.concatenate([np.arange(0, rows, 2), np.arange(1, rows, 2)])
    scores = np.zeros((rows, outputs))
    for r in range(rows):
        for j in range(indptr[r], indptr[r + 1]):
            scores[r] += values[j] * weights[indices[j]]
    total = gradients(KINDS[kind], scores, np.zeros_like(scores), bias, y, w, np.arange(rows),
                      np.zeros((rows, outputs)))
    assert np.allclose(held.scores(weights, bias), scores[order] + bias)
    assert all(np.array_equal(a, b[order]) for a, b in zip(held.targets, (y, w)))
    assert record_losses(kind, scores + bias, y) @ w == pytest.approx(total, rel=1e-10)
    assert HeldOut(kind, n_features).scores(weights, bias).shape == (0, outputs)


def test_the_step_reference_follows_the_records_norm():
    assert sgd.step_reference(block(10, 784), True) == 196.0  # a quarter of the squared norm
    assert sgd.step_reference(block(10, 2), True) == 1.0  # at least 1
    # no cross-validation: an eighth of the norm (three times as many steps), at least 128
    assert sgd.step_reference(block(10, 2), False) == sgd.SIZE_REFERENCE == 128.0
    assert sgd.step_reference(block(10, 784), False) == 128.0
    assert sgd.step_reference(block(10, 2048), False) == 256.0
    valued = Block(np.array([0, 2, 2, 3]), np.array([0, 1, 0], np.int32), np.array([30.0, 40.0, 20.0]),
                   np.zeros(3), np.ones(3))
    assert sgd.step_reference(valued, True) == pytest.approx(0.25 * (2500 + 0 + 400) / 3)
    empty_last = Block(np.array([0, 1, 2, 2]), np.array([0, 1], np.int32), np.array([80.0, 40.0]),
                       np.zeros(3), np.ones(3))
    assert sgd.step_reference(empty_last, True) == pytest.approx(0.25 * (6400 + 1600) / 3)


def choose_passes(monkeypatch: pytest.MonkeyPatch, passes: int) -> None:
    """Training takes `passes` passes as if cross-validation had chosen them, without folds."""
    def validated(kind, folds, on_pass=None):
        for fold in folds:
            fold.close()
        return Validation(tuple(1.0 - k / 100 for k in range(passes)))  # the least loss last

    monkeypatch.setattr(sgd, "validation_curve", validated)


def noisy_table(rows: int, seed: int) -> pa.RecordBatch:
    """A weak signal in one of 40 values of `c`, and 200 values of `d` that are noise: the exact
    fit at the default regularization overfits."""
    rng = np.random.default_rng(seed)
    c, d = rng.integers(0, 40, rows), rng.integers(0, 200, rows)
    y = rng.random(rows) < 1 / (1 + np.exp(-(c % 2 - 0.5)))
    return pa.RecordBatch.from_pydict({"c": [f"c{v}" for v in c], "d": [f"d{v}" for v in d],
                                       "y": ["1" if v else "0" for v in y]})


def test_small_data_train_the_chosen_passes_on_every_record(monkeypatch):
    schema = make_schema([("c", "CATEGORICAL"), ("d", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    data = noisy_table(600, 1)
    recipe = '{"outputs": ["ALL_CATEGORICAL"]}'
    found: list[TrainingProgress] = []
    params = SGDParams(max_passes=30, shuffle=True, seed=4)
    model = train_model("BINARY", schema, recipe, params, None, lambda: iter([data]), progress=found.append)
    done = found[-1]
    validating = [p for p in found if not p.losses]  # reported first, pass by pass
    assert [len(p.validation.losses) for p in validating] == list(range(1, len(done.validation.losses) + 1))
    assert found[:len(validating)] == validating and validating[-1].validation == done.validation
    assert validating[0].line().startswith("cross-validation pass 1 of up to 30: held-out loss 0.")
    assert ", metric 0." in validating[0].line() and len(done.validation.metrics) == len(done.validation.losses)
    assert done.line().startswith(f"pass {done.passes} of the {done.chosen_passes} chosen by cross-validation")
    assert 1 <= done.chosen_passes < params.max_passes and done.passes == done.chosen_passes
    assert len(done.validation.losses) < params.max_passes  # the folds stopped early
    assert done.chosen_passes == done.validation.chosen_passes()
    # the model is the one trained on every record for the chosen passes
    choose_passes(monkeypatch, done.chosen_passes)
    plain = train_model("BINARY", schema, recipe, params, None, lambda: iter([data]))
    assert np.array_equal(model.weights, plain.weights) and np.array_equal(model.bias, plain.bias)
    stored = TrainingProgress.from_json(json.loads(json.dumps(done.to_json())))
    assert stored == done


def test_the_chosen_passes_generalize_better_than_every_pass(monkeypatch):
    """On a table whose exact fit overfits, cross-validation's model does better on new records
    than running all sgd.maxPasses."""
    schema = make_schema([("c", "CATEGORICAL"), ("d", "CATEGORICAL"), ("y", "BINARY")], targetAttributeName="y")
    recipe = '{"outputs": ["ALL_CATEGORICAL"]}'
    held = noisy_table(5000, 2)
    truth = np.array(held.column("y").to_pylist()) == "1"

    def held_loss(model) -> float:
        p = np.clip(model.score_table(pa.Table.from_batches([held])), 1e-12, 1 - 1e-12)
        return float(-np.mean(np.where(truth, np.log(p), np.log(1 - p))))

    params = SGDParams(max_passes=30, shuffle=True, seed=4)
    chosen = train_model("BINARY", schema, recipe, params, None, lambda: iter([noisy_table(600, 1)]))
    choose_passes(monkeypatch, params.max_passes)
    every = train_model("BINARY", schema, recipe, params, None, lambda: iter([noisy_table(600, 1)]))
    assert held_loss(chosen) < held_loss(every) - 0.01


def folded_blocks(rows: int = 8_000) -> list[Block]:
    """One-hot records with a learnable target, in blocks of 4,000 (one buffer: fewer than
    MIN_BUFFER_ROWS, whatever the budget)."""
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 40, rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(codes % 5 - 2.0)))).astype(float)
    cut = np.arange(0, rows + 1, 4000)
    return [Block(np.arange(e - s + 1, dtype=np.int64), codes[s:e].astype(np.int32), np.zeros(0), y[s:e],
                  np.ones(e - s)) for s, e in zip(cut[:-1], cut[1:])]


def fit(blocks: list[Block], memory_bytes: int = sgd.MEMORY_BYTES, execution=None, should_stop=None):
    from openaml.ml.execution import ONE_THREAD

    found: list[TrainingProgress] = []
    state = sgd.fit_linear(ModelType.BINARY, lambda: iter(blocks), 40, 1, SGDParams(max_passes=8, shuffle=True, seed=2),
                           sum(len(b.y) for b in blocks), found.append, memory_bytes, should_stop,
                           execution or ONE_THREAD)
    return state, found[-1]


def test_cross_validation_is_the_same_from_kept_plans_or_re_read_buffers(monkeypatch):
    """Buffers built again every pass (no room to keep their plans) hold out the same records
    as kept ones: the same curve, passes and model."""
    built = []
    group = sgd.group_buffers
    monkeypatch.setattr(sgd, "group_buffers", lambda *args: (built.append(1), group(*args))[1])
    blocks = folded_blocks()
    kept, kept_progress = fit(blocks)
    assert len(built) == FOLDS + 1  # once per training
    # room for the folds' models and the blocks, not for the plans: every pass builds them again
    tight, tight_progress = fit(blocks, memory_bytes=2 * FOLDS * 40 * validation.MODEL_BYTES + 4096)
    assert len(built) > 3 * (FOLDS + 1)
    assert kept_progress.chosen_passes and kept_progress.validation == tight_progress.validation
    assert np.array_equal(kept.weights, tight.weights) and np.array_equal(kept.bias, tight.bias)


def test_cross_validation_is_the_same_on_one_thread_or_two():
    from openaml.ml.execution import Execution

    blocks = folded_blocks()
    one, one_progress = fit(blocks)
    two, two_progress = fit(blocks, execution=Execution(2))
    assert one_progress == two_progress and np.array_equal(one.weights, two.weights)


def test_cancelling_during_cross_validation_stops_and_closes_the_folds():
    from openaml.ml.training import Cancelled

    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 10  # within the folds' first passes

    with pytest.raises(Cancelled):
        fit(folded_blocks(), should_stop=should_stop)
    assert len(asked) == 11
