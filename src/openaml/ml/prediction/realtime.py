"""predict_record: score one Predict record (evaluation-and-prediction.md §4).

A RecordScorer is built once per loaded model (by its holder): precomputed lookups from raw
value to feature id for attribute-level sources; other sources are evaluated by
features/record.py (plain Python, and Arrow's kernels for non-ASCII text), which gives the
batch evaluator's features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

import numpy as np

from openaml.ml.errors import InputError
from openaml.ml.features import tokens
from openaml.ml.features.record import attribute_value, record_evaluator
from openaml.ml.features.rows import standardized
from openaml.ml.model import Model, positive
from openaml.ml.model_type import ModelType
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, NUMERIC, Attr, attributes_of
from openaml.ml.schema import WHITE_SPACE, AttributeType

TABLE_LIMIT = 1 << 22  # entries of the (attribute, value code) -> feature table: 16 MB
PYTHON_LOOKUPS = 64  # up to this many categorical attributes, a Python loop beats NumPy's calls
FLOAT_MAX = float(np.finfo(np.float32).max)  # the largest score Predict answers


class RecordScorer:
    """Precomputed lookups of one model for scoring single records."""

    def __init__(self, model: Model) -> None:
        self.model = model
        p = model.pipeline
        self.categorical: list[tuple[str, dict[str, int]]] = []
        self.numeric: list[tuple[str, int, float, float]] = []
        self.binary: list[tuple[str, int]] = []
        generic: list[int] = []
        for i, source in enumerate(p.sources):
            offset = int(p.offsets[i])
            if isinstance(source, Attr) and source.kind == CATEGORICAL:
                vocab = p.vocabs[i].to_pylist()  # type: ignore[union-attr]
                self.categorical.append((source.name, {v: offset + k for k, v in enumerate(vocab)}))
            elif isinstance(source, Attr) and source.kind == NUMERIC:
                mean, std = p.scales[i] or (0.0, 1.0)
                self.numeric.append((source.name, offset, mean, std))
            elif isinstance(source, Attr) and source.kind == BINARY:
                self.binary.append((source.name, offset))
            else:
                generic.append(i)
        self.categorical_names = [name for name, _ in self.categorical]
        names = self.categorical_names
        # a record with every attribute (the usual one): its values in one C-level call
        self.pick: Callable[[dict[str, str]], tuple[str, ...]] = (
            itemgetter(*names) if len(names) > 1 else lambda record: tuple(record[n] for n in names))
        self.lookups = [lookup for _, lookup in self.categorical]
        self.absent = [-1] * len(self.lookups)  # dict.get default: not in the vocabulary
        # Values shared by many attributes (pixels 0-255, yes/no...): one code per distinct value
        # (0: missing or unknown) and a table (attribute, code) -> feature id (-1: none) make a
        # record's lookups two C-level maps over one dict instead of one dict per attribute.
        values = sorted(set().union(*self.lookups))
        self.codes: dict[str, int] | None = None
        if len(self.lookups) * (len(values) + 1) <= TABLE_LIMIT:
            self.codes = {v: k + 1 for k, v in enumerate(values)}
            self.table = np.full((len(self.lookups), len(values) + 1), -1, np.int32)
            for a, lookup in enumerate(self.lookups):
                self.table[a, [self.codes[v] for v in lookup]] = list(lookup.values())
            self.attribute_rows = np.arange(len(self.lookups))
        # the other sources, evaluated by record.py, with value -> feature id dicts
        self.generic_attrs = sorted(set().union(*(attributes_of(p.sources[i]) for i in generic)))
        # tokens come from TEXT attributes alone: without them a record's work is a few lookups
        # whatever its values, with them it grows with the values (a cartesian's pairs)
        self.reads_text = any(p.schema.type_of(name) is AttributeType.TEXT for name in self.generic_attrs)
        self.generic_sources = [
            (p.sources[i], record_evaluator(p.sources[i], p.schema, p.params), int(p.offsets[i]), p.scales[i],
             None if p.vocabs[i] is None else
             {v: int(p.offsets[i]) + k for k, v in enumerate(p.vocabs[i].to_pylist())})  # type: ignore[union-attr]
            for i in generic]

    def features(self, record: dict[str, str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Feature ids and values of a record; values None when all are 1."""
        get = record.get
        try:
            values_of: Sequence[str | None] = self.pick(record)
        except KeyError:  # a missing value (None) is in no vocabulary
            values_of = list(map(get, self.categorical_names))
        categorical = self._categorical_ids(values_of)
        ids: list[int] = []
        vals: list[float] = []
        for name, fid, mean, std in self.numeric:
            value = attribute_value(_stripped(get(name)), AttributeType.NUMERIC)
            if not math.isnan(value):
                ids.append(fid)
                vals.append(standardized(value, mean, std))
        for name, fid in self.binary:
            if attribute_value(_stripped(get(name)), AttributeType.BINARY) == 1.0:
                ids.append(fid)
                vals.append(1.0)
        if self.generic_sources:
            generic_ids, generic_values = self.generic_features({n: _stripped(get(n)) for n in self.generic_attrs})
            ids += generic_ids
            vals += generic_values
        if not ids:
            return np.asarray(categorical, np.intp), None
        if isinstance(categorical, list):
            return np.array(categorical + ids, np.intp), np.array([1.0] * len(categorical) + vals)
        return (np.concatenate((categorical, ids)).astype(np.intp, copy=False),
                np.concatenate((np.ones(len(categorical)), vals)))

    def _categorical_ids(self, values_of: Sequence[str | None]) -> np.ndarray | list[int]:
        """The feature ids of the categorical sources' values (those in their vocabularies),
        each stripped of white space around it as a CSV field is (data.md §1)."""
        if len(self.lookups) <= PYTHON_LOOKUPS:
            ids = []
            for lookup, value in zip(self.lookups, values_of):
                if value is not None and ((f := lookup.get(value)) is not None
                                          or (f := lookup.get(value.strip(WHITE_SPACE))) is not None):
                    ids.append(f)
            return ids
        # C-level maps (a Python loop costs ~0.1 us per attribute) of the values taken whole;
        # those found in no vocabulary are looked up again stripped
        found: np.ndarray
        if self.codes is not None:
            codes_get = self.codes.get
            code_of = cast(Callable[[str | None, int], int], codes_get)
            codes = np.fromiter(map(code_of, values_of, repeat(0)), np.intp, count=len(self.lookups))
            for k in np.flatnonzero(codes == 0).tolist():
                if (value := values_of[k]) is not None:  # (a record without zeros lacks most)
                    codes[k] = codes_get(value.strip(WHITE_SPACE), 0)
            found = self.table[self.attribute_rows, codes]
        else:
            feature_of = cast(Callable[[dict[str, int], str | None, int], int], dict.get)
            found = np.fromiter(map(feature_of, self.lookups, values_of, self.absent), np.int64,
                                count=len(self.lookups))
            for k in np.flatnonzero(found < 0).tolist():
                if (value := values_of[k]) is not None:
                    found[k] = self.lookups[k].get(value.strip(WHITE_SPACE), -1)
        return found[found >= 0]

    def generic_features(self, record: dict[str, str | None]) -> tuple[list[int], list[float]]:
        """Feature ids and values of the sources without precomputed lookups, for a record of
        their attributes (stripped values, None: missing); RecordTooLarge when its variables
        would take too much work."""
        ids: list[int] = []
        values: list[float] = []
        made = 0  # tokens and token pairs: each cartesian() is bounded alone, and these all together
        for source, evaluated, offset, scale, vocab in self.generic_sources:
            value = evaluated(record)
            if isinstance(value, list):
                made += len(value)
                if made > tokens.MAX_RECORD_TOKENS:
                    raise tokens.RecordTooLarge(
                        f"The record's variables would make more than {tokens.MAX_RECORD_TOKENS:,} tokens and "
                        "token pairs in all: its text attributes hold too many tokens for this model's recipe")
            if vocab is not None:  # a category or tokens: indicators of those in the vocabulary
                found = sorted({vocab[t] for t in value if t in vocab} if isinstance(value, list)
                               else [vocab[value]] if value in vocab else [])
                ids += found
                values += [1.0] * len(found)
            elif source.kind == NUMERIC and not math.isnan(value):  # as rows.Scalar
                mean, std = scale or (0.0, 1.0)
                ids.append(offset)
                values.append(standardized(value, mean, std))
            elif source.kind == BINARY and value > 0:
                ids.append(offset)
                values.append(1.0)
        return ids, values

    def sorted_features(self, record: dict[str, str]) -> tuple[np.ndarray, np.ndarray | None]:
        """features() in feature order, as the batch pipeline's rows hold them: summed in that
        order, a record's score is the very number batch scoring gives it."""
        ids, values = self.features(record)
        if len(ids) > 1 and bool((ids[1:] < ids[:-1]).any()):
            order = np.argsort(ids, kind="stable")
            return ids[order], None if values is None else values[order]
        return ids, values

    def linear(self, record: dict[str, str]) -> np.ndarray:
        """The record's linear scores z (1, outputs), before the link function."""
        ids, values = self.sorted_features(record)
        return self.model.raw_scores((np.array([0, len(ids)]), ids, values))

    def scores(self, record: dict[str, str]) -> np.ndarray:
        """Model.link of the record's linear scores: class probabilities (MULTICLASS), or one
        value, P(1) (BINARY) or the prediction (REGRESSION)."""
        return np.atleast_1d(self.model.link(self.linear(record))[0])


