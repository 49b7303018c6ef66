"""The ML engine: pure functions over Arrow record batches; no HTTP, store, clock or environment."""

from openaml.ml.metrics import Evaluation, evaluate_model, format_metric
from openaml.ml.model import Model, load_model
from openaml.ml.prediction import batch_predict, predict_record
from openaml.ml.recipes import Recipe, RecipeError, default_recipe, parse_recipe
from openaml.ml.training import (
                                 ParameterError,
                                 SGDParams,
                                 TrainingError,
                                 check_target,
                                 parse_parameters,
                                 train_model,
)

__all__ = ["Evaluation", "Model", "ParameterError", "Recipe", "RecipeError", "SGDParams",
           "TrainingError", "batch_predict", "check_target", "default_recipe", "evaluate_model",
           "format_metric", "load_model", "parse_parameters", "parse_recipe", "predict_record",
           "train_model"]
