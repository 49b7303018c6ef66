"""Data insights of a datasource: its ingest report and statistics shaped for the page.

The statistics come typed (`openaml.ml.data.statistics_document`); the ingest report's other
counts are read from its JSON (camelCase keys).
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from openaml.console import charts
from openaml.ml.data import RearrangementError, parse_rearrangement
from openaml.ml.data.statistics_document import (
    AttributeStatistics,
    CountedValues,
    DatasetStatistics,
    NumericValues,
)

PAGE_SIZE = 25
TOP_VALUES = 10


def summary(datasource: dict[str, Any], ingest: dict[str, Any] | None,
            statistics: DatasetStatistics | None) -> list[tuple[str, Any]]:
    """The facts shown at the top of the datasource page, as (label, value) rows."""
    ingest = ingest or {}
    return [
        ("Location", datasource.get("DataLocationS3")),
        ("Size (bytes)", datasource.get("DataSizeInBytes", ingest.get("dataSizeInBytes"))),
        ("Files", datasource.get("NumberOfFiles", ingest.get("numberOfFiles"))),
        ("Records read", ingest.get("recordsRead")),
        ("Records rejected", ingest.get("rejectedRecords")),
        ("Records selected", ingest.get("selectedRecords")),
        ("Records with invalid values", ingest.get("recordsWithInvalidValues")),
        ("Records in statistics", statistics.record_count if statistics else None),
        ("Target", statistics.target.name if statistics and statistics.target else None),
        ("Split", describe_split(datasource.get("DataRearrangement"))),
    ]


def describe_split(text: str | None) -> str:
    """A DataRearrangement in words ("records 70-100 %, drawn at random (seed "s")"); its
    text as it is when it cannot be read."""
    try:
        split = parse_rearrangement(text)
    except RearrangementError:
        return str(text)
    if split.selects_all:
        return "all records"
    span = f"{float(split.begin):g}-{float(split.end):g} %"
    chosen = f"all records but those at {span}" if split.complement else f"records at {span}"
    if split.strategy == "random":
        return chosen + ", drawn at random" + (f' (seed "{split.seed}")' if split.seed else "")
    return chosen + " in file order"


def target_chart(statistics: DatasetStatistics | None) -> Markup | None:
    target = statistics.target if statistics is not None else None
    if target is None:
        return None
    title = f"Distribution of the target {target.name}"
    if target.class_counts:
        items = sorted(target.class_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
        return charts.bar_svg([k for k, _ in items], [float(v) for _, v in items], title)
    found = statistics.attributes.get(target.name) if statistics is not None else None
    if found is not None and isinstance(found.values, NumericValues) and found.values.histogram:
        return charts.histogram_svg(found.values.histogram.edges, found.values.histogram.counts, title)
    return None


SORTS = {  # ?sort= of the attribute table: the key of each row, ascending
    "name": lambda r: r["name"].lower(), "type": lambda r: (r["type"], r["name"].lower()),
    "missing": lambda r: (r["missing_share"], r["name"].lower()),
    "invalid": lambda r: (r["invalid_share"], r["name"].lower()),
    "distinct": lambda r: (r["distinct"] if r["distinct"] is not None else math.inf, r["name"].lower()),
    "correlation": lambda r: (abs(r["correlation"]) if r["correlation"] is not None else -1.0, r["name"].lower()),
}


def attribute_rows(statistics: DatasetStatistics | None, query: str = "", kind: str = "", page: int = 1,
                   sort: str = "", descending: bool = False,
                   opened: str = "") -> tuple[list[dict[str, Any]], int, int]:
    """One page of the attribute table (name filter, type filter, sorted by one of SORTS, in
    schema order when none): each row with its shares, distinct values, correlation and an
    inline chart; the `opened` attribute's row also with its whole detail. Returns (rows,
    total matching, number of pages)."""
    attributes = statistics.attributes if statistics is not None else {}
    rows = [_row(n, a) for n, a in attributes.items()
            if query.lower() in n.lower() and (not kind or a.attribute_type.value == kind)]
    if sort in SORTS:
        rows.sort(key=SORTS[sort], reverse=descending)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    for row in shown:
        row["spark"] = charts.spark_svg(row.pop("spark_values"), f"Distribution of {row['name']}")
        if row["name"] == opened:
            row["detail"] = _attribute(row["name"], attributes[row["name"]])
    return shown, len(rows), pages


def _row(name: str, stats: AttributeStatistics) -> dict[str, Any]:
    """The attribute's line of the table (its chart's values, drawn for shown rows only)."""
    records = stats.count + stats.missing + stats.invalid
    values = stats.values
    distinct: int | None = None
    correlation: float | None = None
    spark: list[float] = []
    if isinstance(values, NumericValues):
        distinct, correlation = values.distinct, values.correlation_to_target
        spark = [float(c) for c in values.histogram.counts] if values.histogram else []
    elif isinstance(values, CountedValues):
        distinct = values.distinct
        spark = [float(c) for _, c in _top(values.value_counts)]
    else:
        distinct = values.distinct_tokens
        spark = [float(c) for _, c in _top(values.top_tokens)]
    return {"name": name, "type": stats.attribute_type.value,
            "missing_share": stats.missing / records if records else 0.0,
            "invalid_share": stats.invalid / records if records else 0.0, "distinct": distinct,
            "correlation": correlation, "spark_values": spark, "detail": None}


def _attribute(name: str, stats: AttributeStatistics) -> dict[str, Any]:
    facts: list[tuple[str, Any]] = [("Valid values", stats.count), ("Missing", stats.missing),
                                    ("Invalid", stats.invalid)]
    chart: Markup | None = None
    top: list[tuple[str, Any]] = []
    values = stats.values
    if isinstance(values, NumericValues):
        facts += [("Min", values.min), ("Median", values.median), ("Mean", values.mean),
                  ("Max", values.max), ("Stddev", values.stddev),
                  ("Distinct values", values.distinct),
                  ("Correlation to target", values.correlation_to_target)]
        if values.histogram:
            chart = charts.histogram_svg(values.histogram.edges, values.histogram.counts,
                                         f"Histogram of {name}")
    elif isinstance(values, CountedValues):
        facts.append(("Distinct values", values.distinct))
        if values.true_count is not None:
            facts += [("True", values.true_count), ("False", values.false_count)]
        top = _top(values.value_counts)
    else:
        facts += [("Tokens", values.total_tokens), ("Distinct tokens", values.distinct_tokens),
                  ("Min words per record", values.min_words_per_record),
                  ("Max words per record", values.max_words_per_record),
                  ("Min word length", values.min_word_length),
                  ("Max word length", values.max_word_length)]
        top = _top(values.top_tokens)
    if top:
        chart = charts.bar_svg([k for k, _ in top], [float(v) for _, v in top],
                               f"Most frequent values of {name}")
    return {"name": name, "type": stats.attribute_type.value, "facts": facts, "chart": chart,
            "top": top}


def _top(counts: dict[str, int]) -> list[tuple[str, Any]]:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    return items[:TOP_VALUES]
