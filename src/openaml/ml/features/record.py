"""Evaluate recipe variables on one record in plain Python, for real-time Predict.

The batch evaluator (values.py, tokens.py) runs Arrow kernels over columns; on a single record
their fixed costs dominate. This module computes the same values with str methods where they
agree with those kernels exactly: white-space splitting on every code point (Python's
str.split and Arrow's utf8_split_whitespace), lowercasing and punctuation stripping on ASCII
text; non-ASCII text is lowercased or stripped by the batch evaluator's own Arrow kernels.
A cartesian product over MAX_RECORD_PAIRS pairs is refused before it is built (RecordTooLarge).

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

import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.errors import InputError
from openaml.ml.features.tokens import PUNCT_EDGES
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, TEXT, TOKENS, Attr, Node
from openaml.ml.schema import AttributeType, Schema
from openaml.ml.schema.values import BINARY_FALSE, BINARY_TRUE, NUMBER_PATTERN

RecordValue = Any  # float | str | None | list[str]

_NUMBER = re.compile(NUMBER_PATTERN)
_WORDS = {**{w: 1.0 for w in BINARY_TRUE}, **{w: 0.0 for w in BINARY_FALSE}}
# Every ASCII punctuation mark and symbol is in Unicode's P* or S* categories (PUNCT_EDGES).
_PUNCTUATION = string.punctuation


MAX_RECORD_PAIRS = 100_000  # of one cartesian() for one record: about 50 ms of work


class RecordTooLarge(InputError):
    """The record's variables would take more than a Predict may spend on them."""


def evaluate_record(node: Node, record: Mapping[str, str | None], schema: Schema,
                    params: dict[str, Any]) -> RecordValue:
    """The variable's value for one record of attribute name -> stripped value (None: missing)."""
    if isinstance(node, Attr):
        return attribute_value(record.get(node.name), schema.type_of(node.name))
    fn = node.function
    if fn == "cartesian":
        left = _as_tokens(node.args[0], evaluate_record(node.args[0], record, schema, params))
        right = _as_tokens(node.args[1], evaluate_record(node.args[1], record, schema, params))
        if len(left) * len(right) > MAX_RECORD_PAIRS:
            raise RecordTooLarge(
                f"{node.canonical} would make {len(left) * len(right):,} token pairs for this "
                f"record (at most {MAX_RECORD_PAIRS:,}): its text has too many tokens")
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
    if node.args[0].kind != CATEGORICAL:
        return _transformed(fn, inner)
    done = _transformed(fn, [inner]) if inner is not None else []
    return done[0] if done else None


def attribute_value(value: str | None, attr_type: AttributeType | None) -> RecordValue:
    """A raw attribute's value (stripped, None: missing) read as `attr_type`, as Columns reads it."""
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
        return _WORDS.get(_transformed("lowercase", [value])[0], math.nan)
    return value  # CATEGORICAL (and attributes the schema lacks: read as strings)


def _as_tokens(node: Node, value: RecordValue) -> list[str]:
    if node.kind in (TEXT, TOKENS):
        tokens: list[str] = value
        return tokens
    if node.kind == BINARY:
        return [] if math.isnan(value) else ["1" if value > 0 else "0"]
    return [] if value is None else [value]


def _transformed(fn: str, texts: list[str]) -> list[str]:
    """lowercase or no_punct of each text, without the empty results: str methods for ASCII
    texts, the batch evaluator's Arrow kernels (exactly its results) for any other."""
    if all(text.isascii() for text in texts):
        if fn == "lowercase":
            return [text.lower() for text in texts]
        return [t for t in (text.strip(_PUNCTUATION) for text in texts) if t]
    values = pa.array(texts, pa.string())
    done = pc.utf8_lower(values) if fn == "lowercase" else pc.replace_substring_regex(values, PUNCT_EDGES, "")
    return [t for t in done.to_pylist() if t]


def _ngrams(tokens: list[str], n: int) -> list[str]:
    out = list(tokens)
    for k in range(2, n + 1):
        out += [" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]
    return out


def _osb(tokens: list[str], n: int) -> list[str]:
    return [tokens[i] + "_" * j + tokens[i + j]
            for j in range(1, n) for i in range(len(tokens) - j)]
