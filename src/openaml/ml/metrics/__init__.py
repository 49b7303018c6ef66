"""Metrics: AUC, macro F1 and RMSE as accumulators; evaluation of a model on a datasource."""

from openaml.ml.metrics.accumulators import auc_score
from openaml.ml.metrics.evaluation import Evaluation, EvaluationError, evaluate_model
from openaml.ml.metrics.formatting import format_metric, format_score, score_texts

__all__ = ["Evaluation", "EvaluationError", "auc_score", "evaluate_model", "format_metric",
           "format_score", "score_texts"]
