"""The default (suggested) recipe of recipes.md §9 and the original's pretty JSON style."""

from __future__ import annotations

import json
from typing import Any

from openaml.ml.schema import AttributeType, Schema

BIN_COUNTS = (500, 200, 100, 50, 20, 10, 5)


def numeric_summary(statistics: dict[str, Any], name: str) -> tuple[int, int] | None:
    """(distinct valid values, valid count) of a NUMERIC attribute, or None when unknown.

    The one place that reads the datasource statistics document: attributes.NAME has
    count/missing/invalid and quantiles.values (distinct or sampled values); "distinct" wins
    when present.
    """
    entry = (statistics.get("attributes") or {}).get(name)
    if not isinstance(entry, dict):
        return None
    count = int(entry.get("count", 0)) - int(entry.get("missing", 0)) - int(entry.get("invalid", 0))
    if "distinct" in entry:
        distinct = int(entry["distinct"])
    else:
        distinct = len(set((entry.get("quantiles") or {}).get("values") or []))
    return distinct, max(count, 0)


def default_recipe(schema: Schema, statistics: dict[str, Any]) -> str:
    """Derive the recipe for a model created without one (recipes.md §9, the [Choice] algorithm)."""
    inputs = schema.input_attributes
    outputs: list[str] = []
    if any(a.type is AttributeType.BINARY for a in inputs):
        outputs.append("ALL_BINARY")
    outputs.append("ALL_CATEGORICAL")
    by_bins: dict[int, list[str]] = {}
    raw: list[str] = []
    for attr in inputs:
        if attr.type is not AttributeType.NUMERIC:
            continue
        summary = numeric_summary(statistics, attr.name)
        if summary is None:
            continue
        distinct, count = summary
        if distinct < 5:
            raw.append(_quoted(attr.name))
            continue
        n = next(b for b in BIN_COUNTS if b <= distinct and b <= max(5, count / 10))
        by_bins.setdefault(n, []).append(_quoted(attr.name))
    groups = {}
    for n in sorted(by_bins, reverse=True):
        groups[f"NUMERIC_VARS_QB_{n}"] = f"group({','.join(by_bins[n])})"
        outputs.append(f"quantile_bin(NUMERIC_VARS_QB_{n},{n})")
    outputs += raw
    if any(a.type is AttributeType.TEXT for a in inputs):
        outputs.append("lowercase(ALL_TEXT)")
    return pretty_json({"groups": groups, "assignments": {}, "outputs": outputs})


def _quoted(name: str) -> str:
    """Default recipes quote every attribute, as the original did."""
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pretty_json(value: Any, indent: int = 0) -> str:
    """The original's pretty style: `"key" : value` lines, one-line arrays, `{ }` and `[ ]`."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = [f'{pad}  {json.dumps(k, ensure_ascii=False)} : {pretty_json(v, indent + 1)}'
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(pretty_json(v, indent) for v in value) + " ]"
    return json.dumps(value, ensure_ascii=False)
