"""One scoring pass for several consumers (an evaluation and a batch prediction of the same
model and records) gives each what it gets alone; a consumer that fails leaves the pass and the
others go on; the pass ends once every consumer has failed."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from openaml.ml import parse_parameters, train_model
from openaml.ml.execution import Execution
from openaml.ml.metrics import evaluate_model
from openaml.ml.metrics.evaluation import EvaluationScores, finish_evaluation
from openaml.ml.model import Model
from openaml.ml.prediction import batch_predict
from openaml.ml.prediction.batch import ResultWriter
from openaml.ml.prediction.scoring import ScoredSlice, score_pass
from openaml.ml.schema import Schema
from openaml.ml.training import Cancelled
from tests.unit.ml.conftest import make_batch, make_schema

RECIPE = '{"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "ALL_TEXT"]}'
ROWS, BATCH_ROWS = 3000, 400


def _data(model_type: str, target_type: str) -> tuple[Schema, list[pa.RecordBatch]]:
    """Records of two input files, some rejected, some without a valid target."""
    rng = np.random.default_rng(5)
    schema = make_schema([("x", "NUMERIC"), ("c", "CATEGORICAL"), ("t", "TEXT"), ("y", target_type)],
                         targetAttributeName="y")
    x, c = rng.normal(size=ROWS), rng.integers(0, 5, ROWS)
    signal = x + c / 2 + rng.normal(size=ROWS)
    y = {"BINARY": (signal > 1).astype(int), "MULTICLASS": np.digitize(signal, [0, 1, 2]),
         "REGRESSION": np.round(signal, 3)}[model_type]
    words = np.array(["a", "b b", "c, d", "e f g", ""])
    rows: dict[str, list[str | None]] = {
        "x": [f"{v:.4f}" for v in x], "c": [str(v) for v in c],
        "t": list(words[rng.integers(0, 5, ROWS)]), "y": [str(v) for v in y]}
    for i in range(7, ROWS, 97):
        rows["y"][i] = None
    for i in range(11, ROWS, 131):
        rows["y"][i] = "bad"
    batches = []
    for start in range(0, ROWS, BATCH_ROWS):
        count = min(BATCH_ROWS, ROWS - start)
        batches.append(make_batch({k: v[start:start + count] for k, v in rows.items()},
                                  rejected=[(start + j) % 53 == 0 for j in range(count)],
                                  files=[int(start + j >= ROWS // 2) for j in range(count)]))
    return schema, batches


class _Files:
    """open_output for a batch prediction: in-memory result files."""

    def __init__(self) -> None:
        self.files: dict[int, io.BytesIO] = {}

    def __call__(self, index: int) -> io.BytesIO:
        self.files[index] = stream = io.BytesIO()
        stream.close = lambda: None  # type: ignore[method-assign]  # read after the writer closes it
        return stream

    def texts(self) -> dict[int, str]:
        return {k: gzip.decompress(v.getvalue()).decode() for k, v in self.files.items()}


def _report(evaluation: Any) -> str:
    return json.dumps(evaluation.report.to_json(), sort_keys=True)


@pytest.mark.parametrize(("model_type", "target_type"),
                         [("BINARY", "BINARY"), ("MULTICLASS", "CATEGORICAL"), ("REGRESSION", "NUMERIC")])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_pass_gives_each_consumer_what_it_gets_alone(model_type: str, target_type: str, threads: int) -> None:
    schema, batches = _data(model_type, target_type)
    model = train_model(model_type, schema, RECIPE, parse_parameters({}, model_type), None, lambda: iter(batches))
    execution = Execution(threads)
    alone = evaluate_model(model, iter(batches), schema, lambda: False, execution)
    alone_files = _Files()
    alone_counts = batch_predict(model, iter(batches), schema, 0.5, alone_files, lambda: False, execution)

    scores, files = EvaluationScores(model), _Files()
    writer = ResultWriter(model, schema, 0.5, files)
    assert score_pass(model, iter(batches), [scores, writer], lambda: False, execution) == [None, None]
    writer.close()
    together = finish_evaluation(model, schema, [scores.scored()])
    assert together.metrics == alone.metrics and _report(together) == _report(alone)
    assert together.records == alone.records < ROWS
    assert (writer.total, writer.invalid) == alone_counts == (ROWS, len(range(0, ROWS, 53)))
    assert files.texts() == alone_files.texts() and len(files.texts()) == 2


class _Failing:
    """A consumer that raises in `prepare` or in `take` at the batch `at` (a pass without
    should_stop takes batches whole), and counts the slices it took."""

    def __init__(self, where: str, at: pa.RecordBatch) -> None:
        self.where, self.at, self.slices = where, at, 0

    def prepare(self, scored: ScoredSlice) -> pa.RecordBatch:
        if self.where == "prepare" and scored.part is self.at:
            raise OSError("cannot prepare")
        return scored.part

    def take(self, prepared: pa.RecordBatch) -> None:
        self.slices += 1
        if self.where == "take" and prepared is self.at:
            raise OSError("cannot write")


@pytest.mark.parametrize("where", ["prepare", "take"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_consumer_that_fails_leaves_the_pass_and_the_others_go_on(where: str, threads: int) -> None:
    schema, batches = _data("BINARY", "BINARY")
    model = train_model("BINARY", schema, RECIPE, parse_parameters({}, "BINARY"), None, lambda: iter(batches))
    alone = evaluate_model(model, iter(batches), schema)
    failing = _Failing(where, batches[2])
    scores = EvaluationScores(model)
    told: list[tuple[int, Exception, int]] = []  # (consumer, error, records the other had seen then)
    failures = score_pass(model, iter(batches), [failing, scores], None, Execution(threads),
                          lambda k, error: told.append((k, error, scores.seen)))
    assert isinstance(failures[0], OSError) and failures[1] is None
    assert told == [(0, failures[0], 2 * BATCH_ROWS)]  # at once: before the others took that batch
    assert failing.slices == (2 if where == "prepare" else 3)  # nothing reached it after its failure
    assert _report(finish_evaluation(model, schema, [scores.scored()])) == _report(alone)


def test_the_pass_ends_once_every_consumer_has_failed() -> None:
    schema, batches = _data("BINARY", "BINARY")
    model = train_model("BINARY", schema, RECIPE, parse_parameters({}, "BINARY"), None, lambda: iter(batches))
    read: list[int] = []

    def counted() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(batches * 20):
            read.append(number)
            yield batch

    consumers = [_Failing("take", batches[0]), _Failing("take", batches[1])]
    failures = score_pass(model, counted(), consumers, None, Execution(2))
    assert all(isinstance(f, OSError) for f in failures)
    assert len(read) <= 5  # the slices being made when the last consumer failed, of 160


def test_a_pass_asked_to_stop_raises_cancelled_for_all() -> None:
    schema, batches = _data("BINARY", "BINARY")
    model: Model = train_model("BINARY", schema, RECIPE, parse_parameters({}, "BINARY"), None,
                               lambda: iter(batches))
    with pytest.raises(Cancelled):
        score_pass(model, iter(batches), [EvaluationScores(model)], lambda: True)
