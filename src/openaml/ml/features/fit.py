"""Fitting a feature pipeline on the training records: statistics and vocabularies.

One pass collects numeric moments, raw values of binned attributes and the vocabularies of
sources that need no fitted statistic; a second pass is made only for vocabularies of sources
built on quantile bins (for example `cartesian(quantile_bin(age,10), job)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.data.statistics import entry_counts
from openaml.ml.data.statistics_document import CountedValues, DatasetStatistics
from openaml.ml.execution import ONE_THREAD, Execution
from openaml.ml.features.codes import SOURCE_SHIFT, ValueCodes, concatenated, keys
from openaml.ml.features.pipeline import FeaturePipeline
from openaml.ml.features.tokens import TokenList
from openaml.ml.features.transforms import bin_labels, normalize
from openaml.ml.features.values import Columns, evaluate, quantile_boundaries
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, NUMERIC, Attr, Node, Op, contains
from openaml.ml.schema import AttributeType, Schema

Records = Callable[[], Iterator[Columns]]


class _Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        n = len(values)
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0


def fit_pipeline(sources: tuple[Node, ...], schema: Schema, records: Records,
                 observe: Callable[[Columns], None] | None = None,
                 known: dict[str, pa.Array] | None = None, execution: Execution = ONE_THREAD) -> FeaturePipeline:
    """Fit every source on the batches of records `records()` yields (their Columns, read
    with `schema`); `observe` sees each batch of pass 1.
    known: every value of some CATEGORICAL attributes (known_values): a source that is one of
    them takes those as its vocabulary instead of collecting them. When nothing is left to
    collect and nobody observes, the records are not read at all."""
    numeric = sorted({n.name for n in _all_nodes(sources) if isinstance(n, Attr) and n.kind == NUMERIC})
    binned = {a for n in _all_nodes(sources) if isinstance(n, Op) and n.function == "quantile_bin"
              for a in _numeric_attrs(n)}
    moments = {name: _Moments() for name in numeric}
    raw: dict[str, list[np.ndarray]] = {name: [] for name in binned}
    vocab_sources = [i for i, s in enumerate(sources) if s.kind not in (NUMERIC, BINARY)
                     and not (isinstance(s, Op) and s.function == "quantile_bin")]
    early = [i for i in vocab_sources if not contains(sources[i], "quantile_bin")]
    late = [i for i in vocab_sources if i not in early]
    vocabularies = _Vocabularies()
    known = known or {}
    given = {i: _sorted(known[s.name]) for i, s in enumerate(sources) if i in early and isinstance(s, Attr)
             and s.kind == CATEGORICAL and s.name in known}
    early = [i for i in early if i not in given]

    for columns in records() if observe is not None or numeric or early else ():
        if observe is not None:
            observe(columns)
        for name in numeric:
            values = columns.get(name)
            moments[name].add(values)
            if name in raw:
                raw[name].append(values)  # the batch's own array: no copy
        vocabularies.collect(early, sources, columns, {})

    params: dict[str, Any] = {}
    stats = {name: (m.mean, m.std) for name, m in moments.items()}

    def values_of(name: str) -> np.ndarray:
        """Every training value of `name` (NaN included), one attribute at a time."""
        return np.concatenate(raw[name]) if raw[name] else np.zeros(0)

    fitted = [node for node in _all_nodes(sources) if isinstance(node, Op)
              and node.function in ("normalize", "quantile_bin")]
    for node in fitted:
        if node.function == "normalize":  # from the moments: at once, before the bins on them
            _fit_normalize(node, stats, params)
    bins = [node for node in fitted if node.function == "quantile_bin"]
    def fit(node: Op) -> list[float]:
        return _boundaries(node, values_of, params)

    if execution.parallel:  # sorts release the GIL: two at once
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


MERGE_EVERY = 16  # batches' distinct values held (per source, or coded pairs) before a merge


class _Vocabularies:
    """The distinct values of each vocabulary source, gathered batch by batch. The dictionaries
    of a batch's dictionary-encoded columns are coded together (features/codes.py) and their
    (source, code) pairs kept; other values are kept as arrays of distinct values. Both are
    merged every MERGE_EVERY batches."""

    def __init__(self) -> None:
        self.codes = ValueCodes()
        self.pairs: list[np.ndarray] = []
        self.arrays: dict[int, list[pa.Array]] = {}

    def collect(self, indices: list[int], sources: tuple[Node, ...], columns: Columns,
                params: dict[str, Any]) -> None:
        coded: list[tuple[int, pa.DictionaryArray]] = []
        for i in indices:
            value = evaluate(sources[i], columns, params)
            values = value.values if isinstance(value, TokenList) else value
            if pa.types.is_dictionary(values.type):
                coded.append((i, values))
                continue
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


def known_values(statistics: DatasetStatistics) -> dict[str, pa.Array]:
    """Every distinct value of each CATEGORICAL attribute whose datasource statistics list them
    all (not truncated): for fit_pipeline's `known`."""
    return {name: pa.array(list(a.values.value_counts), pa.string())
            for name, a in statistics.attributes.items()
            if a.attribute_type is AttributeType.CATEGORICAL and isinstance(a.values, CountedValues)
            and not a.values.truncated}


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


def _boundaries(node: Op, values_of: Callable[[str], np.ndarray],
                params: dict[str, Any]) -> list[float]:
    """The bin boundaries of a quantile_bin node (the normalize nodes inside it fitted)."""
    boundaries: list[float] = quantile_boundaries(_numeric_values(node.args[0], values_of, params),
                                                  node.n or 10).tolist()
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
