"""Training parameters (models.md §3) and target compatibility (models.md §1)."""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from openaml.ml.documents import load_json
from openaml.ml.errors import InputError
from openaml.ml.model_type import ModelType
from openaml.ml.schema import AttributeType, Schema
from openaml.ml.schema.values import BINARY_FALSE, BINARY_TRUE, NUMBER_PATTERN
from openaml.ml.trees import missing_trees_message, trees_installed

MODEL_TYPES = tuple(ModelType)
# The defaults of the parameters a caller may leave out, as GetMLModel shows them (models.md §3)
DEFAULTS = {
    "sgd.maxMLModelSizeInBytes": "33554432",
    "sgd.maxPasses": "10",
    "sgd.l1RegularizationAmount": "0.0",
    "sgd.l2RegularizationAmount": "1E-6",  # "0.0" where sgd.l1RegularizationAmount is given
}
DEFAULT_MAX_SIZE = int(DEFAULTS["sgd.maxMLModelSizeInBytes"])
L2_LIMIT = 1e100  # the L2 amount trainings use at most (parse_parameters)
_KEYS = ("sgd.maxMLModelSizeInBytes", "sgd.maxPasses", "sgd.shuffleType",
         "sgd.l1RegularizationAmount", "sgd.l2RegularizationAmount")
# Beyond Amazon ML: gradient-boosted trees instead of the linear model (LightGBM, the `trees`
# extra), asked for with openaml.algorithm=gbdt; the sgd.* parameters other than the size cap
# are accepted and do not apply to them (a client's usual parameters need no change)
ALGORITHM_KEY, ALGORITHMS = "openaml.algorithm", ("sgd", "gbdt")
# the algorithm as TrainingParameters show it (models.md §3): taken back when it names the one
# the other keys select, so that a model's shown parameters create a model like it
SHOWN_ALGORITHM_KEY = "algorithm"
# Beyond Amazon ML: the linear model's optimizer, AdaGrad minibatch SGD by default (streams
# the data, any size) or SAGA (training/saga.py: keeps the features in memory, no L1), asked
# for with openaml.optimizer=saga
OPTIMIZER_KEY, OPTIMIZERS = "openaml.optimizer", ("adagrad", "saga")
# Beyond Amazon ML: class weights for BINARY and MULTICLASS models of either algorithm,
# "balanced" (each class weighs records / (classes x its records)) or a JSON object of weights
CLASS_WEIGHTS_KEY = "openaml.classWeights"
MIN_CLASS_WEIGHT, MAX_CLASS_WEIGHT = 1e-6, 1e6
TREE_DEFAULTS = {"gbdt.rounds": "100", "gbdt.learningRate": "0.1", "gbdt.leaves": "31",
                 "gbdt.minRecordsInLeaf": "20", "gbdt.l2Regularization": "0", "gbdt.maxBins": "auto",
                 "gbdt.earlyStoppingRounds": "0",
                 "gbdt.validationPercent": "10"}


class ParameterError(InputError):
    """A training parameter that is unknown, unparsable or out of range."""


@dataclass(frozen=True)
class TreeParams:
    """Gradient-boosted trees (openaml.algorithm=gbdt): boosting rounds, learning rate, leaves
    per tree, the fewest training records in a leaf, the L2 penalty on leaf values
    (LightGBM's lambda_l2) and the most bins a column's values fall in (None: "auto", which
    training.trees.max_bins_for chooses from the data); early stopping (off at 0): boosting
    ends once that many rounds have not bettered the loss on the held-out percent of the
    training records, and the model keeps the best round's trees."""

    rounds: int = int(TREE_DEFAULTS["gbdt.rounds"])
    learning_rate: float = float(TREE_DEFAULTS["gbdt.learningRate"])
    leaves: int = int(TREE_DEFAULTS["gbdt.leaves"])
    min_leaf_records: int = int(TREE_DEFAULTS["gbdt.minRecordsInLeaf"])
    l2: float = float(TREE_DEFAULTS["gbdt.l2Regularization"])
    max_bins: int | None = None
    early_stopping_rounds: int = int(TREE_DEFAULTS["gbdt.earlyStoppingRounds"])
    validation_percent: float = float(TREE_DEFAULTS["gbdt.validationPercent"])


