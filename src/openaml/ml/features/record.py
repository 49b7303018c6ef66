"""Evaluate recipe variables on one record in plain Python, for real-time Predict.

The batch evaluator (values.py, tokens.py) runs Arrow kernels over columns; on a single record
their fixed costs dominate. This module computes the same values with str methods, for records
whose text the two agree on exactly: white-space splitting agrees on every code point (Python's
str.split and Arrow's utf8_split_whitespace), while lowercasing, punctuation stripping and the
BINARY words are computed here for ASCII strings only. Anything else raises NeedsBatch and the
caller scores that record with the batch evaluator.

Representations by kind: NUMERIC and BINARY -> float (NaN = missing; binary 1.0/0.0);
CATEGORICAL -> str or None (missing); TEXT and token sets -> list of tokens in record order.
"""

from __future__ import annotations

import math
import re
import string
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, TEXT, TOKENS, Attr, Node
from openaml.ml.schema import AttributeType, Schema
from openaml.ml.schema.values import BINARY_FALSE, BINARY_TRUE, NUMBER_PATTERN

RecordValue = Any  # float | str | None | list[str]

_NUMBER = re.compile(NUMBER_PATTERN)
_WORDS = {**{w: 1.0 for w in BINARY_TRUE}, **{w: 0.0 for w in BINARY_FALSE}}
# Every ASCII punctuation mark and symbol is in Unicode's P* or S* categories (PUNCT_EDGES).
_PUNCTUATION = string.punctuation


class NeedsBatch(Exception):
    """The record holds text that only the batch evaluator handles exactly."""


def evaluate_record(node: Node, record: Mapping[str, str | None], schema: Schema,
                    params: dict[str, Any]) -> RecordValue:
    """The variable's value for one record of attribute name -> stripped value (None: missing)."""
    if isinstance(node, Attr):
        return _attribute(record.get(node.name), schema.type_of(node.name))
    fn = node.function
    if fn == "cartesian":
        left = _as_tokens(node.args[0], evaluate_record(node.args[0], record, schema, params))
        right = _as_tokens(node.args[1], evaluate_record(node.args[1], record, schema, params))
        return [f"{a}_{b}" for a in left for b in right]
    inner = evaluate_record(node.args[0], record, schema, params)
    if fn == "normalize":
        mean, std = params[node.canonical]["mean"], params[node.canonical]["std"]
        if math.isnan(inner):
            return inner
        return (inner - mean) / std if std > 0 else 0.0
    if fn == "quantile_bin":
        if math.isnan(inner):
            return None
        return str(bisect_right(params[node.canonical]["boundaries"], inner))  # = bin_values
    if fn == "ngram":
        return _ngrams(inner, node.n or 2)
    if fn == "osb":
        return _osb(inner, node.n or 2)
    transform = _lowercase if fn == "lowercase" else _strip_punctuation
    if node.args[0].kind == CATEGORICAL:
        return None if inner is None else transform(inner) or None
    return [t for t in map(transform, inner) if t]


def _attribute(value: str | None, attr_type: AttributeType | None) -> RecordValue:
    if attr_type is AttributeType.TEXT:
        return value.split() if value is not None else []
    if attr_type is AttributeType.NUMERIC:
        if value is None or not _NUMBER.match(value):
            return math.nan
        number = float(value)
        return number if math.isfinite(number) else math.nan
    if attr_type is AttributeType.BINARY:
        if value is None:
            return math.nan
        return _WORDS.get(_lowercase(value), math.nan)
    return value  # CATEGORICAL (and attributes the schema lacks: read as strings)


def _as_tokens(node: Node, value: RecordValue) -> list[str]:
    if node.kind in (TEXT, TOKENS):
        return value
    if node.kind == BINARY:
        return [] if math.isnan(value) else ["1" if value > 0 else "0"]
    return [] if value is None else [value]


def _lowercase(text: str) -> str:
    if not text.isascii():
        raise NeedsBatch
    return text.lower()


def _strip_punctuation(text: str) -> str:
    if not text.isascii():
        raise NeedsBatch
    return text.strip(_PUNCTUATION)


def _ngrams(tokens: list[str], n: int) -> list[str]:
    out = list(tokens)
    for k in range(2, n + 1):
        out += [" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]
    return out


def _osb(tokens: list[str], n: int) -> list[str]:
    return [tokens[i] + "_" * j + tokens[i + j]
            for j in range(1, n) for i in range(len(tokens) - j)]
