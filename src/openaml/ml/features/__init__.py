"""Features: a recipe compiled into a pipeline fitted on training data, batch -> CSR block."""

from openaml.ml.features.fit import fit_pipeline
from openaml.ml.features.pipeline import FeaturePipeline

__all__ = ["FeaturePipeline", "fit_pipeline"]