@dataclass(frozen=True)
class SGDParams:
    """A training's parameters: the linear model's (sgd.*), and `trees` when boosted trees are
    trained instead (then only max_size and seed apply of the others)."""

    max_passes: int = int(DEFAULTS["sgd.maxPasses"])
    shuffle: bool = False
    l1: float = float(DEFAULTS["sgd.l1RegularizationAmount"])
    l2: float = float(DEFAULTS["sgd.l2RegularizationAmount"])
    max_size: int = DEFAULT_MAX_SIZE
    seed: int = 0
    trees: TreeParams | None = None
    class_weights: str | None = None  # "balanced", or the JSON object of each class's weight
    optimizer: str = "adagrad"  # of the linear model: OPTIMIZERS

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SGDParams:
        """The parameters of dataclasses.asdict (a stored training spec)."""
        trees = doc.get("trees")
        return replace(cls(**{k: v for k, v in doc.items() if k != "trees"}),
                       trees=None if trees is None else TreeParams(**trees))


def parse_parameters(parameters: dict[str, str] | None, model_type: str, seed: int = 0) -> SGDParams:
    """Validate the CreateMLModel `Parameters` map; `seed` comes from the MLModelId."""
    parameters = parameters or {}
    for key, value in parameters.items():
        if (key not in (*_KEYS, ALGORITHM_KEY, SHOWN_ALGORITHM_KEY, CLASS_WEIGHTS_KEY, OPTIMIZER_KEY)
                and key not in TREE_DEFAULTS):
            raise ParameterError(f"Unknown training parameter '{key}'")
        if not isinstance(value, str):
            raise ParameterError(f"Training parameter '{key}' must be a string")
    algorithm = parameters.get(ALGORITHM_KEY, "sgd").strip()
    if algorithm not in ALGORITHMS:
        raise ParameterError(f"{ALGORITHM_KEY} must be one of {', '.join(ALGORITHMS)}, not '{algorithm}'")
    shown = parameters.get(SHOWN_ALGORITHM_KEY, algorithm).strip()
    if shown != algorithm:
        raise ParameterError(f"{SHOWN_ALGORITHM_KEY} is '{shown}' where the parameters select '{algorithm}' "
                             f"(choose gradient-boosted trees with {ALGORITHM_KEY}=gbdt)")
    stray = sorted(key for key in parameters if key in TREE_DEFAULTS and algorithm != "gbdt")
    if stray:
        raise ParameterError(f"{stray[0]} applies to {ALGORITHM_KEY}=gbdt alone")
    if algorithm == "gbdt" and not trees_installed():
        raise ParameterError(missing_trees_message())
    max_size = _integer(parameters, "sgd.maxMLModelSizeInBytes", DEFAULT_MAX_SIZE, 100_000, 2_147_483_648)
    max_passes = _integer(parameters, "sgd.maxPasses", SGDParams.max_passes, 1, 10_000)
    shuffle = parameters.get("sgd.shuffleType", "none")
    if shuffle not in ("auto", "none"):
        raise ParameterError(f"sgd.shuffleType must be 'auto' or 'none', not '{shuffle}'")
    l1 = _amount(parameters, "sgd.l1RegularizationAmount", SGDParams.l1)
    # an amount past L2_LIMIT holds every weight at about 0 already, and would overflow AdaGrad's
    # squared gradients (which then froze the weights: 1e155 regularized less than 1)
    l2 = min(_amount(parameters, "sgd.l2RegularizationAmount", 0.0 if l1 > 0 else SGDParams.l2), L2_LIMIT)
    if l1 > 0 and l2 > 0 and algorithm == "sgd":
        raise ParameterError("sgd.l1RegularizationAmount and sgd.l2RegularizationAmount "
                             "cannot both be used; set one of them to 0")
    optimizer = _optimizer(parameters, algorithm, l1)
    return SGDParams(max_passes=max_passes, shuffle=shuffle == "auto", l1=l1, l2=l2,
                     max_size=max_size, seed=seed, trees=_trees(parameters) if algorithm == "gbdt" else None,
                     class_weights=_class_weights(parameters, model_type), optimizer=optimizer)


def _optimizer(parameters: dict[str, str], algorithm: str, l1: float) -> str:
    """openaml.optimizer: one of OPTIMIZERS, for the linear model; SAGA takes no L1."""
    optimizer = parameters.get(OPTIMIZER_KEY, OPTIMIZERS[0]).strip()
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"{OPTIMIZER_KEY} must be one of {', '.join(OPTIMIZERS)}, not '{optimizer}'")
    if OPTIMIZER_KEY in parameters and algorithm != "sgd":
        raise ParameterError(f"{OPTIMIZER_KEY} applies to {ALGORITHM_KEY}=sgd alone")
    if optimizer == "saga" and l1 > 0:
        raise ParameterError(f"{OPTIMIZER_KEY}=saga takes no sgd.l1RegularizationAmount: "
                             "use the default optimizer for L1")
    return optimizer


