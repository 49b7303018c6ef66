"""Why a model scored a record as it did: each feature's contribution to the score.

A linear model scores z = x · W + b (W: n_features × outputs), so a feature's contribution to
output k is x_f · W[f, k], and the contributions plus the bias b_k sum to z_k. Boosted trees
(openaml.algorithm=gbdt) give SHAP values per column (exact for trees), which sum with the
trees' expected score to z_k. Scores are before the link function (a log-odds for BINARY, a
class's logit for MULTICLASS), but for REGRESSION, whose link is affine: there the score is the
predicted value and the parts are in the target's units (Model.contributions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openaml.ml.model import Model
from openaml.ml.model_type import ModelType
from openaml.ml.prediction.realtime import RecordScorer


def output_names(model: Model) -> list[str]:
    """One name per output column: the classes for MULTICLASS, else the single score."""
    if model.model_type == ModelType.MULTICLASS:
        return list(model.classes)
    return ["score (class 1)" if model.model_type == ModelType.BINARY else "predicted value"]


def output_index(model: Model, prediction: dict[str, Any]) -> int:
    """The output column that explains a prediction: the predicted class for MULTICLASS."""
    if model.model_type != ModelType.MULTICLASS:
        return 0
    label = str(prediction.get("predictedLabel", ""))
    return model.classes.index(label) if label in model.classes else 0


def contributions(scorer: RecordScorer, record: dict[str, str], output: int,
                  limit: int = 15) -> tuple[list[tuple[str, float]], float, float]:
    """The record's `limit` largest contributions to output `output` (name, value; largest
    |value| first), the baseline (bias, or the trees' expected score) and the sum of the
    contributions left out: baseline + listed + left out = the score (Model.contributions)."""
    ids, values = scorer.sorted_features(record)
    return _listed(scorer.model, ids, values, output, limit)


def _listed(model: Model, ids: np.ndarray, values: np.ndarray | None, output: int,
            limit: int) -> tuple[list[tuple[str, float]], float, float]:
    """contributions() of the features `ids` with `values` (None: every value 1)."""
    features, parts, baseline = model.contributions(ids, np.ones(len(ids)) if values is None else values, output)
    names = model.feature_names()
    found = np.flatnonzero(parts)
    order = found[np.argsort(-np.abs(parts[found]), kind="stable")]
    listed = [(names[f] if f < len(names) else f"#{f}", float(parts[i])) for f, i in zip(features[order[:limit]],
                                                                                           order[:limit])]
    return listed, float(baseline), float(parts[order[limit:]].sum())


def explanation(scorer: RecordScorer, record: dict[str, str], prediction: dict[str, Any],
                limit: int) -> dict[str, Any]:
    """What Predict adds when asked (X-OpenAML-Explain): the output explained, its score
    (Model.contributions: before the link but for REGRESSION), the baseline, the `limit`
    largest contributions and the rest's sum."""
    model = scorer.model
    output = output_index(model, prediction)
    ids, values = scorer.sorted_features(record)
    listed, baseline, rest = _listed(model, ids, values, output, limit)
    raw = model.raw_scores((np.array([0, len(ids)]), ids, values))
    score = model.link(raw)[0] if model.model_type == ModelType.REGRESSION else raw[0, output]
    return {"output": output_names(model)[output], "algorithm": model.algorithm, "score": float(score),
            "baseline": baseline, "contributions": [{"feature": name, "value": value} for name, value in listed],
            "rest": rest}
