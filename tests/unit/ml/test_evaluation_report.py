"""The evaluation report is one typed object for its writer (the evaluation) and its reader
(the console): it survives JSON, reads the reports written before it had a type, and refuses
documents that are not reports."""

import json

import pytest

from openaml.ml import evaluate_model, train_model
from openaml.ml.metrics.report import (
    PAIRS,
    BinaryDetails,
    EvaluationReport,
    MulticlassDetails,
    RegressionDetails,
)
from openaml.ml.model_type import ModelType
from openaml.ml.training import SGDParams
from openaml.storage import ArtifactStore

from .conftest import make_batch, make_schema

# reports as the evaluation wrote them before they were typed (no model_type)
EARLIER = {
    ModelType.BINARY: {"baseline": 0.5, "records": 4, "histogram_edges": [0.0, 0.5, 1.0],
                       "histogram_positive": [0, 2], "histogram_negative": [1, 1],
                       "roc": [[0.0, 0.0, 1.0], [0.5, 1.0, 0.6]], "threshold": 0.5,
                       "confusion": {"tp": 2, "fp": 1, "tn": 1, "fn": 0}, "metric": 0.75,
                       "records_read": 5, "records_used": 4, "alerts": ["Only 4 evaluation records were used"]},
    ModelType.MULTICLASS: {"baseline": 0.2, "classes": ["a", "b"], "confusion_matrix": [[8, 2], [1, 9]],
                           "per_class": {"a": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10.0}},
                           "metric": 0.85, "records_read": 20, "records_used": 20, "alerts": []},
    ModelType.REGRESSION: {"baseline": 3.0, "records": 10, "residual_histogram": {"edges": [-1.0, 0.0, 1.0],
                                                                                 "counts": [4, 6]},
                           "metric": 1.5, "records_read": 10, "records_used": 10, "alerts": []},
}


@pytest.mark.parametrize("kind", list(EARLIER))
def test_reports_written_before_the_type_read_and_round_trip(kind):
    report = EvaluationReport.from_json(EARLIER[kind])
    assert report.model_type is kind and report.records_used == EARLIER[kind]["records_used"]
    again = EvaluationReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again == report


@pytest.mark.parametrize("bad", [
    None, [], "report", {},
    {**EARLIER[ModelType.BINARY], "histogram_positive": [0]},          # uneven histograms
    {**EARLIER[ModelType.BINARY], "histogram_edges": [True, 0.5, 1.0]},  # not numbers
    {**EARLIER[ModelType.MULTICLASS], "confusion_matrix": [[1, 2]]},     # not the classes' shape
    {**EARLIER[ModelType.REGRESSION], "residual_histogram": {"edges": [0.0], "counts": [1, 2]}},
    {**EARLIER[ModelType.BINARY], "model_type": "CLUSTERING"},
    {**EARLIER[ModelType.BINARY], "roc": [[0.0, 1.0]]},
])
def test_documents_that_are_not_reports_are_refused(bad):
    with pytest.raises(ValueError, match="not an evaluation report"):
        EvaluationReport.from_json(bad)


@pytest.mark.parametrize("kind", list(ModelType))
def test_an_evaluation_writes_the_report_its_reader_reads(kind, tmp_path):
    target = {ModelType.BINARY: "BINARY", ModelType.MULTICLASS: "CATEGORICAL", ModelType.REGRESSION: "NUMERIC"}
    schema = make_schema([("c", "CATEGORICAL"), ("n", "NUMERIC"), ("y", target[kind])], targetAttributeName="y")
    rows = 2 * PAIRS + 10
    values = {ModelType.BINARY: lambda i: str(i % 2), ModelType.MULTICLASS: lambda i: "xyz"[i % 3],
              ModelType.REGRESSION: lambda i: str(i % 5)}[kind]
    batch = make_batch({"c": ["ab"[i % 2] for i in range(rows)], "n": [str(i % 7) for i in range(rows)],
                        "y": [values(i) for i in range(rows)]})
    model = train_model(kind, schema, '{"outputs": ["c", "n"]}', SGDParams(max_passes=2), None,
                        lambda: iter([batch]))
    result = evaluate_model(model, [batch], schema)
    report = result.report
    assert report.model_type is kind and report.records_used == report.records_read == rows
    assert EvaluationReport.from_json(json.loads(json.dumps(report.to_json()))) == report
    artifacts = ArtifactStore(tmp_path)  # as the service stores it and the console reads it
    artifacts.write_json("Evaluation", "ev-1", "report.json", report.to_json())
    assert EvaluationReport.from_json(artifacts.read_json("Evaluation", "ev-1", "report.json")) == report
    details = report.details
    if kind is ModelType.BINARY:
        assert isinstance(details, BinaryDetails) and sum(details.positive) + sum(details.negative) == rows
    elif kind is ModelType.MULTICLASS:
        assert isinstance(details, MulticlassDetails) and details.classes == ["x", "y", "z"]
        assert sum(map(sum, details.matrix)) == rows
    else:
        assert isinstance(details, RegressionDetails) and sum(details.counts) == rows
        assert len(details.pairs) == PAIRS and details.pairs[0][0] == 0.0   # (actual, predicted)
