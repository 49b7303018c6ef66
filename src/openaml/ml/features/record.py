"""Evaluate recipe variables on one record in plain Python, for real-time Predict.

The batch evaluator (values.py) runs Arrow kernels over columns; on a single record their fixed
costs dominate. This module reads a record's attributes as Columns reads a batch's, and
evaluates each function by its record form (transforms.py), which agrees with its batch form
exactly: white-space splitting on every code point (Python's str.split and Arrow's
utf8_split_whitespace), lowercasing and punctuation stripping by str methods on ASCII text and
by the batch form's Arrow kernels on any other.

Representations by kind: NUMERIC and BINARY -> float (NaN = missing; binary 1.0/0.0);
CATEGORICAL -> str or None (missing); TEXT and token sets -> list of tokens in record order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from openaml.ml.features.transforms import TRANSFORMS, RecordValue, text_case
from openaml.ml.recipes.nodes import Attr, Node
from openaml.ml.schema import AttributeType, Schema
from openaml.ml.schema.values import BINARY_FALSE, BINARY_TRUE, NUMBER_PATTERN

_NUMBER = re.compile(NUMBER_PATTERN)
_WORDS = {**{w: 1.0 for w in BINARY_TRUE}, **{w: 0.0 for w in BINARY_FALSE}}


RecordEvaluator = Callable[[Mapping[str, str | None]], RecordValue]


def record_evaluator(node: Node, schema: Schema, params: dict[str, Any]) -> RecordEvaluator:
    """The function giving the variable's value for one record of attribute name -> stripped
    value (None: missing), by transforms.py's record forms; made once per model, so that a
    record's evaluation looks up neither types nor functions."""
    if isinstance(node, Attr):
        name, kind = node.name, schema.type_of(node.name)
        return lambda record: attribute_value(record.get(name), kind)
    transform = TRANSFORMS[node.function].record
    args = [record_evaluator(arg, schema, params) for arg in node.args]
    if len(args) == 1:
        inner = args[0]
        return lambda record: transform(node, [inner(record)], params)
    return lambda record: transform(node, [arg(record) for arg in args], params)


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
        return _WORDS.get(text_case("lowercase", [value])[0], math.nan)
    return value  # CATEGORICAL (and attributes the schema lacks: read as strings)
