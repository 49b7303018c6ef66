"""Data schemas: the JSON document that names and types every CSV column, and value coercion."""

from openaml.ml.schema.model import Attribute, AttributeType, Schema, SchemaError, parse_schema
from openaml.ml.schema.values import WHITE_SPACE, Coerced, coerce_column, coerce_floats

__all__ = [
    "Attribute",
    "AttributeType",
    "Coerced",
    "Schema",
    "SchemaError",
    "WHITE_SPACE",
    "coerce_column",
    "coerce_floats",
    "parse_schema",
]
