"""Fitting a feature pipeline on the training records: statistics and vocabularies.

What the training datasource's statistics already hold (complete value and token lists,
numeric moments and sketches: `known_from`) is taken from there. For the rest, one pass
collects numeric moments, raw values of binned attributes and the vocabularies of sources
that need no fitted statistic; a second pass is made only for vocabularies of sources built
on quantile bins (for example `cartesian(quantile_bin(age,10), job)`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml import number_sketch
from openaml.ml.data.statistics import entry_counts
from openaml.ml.data.statistics_document import (
    CountedValues,
    DatasetStatistics,
    NumericValues,
    Sketch,
    TextValues,
)
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.features.codes import SOURCE_SHIFT, ValueCodes, concatenated, keys
from openaml.ml.features.pipeline import FeaturePipeline
from openaml.ml.features.tokens import TokenList, TooManyPairs
from openaml.ml.features.transforms import bin_labels, normalize
from openaml.ml.features.values import Columns, counted_quantile_boundaries, evaluate
from openaml.ml.moments import Moments
from openaml.ml.recipes.nodes import BINARY, NUMERIC, Attr, Node, Op, contains
from openaml.ml.schema import AttributeType, Schema

Records = Callable[[], Iterator[Columns]]


@dataclass(frozen=True)
class Known:
    """What the training datasource's statistics tell a fit before it reads a record
    (known_from)."""

    values: dict[str, pa.Array] = field(default_factory=dict)  # every CATEGORICAL value, TEXT token
    moments: dict[str, tuple[float, float]] = field(default_factory=dict)  # NUMERIC: mean, std
    sketches: dict[str, Sketch] = field(default_factory=dict)  # NUMERIC: every valid value, counted


def fit_pipeline(sources: tuple[Node, ...], schema: Schema, records: Records,
                 observe: Callable[[Columns], None] | None = None,
                 known: Known | None = None, execution: Execution = ONE_THREAD) -> FeaturePipeline:
    """Fit every source on the batches of records `records()` yields (their Columns, read
    with `schema`); `observe` sees each batch of pass 1.
    known: what the statistics tell of the records. A NUMERIC attribute's moments, the
    boundaries of quantile bins on one whose sketch is known, and the vocabulary of a source
    that maps each value (or token) of a known attribute on its own (the attribute, lowercase
    or no_punct of it) come from there instead of the records. When nothing is left to
    collect and nobody observes, the records are not read at all."""
    known = known or Known()
    nodes = _all_nodes(sources)
    used = {n.name for n in nodes if isinstance(n, Attr) and n.kind == NUMERIC}
    numeric = sorted(used - set(known.moments))
    bins = [node for node in nodes if isinstance(node, Op) and node.function == "quantile_bin"]
    sketched = {node.canonical for node in bins if _numeric_attrs(node) <= set(known.sketches)
                and _fine_for(node, known.sketches)}
    binned = {a for node in bins if node.canonical not in sketched for a in _numeric_attrs(node)}
    moments = {name: Moments() for name in numeric}
    raw: dict[str, list[np.ndarray]] = {name: [] for name in binned}
    vocab_sources = [i for i, s in enumerate(sources) if s.kind not in (NUMERIC, BINARY)
                     and not (isinstance(s, Op) and s.function == "quantile_bin")]
    early = [i for i in vocab_sources if not contains(sources[i], "quantile_bin")]
    late = [i for i in vocab_sources if i not in early]
    vocabularies = _Vocabularies()
    given = {i: _known_vocabulary(sources[i], name, known.values[name], schema) for i in early
             if (name := _mapped_attribute(sources[i])) in known.values}
    early = [i for i in early if i not in given]

    for columns in records() if observe is not None or numeric or binned or early else ():
        if observe is not None:
            observe(columns)
        for name in sorted(set(numeric) | binned):
            values = columns.get(name)
            if name in moments:
                moments[name].merge(Moments.of(values))
            if name in raw:
                raw[name].append(values)  # the batch's own array: no copy
        vocabularies.collect(early, sources, columns, {})

    params: dict[str, Any] = {}
    stats = {name: known.moments[name] for name in used if name in known.moments}
    stats |= {name: (m.mean, m.std) for name, m in moments.items()}

    def values_of(name: str) -> np.ndarray:
        """Every training value of `name` (NaN included), one attribute at a time."""
        return np.concatenate(raw[name]) if raw[name] else np.zeros(0)

    for node in nodes:  # from the moments: at once, before the bins on them
        if isinstance(node, Op) and node.function == "normalize":
            _fit_normalize(node, stats, params)

    def fit(node: Op) -> list[float]:
        if node.canonical in sketched:
            return _sketched_boundaries(node, known.sketches, params)
        return _boundaries(node, values_of, params)

    if execution.parallel and sum(node.canonical not in sketched for node in bins) > 1:
        # the sorts release the GIL: two at once
        with ThreadPoolExecutor(2, thread_name_prefix="openaml-fit") as pool:
            fitted_bins = list(pool.map(fit, bins))
    else:
        fitted_bins = [fit(node) for node in bins]
    for node, boundaries in zip(bins, fitted_bins):
        params[node.canonical] = {"boundaries": boundaries}
    if late:
        for columns in records():
            vocabularies.collect(late, sources, columns, params)

    vocabs: list[pa.Array | None] = []
    scales: list[tuple[float, float] | None] = []
    found = vocabularies.by_source() | given
    for i, source in enumerate(sources):
        scales.append(_numeric_stats(source, stats) if source.kind == NUMERIC else None)
        if source.kind in (NUMERIC, BINARY):
            vocabs.append(None)
        elif i in found:
            vocabs.append(found[i])
        elif isinstance(source, Op) and source.function == "quantile_bin":
            count = len(params[source.canonical]["boundaries"]) + 1
            vocabs.append(bin_labels(count))
        else:
            vocabs.append(pa.array([], pa.string()))
    return FeaturePipeline(schema, sources, params, scales, vocabs)


def known_from(statistics: DatasetStatistics | None, schema: Schema) -> Known:
    """What `statistics`, the training datasource's, tell of the training records (read with
    `schema`; an attribute the statistics type otherwise is left to the records).
    Complete value and token lists are always taken: a value (or token) seen only in a record
    without a valid target becomes a feature no step touches, whose zero weight trimming
    removes from a linear model (boosted trees keep it, unused). NUMERIC moments and sketches
    only when every record has a valid target: the statistics' records are then the
    training's, and the fit the one a pass over them makes (moments to rounding, and so the
    bins on a normalized attribute; other bins exactly: the records' bins come by way of
    their sketch too, or, where it is too coarse for them, from the exact values, which the
    records are then read for). The weighted points that statistics of earlier versions kept
    past 100,000 distinct values are not taken: they depend on how the ingest batched the
    records, and a model must depend on the records alone."""
    if statistics is None:
        return Known()
    described = statistics.target
    every = (described is not None and described.name == schema.target
             and described.attribute_type is schema.type_of(described.name)
             and described.valid_count == statistics.record_count)
    values, moments, sketches = {}, {}, {}
    for name, a in statistics.attributes.items():
        v = a.values
        if a.attribute_type is not schema.type_of(name):
            continue
        if isinstance(v, CountedValues) and a.attribute_type is AttributeType.CATEGORICAL and not v.truncated:
            values[name] = pa.array(list(v.value_counts), pa.string())
        elif isinstance(v, TextValues) and v.distinct_tokens <= len(v.top_tokens):
            values[name] = pa.array(list(v.top_tokens), pa.string())
        elif isinstance(v, NumericValues) and every:
            if a.count == 0:
                moments[name], sketches[name] = (0.0, 0.0), Sketch([], [], True)
            elif v.mean is not None and v.stddev is not None and math.isfinite(v.mean + v.stddev):
                moments[name] = (v.mean, v.stddev)  # (numbers near the double's range: not finite)
                if v.sketch is not None and v.sketch.depends_on_values_alone:
                    sketches[name] = v.sketch
    return Known(values, moments, sketches)


def _mapped_attribute(source: Node) -> str | None:
    """The attribute of a source that maps each of its values (or tokens) on its own: the
    attribute itself, or lowercase or no_punct of such a source."""
    while isinstance(source, Op) and source.function in ("lowercase", "no_punct"):
        source = source.args[0]
    return source.name if isinstance(source, Attr) else None


def _known_vocabulary(source: Node, name: str, values: pa.Array, schema: Schema) -> pa.Array:
    """The vocabulary of a mapping source (_mapped_attribute) of attribute `name`, all of whose
    values (or tokens) are `values`: the source of a record holding each of them."""
    value = evaluate(source, Columns(pa.record_batch([values], names=[name]), schema), {})
    found = value.values if isinstance(value, TokenList) else value
    return _sorted(_merged([_distinct(found)]))


MERGE_EVERY = 16  # batches' distinct values held (per source, or coded pairs) before a merge


class _Vocabularies:
    """The distinct values of each vocabulary source, gathered batch by batch. The dictionaries
    of a batch's dictionary-encoded categories are coded together (features/codes.py) and
    their (source, code) pairs kept; tokens and other values are kept as arrays of distinct
    values (a text's distinct tokens may be too many to code one by one). Both are merged
    every MERGE_EVERY batches."""

    def __init__(self) -> None:
        self.codes = ValueCodes()
        self.pairs: list[np.ndarray] = []
        self.arrays: dict[int, list[pa.Array]] = {}

    def collect(self, indices: list[int], sources: tuple[Node, ...], columns: Columns,
                params: dict[str, Any]) -> None:
        """Gather the distinct values of the sources `indices` in the records of `columns`
        (in halves when a cartesian() would make too many token pairs at once: the values
        gathered before it are gathered again, which changes no set of distinct values)."""
        try:
            self._collect(indices, sources, columns, params)
        except TooManyPairs:
            for half in columns.halves():
                self.collect(indices, sources, half, params)

    def _collect(self, indices: list[int], sources: tuple[Node, ...], columns: Columns,
                 params: dict[str, Any]) -> None:
        coded: list[tuple[int, pa.DictionaryArray]] = []
        for i in indices:
            value = evaluate(sources[i], columns, params)
            values = value.values if isinstance(value, TokenList) else value
            if pa.types.is_dictionary(values.type):
                if not isinstance(value, TokenList):  # categories: a few, coded together
                    coded.append((i, values))
                    continue
                # a batch's distinct tokens (perhaps very many): as other values are
                values = values.dictionary.filter(pa.array(entry_counts(values) > 0))
            found = self.arrays.setdefault(i, [])
            found.append(_distinct(values))
            if len(found) > MERGE_EVERY:
                found[:] = [_merged(found)]
        if not coded:
            return
        dictionaries = [values.dictionary for _, values in coded]
        # a split or a filter keeps the whole dictionary: only entries some row uses count
        used = np.concatenate([entry_counts(values) > 0 for _, values in coded])
        sources_of = np.repeat(np.array([i for i, _ in coded]), [len(d) for d in dictionaries])
        codes = self.codes.codes(concatenated(dictionaries), grow=True)
        self.pairs.append(keys(sources_of, codes)[used & (codes >= 0)])
        if len(self.pairs) > MERGE_EVERY:
            self.pairs = [_unique(np.concatenate(self.pairs))]

    def by_source(self) -> dict[int, pa.Array]:
        """Each source's distinct values, sorted by code point."""
        pairs = _unique(np.concatenate(self.pairs)) if self.pairs else np.zeros(0, np.int64)
        sources_of, codes = pairs >> SOURCE_SHIFT, pairs & ((1 << SOURCE_SHIFT) - 1)
        strings = pa.array(self.codes.values, pa.string())
        result = {}
        for i in sorted(set(self.arrays) | set(sources_of.tolist())):
            start, end = np.searchsorted(sources_of, [i, i + 1])
            parts = self.arrays.get(i, []) + [strings.take(pa.array(codes[start:end]))]
            result[i] = _sorted(_merged(parts))
        return result


def _sorted(values: pa.Array) -> pa.Array:
    """By code point: the order of a vocabulary."""
    return values.take(pc.sort_indices(values))


def _unique(found: np.ndarray) -> np.ndarray:
    """The distinct values of `found`, sorted (np.unique hashes first: several times slower
    on these)."""
    found = np.sort(found)
    return found[np.concatenate(([True], found[1:] != found[:-1]))] if len(found) else found


def _distinct(values: pa.Array) -> pa.Array:
    """The batch's values, each at least once (duplicates go at the merge), as strings."""
    values = pc.unique(values)
    return values if values.type == pa.string() else values.cast(pa.string())


def _merged(parts: list[pa.Array]) -> pa.Array:
    """The distinct non-null values of `parts`."""
    return pc.unique(pa.concat_arrays(parts)).drop_null()


def _fit_normalize(node: Op, stats: dict[str, tuple[float, float]], params: dict[str, Any]) -> None:
    """The mean and std of a normalize node."""
    mean, std = _numeric_stats(node.args[0], stats)
    params[node.canonical] = {"mean": mean, "std": std}


def _boundaries(node: Op, values_of: Callable[[str], np.ndarray], params: dict[str, Any]) -> list[float]:
    """The bin boundaries of a quantile_bin node from its attribute's training values: by way
    of their sketch (number_sketch) when it is fine enough for the bins, as the sketch in the
    statistics gives them, else from the exact values."""
    (name,) = _numeric_attrs(node)
    exact = number_sketch.Sketched.exact(*number_sketch.counted(values_of(name)))
    sketch = number_sketch.settled(exact)
    if not number_sketch.fine_for(sketch, node.n or 10):
        sketch = exact
    return _counted_boundaries(node, sketch.values, sketch.counts, params)


def _fine_for(node: Op, sketches: dict[str, Sketch]) -> bool:
    """Whether the sketch of the node's attribute is fine enough for its bins (number_sketch)."""
    (name,) = _numeric_attrs(node)
    sketch = sketches[name]
    if sketch.exact:
        return True
    assert sketch.bits is not None and sketch.single is not None  # known_from takes no other
    return number_sketch.fine_for(number_sketch.Sketched(np.asarray(sketch.values, np.float64),
                                                         np.asarray(sketch.counts, np.float64),
                                                         np.asarray(sketch.single, np.bool_), sketch.bits),
                                  node.n or 10)


def _sketched_boundaries(node: Op, sketches: dict[str, Sketch], params: dict[str, Any]) -> list[float]:
    """The bin boundaries of a quantile_bin node from its attribute's sketch."""
    (name,) = _numeric_attrs(node)
    sketch = sketches[name]
    return _counted_boundaries(node, np.asarray(sketch.values, np.float64), np.asarray(sketch.counts, np.float64),
                               params)


def _counted_boundaries(node: Op, values: np.ndarray, counts: np.ndarray, params: dict[str, Any]) -> list[float]:
    """The bin boundaries of a quantile_bin node on ascending distinct values of its attribute
    (still ascending once normalized) with their counts."""
    boundaries: list[float] = counted_quantile_boundaries(
        _numeric_values(node.args[0], lambda _: values, params), counts, node.n or 10).tolist()
    return boundaries


def _numeric_stats(node: Node, stats: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """Mean and std of a NUMERIC variable: an attribute, or normalize(...) of one (0, 1)."""
    if isinstance(node, Attr):
        return stats[node.name]
    mean, std = _numeric_stats(node.args[0], stats)
    return (0.0, 1.0) if std > 0 else (0.0, 0.0)


def _numeric_values(node: Node, values_of: Callable[[str], np.ndarray],
                    params: dict[str, Any]) -> np.ndarray:
    if isinstance(node, Attr):
        return values_of(node.name)
    inner = _numeric_values(node.args[0], values_of, params)
    p = params[node.canonical]
    return normalize(inner, p["mean"], p["std"])


def _numeric_attrs(node: Node) -> set[str]:
    if isinstance(node, Attr):
        return {node.name} if node.kind == NUMERIC else set()
    return set().union(*(_numeric_attrs(a) for a in node.args))


def _all_nodes(sources: tuple[Node, ...]) -> list[Node]:
    """Every node of every source, children before parents."""
    out: list[Node] = []

    def walk(node: Node) -> None:
        if isinstance(node, Op):
            for arg in node.args:
                walk(arg)
        out.append(node)

    for source in sources:
        walk(source)
    return out