def _class_weights(parameters: dict[str, str], model_type: str) -> str | None:
    """openaml.classWeights as "balanced", or its JSON object made canonical (a BINARY model's
    classes are 1 and 0: yes/no, true/false and the like name them too); the classes it names
    are checked against the training data's (class_weight_of)."""
    given = parameters.get(CLASS_WEIGHTS_KEY)
    if given is None:
        return None
    if model_type == ModelType.REGRESSION:
        raise ParameterError(f"{CLASS_WEIGHTS_KEY} applies to BINARY and MULTICLASS models")
    if given.strip().lower() == "balanced":
        return "balanced"
    # JSON's own refusals (a key twice, a number too long...) say what is wrong; a word is no JSON
    weights = load_json(given, CLASS_WEIGHTS_KEY, ParameterError) if given.lstrip()[:1] in ("{", "[") else None
    if not isinstance(weights, dict) or not weights or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and MIN_CLASS_WEIGHT <= w <= MAX_CLASS_WEIGHT
            for w in weights.values()):
        shown = given if len(given) <= 80 else given[:80] + "..."
        raise ParameterError(f"{CLASS_WEIGHTS_KEY} must be 'balanced' or a JSON object of numbers from "
                             f"{MIN_CLASS_WEIGHT:g} to {MAX_CLASS_WEIGHT:g} by class, e.g. {{\"1\": 5, \"0\": 1}}, "
                             f"not '{shown}'")
    found: dict[str, float] = {}
    for name, weight in weights.items():
        label = _binary_class(str(name)) if model_type == ModelType.BINARY else str(name)
        if label in found and found[label] != float(weight):
            raise ParameterError(f"{CLASS_WEIGHTS_KEY} gives class {label} two weights")
        found[label] = float(weight)
    return json.dumps(found, sort_keys=True)


def _binary_class(name: str) -> str:
    """The BINARY class ("1" or "0") that a class weight's key names (data.md §3.2's values)."""
    word = name.strip().lower()
    if word in BINARY_TRUE:
        return "1"
    if word in BINARY_FALSE:
        return "0"
    raise ParameterError(f"{CLASS_WEIGHTS_KEY} names '{name}', which is no class of a BINARY model "
                         f"(1 or 0, or a word for them such as yes and no)")


def class_weight_of(class_weights: str | None, counts: dict[str, int], classes: list[str]) -> np.ndarray | None:
    """Each class's weight (by position in `classes`), from openaml.classWeights and the
    training records' class counts: "balanced" gives records / (classes x count); a JSON
    object gives its weights, 1 for a class it leaves out. None without class weights."""
    if class_weights is None:
        return None
    if class_weights == "balanced":
        total = sum(counts.values())
        return np.array([total / (len(classes) * counts[c]) for c in classes])  # every class has records
    given: dict[str, float] = json.loads(class_weights)
    unknown = sorted(set(given) - set(classes))
    if unknown:
        raise ParameterError(f"{CLASS_WEIGHTS_KEY} names {', '.join(repr(c) for c in unknown[:5])}, which no "
                             f"training record has as its class (the classes: {json.dumps(classes[:10])})")
    return np.array([given.get(c, 1.0) for c in classes])


def _trees(parameters: dict[str, str]) -> TreeParams:
    rate = _bounded(parameters, "gbdt.learningRate", TreeParams.learning_rate, 0, 1, "greater than 0 and at most 1",
                    above_low=True)
    return TreeParams(rounds=_integer(parameters, "gbdt.rounds", TreeParams.rounds, 1, 10_000),
                      learning_rate=rate,
                      leaves=_integer(parameters, "gbdt.leaves", TreeParams.leaves, 2, 131_072),
                      min_leaf_records=_integer(parameters, "gbdt.minRecordsInLeaf", TreeParams.min_leaf_records,
                                                1, 1_000_000),
                      l2=_l2(parameters),
                      max_bins=_bins(parameters),
                      early_stopping_rounds=_integer(parameters, "gbdt.earlyStoppingRounds",
                                                     TreeParams.early_stopping_rounds, 0, 10_000),
                      validation_percent=_validation_percent(parameters))


def _bins(parameters: dict[str, str]) -> int | None:
    """gbdt.maxBins: None for "auto", else a number of bins."""
    if parameters.get("gbdt.maxBins", "auto").strip() == "auto":
        return None
    try:
        return _integer(parameters, "gbdt.maxBins", 0, 4, 1024)
    except ParameterError:
        raise ParameterError(f"gbdt.maxBins must be 'auto' or an integer between 4 and 1024, "
                             f"not '{parameters['gbdt.maxBins']}'") from None


def _l2(parameters: dict[str, str]) -> float:
    return _bounded(parameters, "gbdt.l2Regularization", TreeParams.l2, 0, 1e6, "between 0 and 1000000")


