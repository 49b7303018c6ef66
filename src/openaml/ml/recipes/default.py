"""The default (suggested) recipe of recipes.md §9 and the original's pretty JSON style.

The [Choice] of §9, with two changes measured on tabular data (bench/tabular.py: AUC on a
70/30 split at 50,000 and 5,000 rows) and on strongly linear data (tests/api/test_workflow.py's
rows, 600 and 5,000):
* bins hold at least RECORDS_PER_BIN training records (n <= m / 1,000 instead of m / 10):
  many thin bins are learnt slowly (500 bins at 35,000 records: AUC 0.761 against 0.830 with
  20 bins);
* a binned NUMERIC input is also kept as a number: bins alone cannot follow a linear effect
  (RMSE 2.3-2.6 with 5 bins against 0.95-0.99 with the number too; AUC 0.829 against 0.830 on
  the tabular data).
"""

from __future__ import annotations

import json
from typing import Any

from openaml.ml.data.statistics_document import DatasetStatistics, NumericValues
from openaml.ml.schema import AttributeType, Schema

BIN_COUNTS = (500, 200, 100, 50, 20, 10, 5)
RECORDS_PER_BIN = 1000


def default_recipe(schema: Schema, statistics: DatasetStatistics | None) -> str:
    """Derive the recipe for a model created without one (recipes.md §9 with the changes above)
    from the training datasource's statistics; NUMERIC inputs without them are left out."""
    inputs = schema.input_attributes
    outputs: list[str] = []
    if any(a.type is AttributeType.BINARY for a in inputs):
        outputs.append("ALL_BINARY")
    outputs.append("ALL_CATEGORICAL")
    by_bins: dict[int, list[str]] = {}
    numbers: list[str] = []
    for attr in inputs:
        if attr.type is not AttributeType.NUMERIC:
            continue
        found = statistics.attributes.get(attr.name) if statistics is not None else None
        if found is None or not isinstance(found.values, NumericValues):
            continue
        distinct, count = found.values.at_least_distinct, found.count
        numbers.append(_quoted(attr.name))
        if distinct >= 5:
            n = next(b for b in BIN_COUNTS if b <= distinct and b <= max(5, count / RECORDS_PER_BIN))
            by_bins.setdefault(n, []).append(_quoted(attr.name))
    groups = {}
    taken = {a.name for a in schema.attributes}
    for n in sorted(by_bins, reverse=True):
        group = f"NUMERIC_VARS_QB_{n}"
        while group in taken:  # a group may not be named as an attribute (recipes.md §2)
            group += "_"
        groups[group] = f"group({','.join(by_bins[n])})"
        outputs.append(f"quantile_bin({group},{n})")
    outputs += numbers
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
