"""The data schema document (spec data.md §3): parsing, validation and the normalized JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from openaml.ml.documents import load_object
from openaml.ml.errors import InputError

MAX_ATTRIBUTES = 1000
MAX_NAME_LENGTH = 64

# Older spelling of the same document, accepted as aliases (data.md §3.1).
_KEY_ALIASES = {
    "recordAnnotationFieldName": "rowId",
    "recordWeightFieldName": "rowWeight",
    "targetFieldName": "targetAttributeName",
    "variables": "attributes",
    "excludedVariableNames": "excludedAttributeNames",
}
_ATTRIBUTE_KEY_ALIASES = {"fieldName": "attributeName", "fieldType": "attributeType"}


class SchemaError(InputError):
    """A schema document that cannot be used; the message names the problem."""


class AttributeType(StrEnum):
    BINARY = "BINARY"
    CATEGORICAL = "CATEGORICAL"
    NUMERIC = "NUMERIC"
    TEXT = "TEXT"


@dataclass(frozen=True)
class Attribute:
    name: str
    type: AttributeType


@dataclass(frozen=True)
class Schema:
    """A validated schema; attributes are in CSV column order."""

    attributes: tuple[Attribute, ...]
    target: str | None = None
    row_id: str | None = None
    row_weight: str | None = None
    header: bool = False
    excluded: tuple[str, ...] = ()
    _types: dict[str, AttributeType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_types", {a.name: a.type for a in self.attributes})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def type_of(self, name: str) -> AttributeType | None:
        return self._types.get(name)

    @property
    def input_attributes(self) -> tuple[Attribute, ...]:
        """Attributes usable as model inputs: not the target, row id, row weight or excluded."""
        special = {self.target, self.row_id, self.row_weight, *self.excluded}
        return tuple(a for a in self.attributes if a.name not in special)

    def to_json(self) -> str:
        """The normalized compact form returned by GetDataSource/GetMLModel (data.md §3.4)."""
        doc = {
            "version": "1.0",
            "rowId": self.row_id,
            "rowWeight": self.row_weight,
            "targetAttributeName": self.target,
            "dataFormat": "CSV",
            "dataFileContainsHeader": self.header,
            "attributes": [
                {"attributeName": a.name, "attributeType": a.type.value} for a in self.attributes
            ],
            "excludedAttributeNames": list(self.excluded),
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def parse_schema(text: str, stored: bool = False) -> Schema:
    """Parse and validate a schema JSON string; raise SchemaError naming the problem. `stored`:
    one kept by the service (documents.load_json's `stored`)."""
    doc = load_object(text, "The data schema", SchemaError, stored=stored)
    doc = {_KEY_ALIASES.get(k, k): v for k, v in doc.items()}
    version = doc.get("version", "1.0")
    if version != "1.0":
        raise SchemaError(f"Unsupported schema version {version!r}; only \"1.0\" is supported")
    data_format = doc.get("dataFormat", "CSV")
    if data_format != "CSV":
        raise SchemaError(f"Unsupported dataFormat {data_format!r}; only \"CSV\" is supported")
    header = _boolean(doc.get("dataFileContainsHeader", False), "dataFileContainsHeader")
    attributes = _attributes(doc.get("attributes"))
    types = {a.name: a.type for a in attributes}

    target = _optional_name(doc, "targetAttributeName", types)
    row_id = _optional_name(doc, "rowId", types)
    row_weight = _optional_name(doc, "rowWeight", types)
    if row_weight is not None and types[row_weight] is not AttributeType.NUMERIC:
        raise SchemaError(f"rowWeight attribute '{row_weight}' must be NUMERIC")
    roles = [(r, n) for r, n in (("targetAttributeName", target), ("rowId", row_id),
                                  ("rowWeight", row_weight)) if n is not None]
    seen: dict[str, str] = {}
    for role, name in roles:
        if name in seen:
            raise SchemaError(f"Attribute '{name}' cannot be both {seen[name]} and {role}")
        seen[name] = role

    excluded_raw = doc.get("excludedAttributeNames") or []
    if not isinstance(excluded_raw, list) or not all(isinstance(x, str) for x in excluded_raw):
        raise SchemaError("excludedAttributeNames must be a list of attribute names")
    for name in excluded_raw:
        if name not in types:
            raise SchemaError(f"excludedAttributeNames names '{name}', which is not an attribute")
    if target is not None and target in excluded_raw:
        raise SchemaError(f"The target attribute '{target}' cannot be excluded")
    return Schema(
        attributes=tuple(attributes),
        target=target,
        row_id=row_id,
        row_weight=row_weight,
        header=header,
        excluded=tuple(dict.fromkeys(excluded_raw)),
    )


def _boolean(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SchemaError(f"{key} must be true or false")


def _attributes(raw: Any) -> list[Attribute]:
    if not isinstance(raw, list) or not raw:
        raise SchemaError("The data schema must list at least one attribute in 'attributes'")
    if len(raw) > MAX_ATTRIBUTES:
        raise SchemaError(f"The data schema has {len(raw)} attributes; the limit is {MAX_ATTRIBUTES}")
    attributes: list[Attribute] = []
    seen: set[str] = set()
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SchemaError(f"Attribute #{position + 1} must be a JSON object")
        item = {_ATTRIBUTE_KEY_ALIASES.get(k, k): v for k, v in item.items()}
        name = item.get("attributeName")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"Attribute #{position + 1} has no attributeName")
        if len(name) > MAX_NAME_LENGTH:
            raise SchemaError(f"Attribute name '{name[:80]}' is longer than {MAX_NAME_LENGTH} characters")
        if name in seen:
            raise SchemaError(f"Attribute name '{name}' is declared more than once")
        seen.add(name)
        kind = item.get("attributeType")
        try:
            attr_type = AttributeType(str(kind))
        except ValueError:
            raise SchemaError(
                f"Attribute '{name}' has unknown attributeType {kind!r}; "
                "use BINARY, CATEGORICAL, NUMERIC or TEXT"
            ) from None
        attributes.append(Attribute(name, attr_type))
    return attributes


def _optional_name(doc: dict[str, Any], key: str, types: dict[str, AttributeType]) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SchemaError(f"{key} must be an attribute name or null")
    if value not in types:
        raise SchemaError(f"{key} '{value}' is not one of the schema's attributes")
    return value