class UnscorableRecord(InputError):
    """A record whose score is not a number (values near the double's range meet in it)."""


def _stripped(value: str | None) -> str | None:
    """A record's value as a CSV field gives it: without the white space around it, and None
    (missing) when that leaves nothing."""
    return value.strip(WHITE_SPACE) or None if value is not None else None


def predict_record(scorer: RecordScorer, record: dict[str, str],
                   score_threshold: float = 0.5) -> dict[str, Any]:
    """Predict's "Prediction" member for one record of attribute name -> string value."""
    scores = scorer.scores(record)
    if np.isnan(scores).any():
        raise UnscorableRecord("The numbers of the record lie so far beyond the training data's that its "
                               "score is not a number")
    model = scorer.model
    kind = model.model_type
    details = {"Algorithm": "SGD", "PredictiveModelType": kind}
    if kind == ModelType.REGRESSION:
        return {"details": details, "predictedValue": _answered(scores[0])}
    if kind == ModelType.BINARY:
        label = "1" if positive(scores[:1], score_threshold)[0] else "0"
        return {"details": details, "predictedLabel": label, "predictedScores": {label: _answered(scores[0])}}
    best = int(np.argmax(scores))
    return {"details": details, "predictedLabel": model.classes[best],
            "predictedScores": {c: _answered(s) for c, s in zip(model.classes, scores)}}


def _answered(score: float) -> float:
    """A score as Predict gives it: rounded to a 32-bit float (models.md §2.1), the service
    model's type of it; beyond a float's range (a regression whose inputs lie far beyond the
    training data's), the largest float of its sign: JSON has no infinity, and SDKs that read
    the member as a 32-bit float refuse a larger number (AWS's JavaScript SDK did)."""
    with np.errstate(over="ignore"):
        rounded = float(np.float32(score))
    return rounded if math.isfinite(rounded) else math.copysign(FLOAT_MAX, score)
