"""Training: parameters, target checks and minibatch SGD for the three linear model types."""

from openaml.ml.training.params import (
    ParameterError,
    SGDParams,
    check_target,
    parse_parameters,
    shown_parameters,
)
from openaml.ml.training.stop import Cancelled, ShouldStop
from openaml.ml.training.train import TrainingError, train_model

__all__ = ["Cancelled", "ParameterError", "SGDParams", "ShouldStop", "TrainingError", "check_target",
           "parse_parameters", "shown_parameters", "train_model"]
