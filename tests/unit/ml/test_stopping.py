"""should_stop: training, evaluation and batch prediction stop soon after it answers True
(between SGD passes, within a pass, while replaying kept records, between slices of scored
records), and asking it changes no result."""

import gzip
import io
from types import SimpleNamespace

import numpy as np
import pytest

from openaml.ml import batch_predict, evaluate_model, train_model
from openaml.ml.training import Cancelled, SGDParams
from openaml.ml.training import stop as stop_module
from openaml.ml.training.blocks import Block
from openaml.ml.training.sgd import STOP_CHECK_STEPS, fit_linear, minibatch_size
from openaml.ml.training.stop import FIRST_SLICE_ROWS, MAX_SLICE_ROWS, SLICE_SECONDS, Slices
from openaml.ml.training.validation import FOLDS

from .conftest import make_batch, make_schema

SCHEMA = make_schema([("c", "CATEGORICAL"), ("n", "NUMERIC"), ("t", "TEXT"), ("y", "CATEGORICAL")],
                     targetAttributeName="y")
RECIPE = '{"outputs": ["c", "quantile_bin(n, 10)", "ngram(t, 2)"]}'


def records(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 40, n)
    return make_batch({
        "c": [f"v{v}" for v in c], "n": [f"{v:.4f}" for v in rng.normal(size=n)],
        "t": [f"w{a} w{b}" for a, b in rng.integers(0, 30, (n, 2))],
        "y": [f"k{(v + r) % 3}" for v, r in zip(c, rng.integers(0, 2, n))]})


class StopAfter:
    """should_stop answering True from its `calls`-th question on (never when None)."""

    def __init__(self, calls: int | None = None) -> None:
        self.limit, self.calls = calls, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.limit is not None and self.calls >= self.limit


def test_fitting_stops_within_a_pass() -> None:
    rows = 5000  # one buffer of rows / minibatch_size = 79 steps (in the first fold of cross-validation)
    rng = np.random.default_rng(1)
    indices = rng.integers(0, 50, rows).astype(np.int32)
    block = Block(np.arange(rows + 1, dtype=np.int64), indices, np.zeros(0),
                  (indices % 2).astype(np.float64), np.ones(rows))
    passes: list[dict] = []
    should_stop = StopAfter(3)  # asked before the buffer, then after 16 and 32 steps
    with pytest.raises(Cancelled):
        fit_linear("BINARY", lambda: iter([block]), 50, 1, SGDParams(max_passes=5), rows,
                   passes.append, should_stop=should_stop)
    assert passes == [] and should_stop.calls == 3
    assert rows // minibatch_size(rows) > 3 * STOP_CHECK_STEPS  # it stopped well before the end


def test_training_stops_between_passes_over_kept_records() -> None:
    reads: list[int] = []
    passes: list[dict] = []

    def batches():
        reads.append(1)
        return iter([records(3000)])

    with pytest.raises(Cancelled):
        train_model("MULTICLASS", SCHEMA, RECIPE, SGDParams(max_passes=10), None, batches,
                    passes.append, should_stop=lambda: bool(passes))
    # the records were read once, then kept: only should_stop could stop the second pass (of the
    # folds of cross-validation: the progress reports them too)
    assert len(reads) == 1 and len(passes) == 1


def test_training_stops_while_replaying_kept_records() -> None:
    data = [records(500, seed) for seed in range(4)]
    taken: list[int] = []

    def batches():
        for index, batch in enumerate(data):
            taken.append(index)
            yield batch

    with pytest.raises(Cancelled):
        train_model("MULTICLASS", SCHEMA, RECIPE, SGDParams(max_passes=10), None, batches,
                    should_stop=StopAfter(6))
    # fitting read all 4 batches (questions 1-4), the features were then built from memory (the
    # first fold of cross-validation asked twice more)
    assert taken == [0, 1, 2, 3]


