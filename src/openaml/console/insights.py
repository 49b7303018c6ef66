"""Data insights of a datasource: its ingest report and statistics shaped for the page.

Reads the layout documented in `openaml.ml.data.statistics` (camelCase keys): `recordCount`,
`target` {attributeName, attributeType, classCounts | histogram...}, `attributes` {name:
{attributeType, missingCount, invalidCount, count, min, max, mean, median, stddev,
distinctCount, histogram {edges, counts}, valueCounts, topTokens, totalTokens, distinctTokens,
min/maxWordsPerRecord, min/maxWordLength, correlationToTarget}}.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from openaml.console import charts

PAGE_SIZE = 25
TOP_VALUES = 10


def summary(datasource: dict[str, Any], ingest: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The facts shown at the top of the datasource page, as (label, value) rows."""
    ingest = ingest or {}
    statistics = ingest.get("statistics") or {}
    target = (statistics.get("target") or {}).get("attributeName")
    return [
        ("Location", datasource.get("DataLocationS3")),
        ("Size (bytes)", datasource.get("DataSizeInBytes", ingest.get("dataSizeInBytes"))),
        ("Files", datasource.get("NumberOfFiles", ingest.get("numberOfFiles"))),
        ("Records read", ingest.get("recordsRead")),
        ("Records rejected", ingest.get("rejectedRecords")),
        ("Records selected", ingest.get("selectedRecords")),
        ("Records with invalid values", ingest.get("recordsWithInvalidValues")),
        ("Records in statistics", statistics.get("recordCount")),
        ("Target", target),
        ("Split", datasource.get("DataRearrangement")),
    ]


def target_chart(statistics: dict[str, Any]) -> Markup | None:
    target = statistics.get("target") or {}
    name = target.get("attributeName")
    if not name:
        return None
    counts = target.get("classCounts")
    if isinstance(counts, dict) and counts:
        items = sorted(counts.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))[:50]
        return charts.bar_svg([str(k) for k, _ in items], [float(v) for _, v in items],
                              f"Distribution of the target {name}")
    histogram = target.get("histogram") or {}
    if histogram.get("edges") and histogram.get("counts"):
        return charts.histogram_svg(histogram["edges"], histogram["counts"],
                                    f"Distribution of the target {name}")
    return None


def attribute_rows(statistics: dict[str, Any], query: str = "", kind: str = "",
                   page: int = 1) -> tuple[list[dict[str, Any]], int, int]:
    """One page of attributes (name filter, type filter), each with its facts and chart;
    returns (rows, total matching, number of pages)."""
    attributes = statistics.get("attributes") or {}
    names = [n for n, a in attributes.items()
             if query.lower() in n.lower() and (not kind or (a or {}).get("attributeType") == kind)]
    pages = max(1, -(-len(names) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = [_attribute(n, attributes[n] or {}) for n in names[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]]
    return rows, len(names), pages


def _attribute(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    kind = stats.get("attributeType", "")
    facts: list[tuple[str, Any]] = [("Valid values", stats.get("count")),
                                    ("Missing", stats.get("missingCount")),
                                    ("Invalid", stats.get("invalidCount"))]
    chart: Markup | None = None
    top: list[tuple[str, Any]] = []
    if kind == "NUMERIC":
        facts += [(k.capitalize(), stats.get(k)) for k in ("min", "median", "mean", "max", "stddev")]
        facts += [("Distinct values", stats.get("distinctCount")),
                  ("Correlation to target", stats.get("correlationToTarget"))]
        histogram = stats.get("histogram") or {}
        if histogram.get("edges") and histogram.get("counts"):
            chart = charts.histogram_svg(histogram["edges"], histogram["counts"], f"Histogram of {name}")
    elif kind in ("CATEGORICAL", "BINARY"):
        facts.append(("Distinct values", stats.get("distinctCount")))
        if kind == "BINARY":
            facts += [("True", stats.get("trueCount")), ("False", stats.get("falseCount"))]
        top = _top(stats.get("valueCounts"))
    elif kind == "TEXT":
        facts += [(label, stats.get(key)) for label, key in (
            ("Tokens", "totalTokens"), ("Distinct tokens", "distinctTokens"),
            ("Min words per record", "minWordsPerRecord"), ("Max words per record", "maxWordsPerRecord"),
            ("Min word length", "minWordLength"), ("Max word length", "maxWordLength"))]
        top = _top(stats.get("topTokens"))
    if top:
        chart = charts.bar_svg([k for k, _ in top], [float(v) for _, v in top],
                               f"Most frequent values of {name}")
    return {"name": name, "type": kind, "facts": facts, "chart": chart, "top": top}


def _top(counts: Any) -> list[tuple[str, Any]]:
    if not isinstance(counts, dict):
        return []
    items = sorted(counts.items(), key=lambda kv: -float(kv[1]))
    return [(str(k), v) for k, v in items[:TOP_VALUES]]
