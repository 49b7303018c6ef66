"""What a model says about itself: its largest weights (or the trees' split gains), a
prediction of a record typed in the console, and what the model did with that record's values.
A record's contributions come from openaml.ml.prediction.explanations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow.compute as pc

from openaml.console.forms import shortened
from openaml.ml.features.record import attribute_value
from openaml.ml.model import Model
from openaml.ml.prediction import RecordScorer, predict_record
from openaml.ml.prediction.explanations import output_names
from openaml.ml.recipes.nodes import CATEGORICAL, Attr, attributes_of
from openaml.ml.schema import WHITE_SPACE, AttributeType

SHOWN_NAMES = 8  # attribute names listed in one warning


def top_weights(model: Model, limit: int = 10) -> list[dict[str, Any]]:
    """Per output column, the `limit` features with the largest |weight|, largest first; for
    boosted trees, the features whose splits gained the most, over all outputs."""
    names = model.feature_names()
    if model.trees is not None:
        gains = model.importance()
        best = [int(i) for i in np.argsort(-gains, kind="stable")[:limit] if gains[i] > 0]
        return [{"output": "total gain of the splits on each feature", "bias": None,
                 "features": [(names[i] if i < len(names) else f"#{i}", float(gains[i])) for i in best]}]
    weights = np.asarray(model.weights, dtype=np.float64)
    out = []
    for k, output in enumerate(output_names(model)):
        column = weights[:, k] if weights.ndim == 2 else weights
        order = np.argsort(-np.abs(column), kind="stable")[:limit]
        out.append({"output": output, "bias": float(np.ravel(model.bias)[k]),
                    "features": [(names[i] if i < len(names) else f"#{i}", float(column[i])) for i in order]})
    return out


def predict(scorer: RecordScorer, record: dict[str, str], threshold: float) -> dict[str, Any]:
    """Predict's "Prediction" for one record, as the API's Predict makes it."""
    return predict_record(scorer, record, threshold)


def record_warnings(model: Model, record: dict[str, str]) -> list[str]:
    """What the model did with the parts of `record` it could not use, in sentences: attributes
    it does not know, that are its target or that its recipe does not read (ignored), inputs
    it reads missing or empty, values it cannot read as their type (missing, as Predict reads
    them: the record is not refused), and categories it has no feature for."""
    schema = model.schema
    inputs = [a for a in schema.attributes if a.name != schema.target]
    known = {a.name for a in inputs}
    warnings = []
    unknown = [name for name in record if name not in known and name != schema.target]
    if unknown:
        warnings.append(f"Not in the model's schema, ignored: {_names([shortened(name) for name in unknown])}.")
    if schema.target is not None and schema.target in record:
        warnings.append(f"'{schema.target}' is the model's target: its value is ignored.")
    given = {name: (record.get(name) or "").strip(WHITE_SPACE) for name in known}
    read = set().union(*(attributes_of(source) for source in model.pipeline.sources))
    unused = [a.name for a in inputs if a.name not in read and given[a.name]]
    if unused:
        warnings.append(f"Read by no output of the model's recipe, so ignored: {_names(unused)}.")
    inputs = [a for a in inputs if a.name in read]  # the rest, missing or not, change nothing
    missing = [a.name for a in inputs if not given[a.name]]
    if len(missing) == len(inputs) and inputs:
        warnings.append("No attribute the model reads has a value: the prediction comes from the model's bias alone."
                        if model.trees is None else
                        "No attribute the model reads has a value: the trees score a record without any feature.")
    elif missing:
        warnings.append(f"Missing, as the model treats missing values: {_names(missing)}.")
    for kind, word in ((AttributeType.NUMERIC, "number"), (AttributeType.BINARY, "yes/no value")):
        invalid = [f"{a.name}={shortened(record[a.name])!r}" for a in inputs if a.type is kind and given[a.name]
                   and _unreadable(attribute_value(given[a.name], kind))]
        if invalid:
            warnings.append(f"Not a {word}, so read as missing: {_names(invalid)}.")
    unseen = [f"{source.name}={shortened(given[source.name])!r}" for source, vocab in zip(model.pipeline.sources,
                                                                             model.pipeline.vocabs)
              if isinstance(source, Attr) and source.kind == CATEGORICAL and vocab is not None
              and given.get(source.name) and not pc.any(pc.equal(vocab, given[source.name])).as_py()]
    if unseen:
        warnings.append(f"Categories the model has no feature for (not seen in training, or without "
                        f"weight), so they add nothing: {_names(unseen)}.")
    return warnings


def _unreadable(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")
