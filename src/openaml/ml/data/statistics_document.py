"""The datasource statistics as typed objects, and their JSON layout, in one place.

`StatisticsBuilder.finish()` (statistics.py) makes a `DatasetStatistics`; the ingest report
stores `to_json()` beside the materialized copy, and every reader (the default recipe,
training, the console) gets `DatasetStatistics.from_json()` back: no reader looks up a key
of the document itself.

JSON layout (camelCase keys; data.md §6):

```
{"recordCount": n,                      # selected, well-formed records
 "target": {"attributeName": t, "attributeType": T, "validCount": k,
            "classCounts": {value: count}          # BINARY ("0"/"1") and CATEGORICAL targets
            | "count"/"min"/.../"histogram"},      # NUMERIC target: its attribute statistics
 "attributes": {name: {"attributeType": T, "missingCount": m, "invalidCount": i,
                       "count": valid values, ...type-specific keys...}}}
```

* NUMERIC: distinctCount (null once over EXACT_DISTINCT distinct values), min, max, mean,
  variance (population), stddev, median, histogram {"edges": 21 numbers, "counts": 20 counts}
  (equal width over [min, max]), sketch {"values", "counts", "exact", "mantissaBits"}: the
  sorted distinct values with their counts, or, past EXACT_DISTINCT of them, the values cut
  to the most mantissa bits that leave at most 10,000 ("exact": false, "mantissaBits": those
  bits; number_sketch), with their counts, a value whose records hold one value alone being
  that value itself ("single": true for those; min and max stay the values' own; the histogram
  is then that of the sketch's values, the median too unless the middle records' values are
  single); correlationToTarget (NUMERIC or BINARY target, else null). Statistics of earlier
  versions hold weighted points there past EXACT_DISTINCT values ("exact": false, no
  mantissaBits).
* BINARY / CATEGORICAL: distinctCount, valueCounts {value: count} most frequent first, capped
  at 100,000 values ("truncated": true when some were dropped); BINARY also trueCount and
  falseCount. Past 200,000 distinct values the table is pruned as it is read: distinctCount is
  then an estimate (within about 1 %, the same however the records are laid out:
  distinct_sketch), and a listed value that was pruned while rare lacks its records before.
* TEXT (white-space tokens, case kept): totalTokens, distinctTokens (estimated likewise past
  200,000), topTokens (10,000 most frequent), min/maxWordsPerRecord, min/maxWordLength.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openaml.ml.number_sketch import EXACT_DISTINCT
from openaml.ml.schema import AttributeType


@dataclass(frozen=True)
class Histogram:
    edges: list[float]  # HISTOGRAM_BINS + 1 increasing edges
    counts: list[int]


@dataclass(frozen=True)
class Sketch:
    """Sorted distinct values with their counts (`exact`), or, once there were more than
    EXACT_DISTINCT values, the values cut to `bits` mantissa bits with their counts
    (number_sketch), each flagged `single` when its records hold one value alone, which it then
    is. Statistics written before that kept weighted points there instead, which depend on the
    batches merged: not exact, and no bits."""

    values: list[float]
    counts: list[float]
    exact: bool
    bits: int | None = None
    single: list[bool] | None = None  # cut: the values that stand for one value alone, their own

    @property
    def depends_on_values_alone(self) -> bool:
        """Whether the sketch is exact or cut as number_sketch cuts values now, single flags
        included (cut values written without them stand for their single values too, which a
        fit on the records keeps: bins from them could differ), not weighted points."""
        return self.exact or (self.bits is not None and self.single is not None)


@dataclass(frozen=True)
class NumericValues:
    """What a NUMERIC attribute's valid values look like; all None when it has none."""

    distinct: int | None  # None: more than EXACT_DISTINCT (the sketch's values are cut)
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    variance: float | None = None
    stddev: float | None = None
    median: float | None = None
    histogram: Histogram | None = None
    sketch: Sketch | None = None
    correlation_to_target: float | None = None

    @property
    def at_least_distinct(self) -> int:
        """The distinct valid values, or a lower bound of them when they were too many to keep."""
        return EXACT_DISTINCT + 1 if self.distinct is None else self.distinct


@dataclass(frozen=True)
class CountedValues:
    """BINARY and CATEGORICAL: value counts, most frequent first."""

    distinct: int
    value_counts: dict[str, int]
    truncated: bool  # values beyond MAX_VALUES were dropped
    true_count: int | None = None  # BINARY only
    false_count: int | None = None


@dataclass(frozen=True)
class TextValues:
    total_tokens: int
    distinct_tokens: int
    top_tokens: dict[str, int]
    min_words_per_record: int | None
    max_words_per_record: int | None
    min_word_length: int | None
    max_word_length: int | None


Values = NumericValues | CountedValues | TextValues