def _validation_percent(parameters: dict[str, str]) -> float:
    percent = _bounded(parameters, "gbdt.validationPercent", TreeParams.validation_percent, 1, 50, "between 1 and 50")
    if "gbdt.validationPercent" in parameters and not _integer(parameters, "gbdt.earlyStoppingRounds", 0, 0, 10_000):
        raise ParameterError("gbdt.validationPercent applies only when gbdt.earlyStoppingRounds is above 0")
    return percent


def shown_parameters(given: dict[str, str], params: SGDParams | None = None) -> dict[str, str]:
    """TrainingParameters as GetMLModel returns them: the caller's (valid) strings over the
    defaults; `params`, the parsed ones as stored, where a default has changed since (a model
    of 255 bins from before gbdt.maxBins=auto)."""
    if given.get(ALGORITHM_KEY, "").strip() == "gbdt":
        stored = params.trees if params is not None else None
        bins = {"gbdt.maxBins": str(stored.max_bins)} if stored is not None and stored.max_bins is not None else {}
        shown = {SHOWN_ALGORITHM_KEY: "gbdt", "sgd.maxMLModelSizeInBytes": DEFAULTS["sgd.maxMLModelSizeInBytes"],
                 **TREE_DEFAULTS, **bins, **given}
        with contextlib.suppress(ParameterError):  # (a valid value: as it was given)
            if not _integer(given, "gbdt.earlyStoppingRounds", 0, 0, 10_000):  # no early stopping, no
                shown.pop("gbdt.validationPercent", None)  # validation part: refused without it
        return shown
    defaults = dict(DEFAULTS)
    # the stored amount where there is one: a model migrated from before today's checks may
    # show a form they refuse ("１e-4")
    if (params.l1 if params is not None else _amount(given, "sgd.l1RegularizationAmount", 0.0)) > 0:
        defaults["sgd.l2RegularizationAmount"] = "0.0"
    return {SHOWN_ALGORITHM_KEY: "sgd", **defaults, **given}


# the usual written forms of numbers (models.md §3): ASCII digits, no "_" (Python's int() and
# float() also read "1_0" and other scripts' digits, "３", which no client writes)
INTEGER = re.compile(r"[+-]?[0-9]+")
NUMBER = re.compile(NUMBER_PATTERN)


def _integer(parameters: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    if key not in parameters:
        return default
    text = parameters[key].strip()
    if not INTEGER.fullmatch(text):
        raise ParameterError(f"{key} must be an integer, not '{parameters[key]}'")
    digits = text.lstrip("+-").lstrip("0") or "0"
    # past its bounds' digits a number is out of range (int() refuses over 4,300 digits)
    value = (-1 if text[0] == "-" else 1) * int(digits) if len(digits) <= len(str(max(-low, high))) else high + 1
    if not low <= value <= high:
        raise ParameterError(f"{key} must be between {low} and {high}")
    return value


def _amount(parameters: dict[str, str], key: str, default: float) -> float:
    return _bounded(parameters, key, default, 0, sys.float_info.max, "from 0 to the largest double")


def _bounded(parameters: dict[str, str], key: str, default: float, low: float, high: float, within: str,
             above_low: bool = False) -> float:
    """The number given for `key` (or `default`), refused, with the words of the range it must
    lie `within`, unless low <= it <= high (low < it with `above_low`)."""
    if key not in parameters:
        return default
    text = parameters[key].strip()
    if not NUMBER.fullmatch(text):  # NaN and infinities too
        raise ParameterError(f"{key} must be a number {within}, not '{parameters[key]}'")
    value = float(text)
    if not (math.isfinite(value) and (value > low if above_low else value >= low) and value <= high):
        raise ParameterError(f"{key} must be a number {within}")
    return value


def check_target(model_type: ModelType | str, schema: Schema) -> None:
    """Raise InputError unless the schema's target suits the model type (models.md §1)."""
    if model_type not in MODEL_TYPES:
        raise InputError(f"Unknown MLModelType '{model_type}'")
    if schema.target is None:
        raise InputError("The training datasource's schema has no targetAttributeName")
    kind = schema.type_of(schema.target)
    allowed = {ModelType.BINARY: {AttributeType.BINARY}, ModelType.REGRESSION: {AttributeType.NUMERIC},
               ModelType.MULTICLASS: {AttributeType.CATEGORICAL, AttributeType.NUMERIC, AttributeType.BINARY}}
    if kind not in allowed[ModelType(model_type)]:
        raise InputError(f"A {model_type} model cannot use the {kind} target attribute "
                         f"'{schema.target}'")