def test_asking_changes_no_model_and_is_rare() -> None:
    def batches():
        return iter([records(3000, 3), records(1000, 4)])

    params = SGDParams(max_passes=4, shuffle=True, seed=7)
    plain = train_model("MULTICLASS", SCHEMA, RECIPE, params, None, batches)
    should_stop = StopAfter()
    asked = train_model("MULTICLASS", SCHEMA, RECIPE, params, None, batches, should_stop=should_stop)
    assert np.array_equal(plain.weights, asked.weights) and np.array_equal(plain.bias, asked.bias)
    # small data: the folds of cross-validation train too
    steps = (FOLDS + 1) * params.max_passes * -(-4000 // minibatch_size(4000))
    assert 0 < should_stop.calls < steps / 4


@pytest.fixture(scope="module")
def model():
    return train_model("MULTICLASS", SCHEMA, RECIPE, SGDParams(max_passes=3), None,
                       lambda: iter([records(600)]))


def predictions(model, batches, should_stop=None) -> dict[int, bytes]:
    outputs: dict[int, bytes] = {}

    class Keep(io.BytesIO):
        def close(self) -> None:
            outputs[self.index] = self.getvalue()
            super().close()

    def open_output(index: int) -> Keep:
        stream = Keep()
        stream.index = index
        return stream

    batch_predict(model, batches, SCHEMA, 0.5, open_output, should_stop)
    return {index: gzip.decompress(data) for index, data in outputs.items()}


def slices_of_16(monkeypatch) -> None:
    for name in ("FIRST_SLICE_ROWS", "MIN_SLICE_ROWS", "MAX_SLICE_ROWS"):
        monkeypatch.setattr(stop_module, name, 16)


def test_slices_take_about_slice_seconds(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(stop_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    sizes = []
    slices = Slices(lambda: False)
    for cost in (2**-11, 2**-30):  # seconds per record (exact in binary): heavy, then light
        process = slices.timed(lambda part, cost=cost: now.__setitem__(0, now[0] + part.num_rows * cost))
        for part in slices.of(make_batch({"c": ["v"] * 5000})):
            sizes.append(part.num_rows)
            process(part)
    heavy = int(SLICE_SECONDS * 2**11)
    full, rest = divmod(5000 - FIRST_SLICE_ROWS, heavy)
    assert sizes[:full + 2] == [FIRST_SLICE_ROWS] + [heavy] * full + [rest]
    # the short last slice kept the size; light records grew it up to the limit
    assert sizes[full + 2:] == [heavy, 5000 - heavy] and slices.rows == MAX_SLICE_ROWS


def test_without_should_stop_batches_stay_whole() -> None:
    batch = make_batch({"c": ["v"] * 100_000})
    assert [p.num_rows for p in Slices(None).of(batch)] == [100_000]


def test_scoring_in_slices_changes_no_result(model, monkeypatch) -> None:
    data = [records(300, 5), records(77, 6)]
    whole_evaluation = evaluate_model(model, data, SCHEMA)
    whole_predictions = predictions(model, data)
    slices_of_16(monkeypatch)
    should_stop = StopAfter()
    sliced_evaluation = evaluate_model(model, data, SCHEMA, should_stop)
    assert should_stop.calls == 19 + 5
    assert sliced_evaluation == whole_evaluation
    assert predictions(model, data, StopAfter()) == whole_predictions


def test_evaluation_and_batch_prediction_stop_within_a_batch(model, monkeypatch) -> None:
    slices_of_16(monkeypatch)
    data = [records(300, 5)]  # one batch, 19 slices
    should_stop = StopAfter(3)
    with pytest.raises(Cancelled):
        evaluate_model(model, data, SCHEMA, should_stop)
    assert should_stop.calls == 3
    should_stop = StopAfter(3)
    with pytest.raises(Cancelled):
        predictions(model, data, should_stop)
    assert should_stop.calls == 3


def test_slices_scored_two_at_a_time_keep_their_time(monkeypatch) -> None:
    """Slices processed on two threads (the next one cut while the one before is scored) are
    sized by their own processing time, not by the gap between cuts, which would grow them to
    MAX_SLICE_ROWS and leave a stop waiting for the whole batch."""
    import time as real_time

    from openaml.ml.execution import Execution, two_at_a_time
    monkeypatch.setattr(stop_module, "SLICE_SECONDS", 0.02)
    slices = Slices(lambda: False)

    def score(part):
        real_time.sleep(part.num_rows * 1e-4)  # 200 records take SLICE_SECONDS
        return part.num_rows

    batch = make_batch({"c": ["v"] * 4000})
    sizes = list(two_at_a_time(slices.timed(score), slices.of(batch), Execution(2)))
    assert sum(sizes) == 4000 and max(sizes) <= 2 * FIRST_SLICE_ROWS