@dataclass(frozen=True)
class AttributeStatistics:
    attribute_type: AttributeType
    missing: int
    invalid: int
    count: int  # valid values
    values: Values


@dataclass(frozen=True)
class TargetStatistics:
    name: str
    attribute_type: AttributeType
    valid_count: int
    class_counts: dict[str, int] | None  # BINARY ("0"/"1") and CATEGORICAL targets


@dataclass(frozen=True)
class DatasetStatistics:
    record_count: int
    target: TargetStatistics | None
    attributes: dict[str, AttributeStatistics]

    def to_json(self) -> dict[str, Any]:
        return {"recordCount": self.record_count,
                "target": None if self.target is None else self._target_json(self.target),
                "attributes": {name: _attribute_json(a) for name, a in self.attributes.items()}}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DatasetStatistics:
        attributes = {name: _attribute_from_json(entry) for name, entry in doc["attributes"].items()}
        target = doc.get("target")
        return cls(int(doc["recordCount"]), None if target is None else TargetStatistics(
            target["attributeName"], AttributeType(target["attributeType"]),
            int(target["validCount"]), _counts(target.get("classCounts"))), attributes)

    def _target_json(self, target: TargetStatistics) -> dict[str, Any]:
        out: dict[str, Any] = {"attributeName": target.name,
                               "attributeType": target.attribute_type.value,
                               "validCount": target.valid_count}
        if target.class_counts is not None:
            out["classCounts"] = target.class_counts
        attribute = self.attributes.get(target.name)
        if attribute is not None and isinstance(attribute.values, NumericValues):
            full = _attribute_json(attribute)
            keys = ("count", "min", "max", "mean", "variance", "stddev", "median", "histogram")
            out |= {k: full[k] for k in keys if k in full}
        return out


def _counts(raw: Any) -> dict[str, int] | None:
    return None if raw is None else {str(k): int(v) for k, v in raw.items()}


def _attribute_json(a: AttributeStatistics) -> dict[str, Any]:
    out: dict[str, Any] = {"attributeType": a.attribute_type.value, "missingCount": a.missing,
                           "invalidCount": a.invalid, "count": a.count}
    v = a.values
    if isinstance(v, NumericValues):
        if v.histogram is None or v.sketch is None:  # no valid value
            return out | {"distinctCount": v.distinct, "correlationToTarget": v.correlation_to_target}
        return out | {
            "distinctCount": v.distinct, "min": v.min, "max": v.max, "mean": v.mean,
            "variance": v.variance, "stddev": v.stddev, "median": v.median,
            "histogram": {"edges": v.histogram.edges, "counts": v.histogram.counts},
            "sketch": {"values": v.sketch.values, "counts": v.sketch.counts, "exact": v.sketch.exact}
            | ({} if v.sketch.bits is None else {"mantissaBits": v.sketch.bits})
            | ({} if v.sketch.single is None else {"single": v.sketch.single}),
            "correlationToTarget": v.correlation_to_target}
    if isinstance(v, CountedValues):
        out |= {"distinctCount": v.distinct, "valueCounts": v.value_counts, "truncated": v.truncated}
        if v.true_count is not None:
            out |= {"trueCount": v.true_count, "falseCount": v.false_count}
        return out
    return out | {"totalTokens": v.total_tokens, "distinctTokens": v.distinct_tokens,
                  "topTokens": v.top_tokens, "minWordsPerRecord": v.min_words_per_record,
                  "maxWordsPerRecord": v.max_words_per_record, "minWordLength": v.min_word_length,
                  "maxWordLength": v.max_word_length}


def _attribute_from_json(entry: dict[str, Any]) -> AttributeStatistics:
    kind = AttributeType(entry["attributeType"])
    values: Values
    if kind is AttributeType.NUMERIC:
        histogram, sketch = entry.get("histogram"), entry.get("sketch")
        values = NumericValues(
            entry.get("distinctCount"), entry.get("min"), entry.get("max"), entry.get("mean"),
            entry.get("variance"), entry.get("stddev"), entry.get("median"),
            None if histogram is None else Histogram(histogram["edges"], histogram["counts"]),
            None if sketch is None else Sketch(sketch["values"], sketch["counts"], sketch["exact"],
                                               sketch.get("mantissaBits"), sketch.get("single")),
            entry.get("correlationToTarget"))
    elif kind is AttributeType.TEXT:
        values = TextValues(entry["totalTokens"], entry["distinctTokens"], entry["topTokens"],
                            entry["minWordsPerRecord"], entry["maxWordsPerRecord"],
                            entry["minWordLength"], entry["maxWordLength"])
    else:
        values = CountedValues(entry["distinctCount"], entry["valueCounts"], entry["truncated"],
                               entry.get("trueCount"), entry.get("falseCount"))
    return AttributeStatistics(kind, int(entry["missingCount"]), int(entry["invalidCount"]),
                               int(entry["count"]), values)
