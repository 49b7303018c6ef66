"""Prediction: batch result files and single-record Predict answers."""

from openaml.ml.prediction.batch import batch_predict, header_line, result_lines
from openaml.ml.prediction.realtime import RecordScorer, UnscorableRecord, predict_record

__all__ = ["RecordScorer", "UnscorableRecord", "batch_predict", "header_line", "predict_record", "result_lines"]
