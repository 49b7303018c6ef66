"""The recipe's functions (recipes.md §7), each with both of its forms side by side: on a whole
batch (values.py's representations: float arrays, Arrow strings, TokenLists) and on one record
(record.py's: a float, a str or None, a list of tokens). The forms agree exactly, so Predict
answers what batch prediction writes; tests hold each pair to it on generated values.

A fitted function's parameters (a normalization's mean and std, a binning's boundaries) come
from fit.py, under the variable's canonical name.
"""

from __future__ import annotations

import functools
import math
import string
from bisect import bisect_right
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.features import tokens as tk
from openaml.ml.moments import standardize
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, TEXT, TOKENS, Node, Op

BatchValue = Any  # np.ndarray | pa.Array | tk.TokenList
RecordValue = Any  # float | str | None | list[str]

# Every ASCII punctuation mark and symbol is in Unicode's P* or S* categories (tk.PUNCT_EDGES).
_PUNCTUATION = string.punctuation


class Transform:
    """One recipe function: its value from its arguments' values, on a batch and on a record."""

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        raise NotImplementedError

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        raise NotImplementedError


class _Normalize(Transform):
    """(v - mean) / std; a zero std gives 0; a missing value stays missing (§7.7)."""

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        fitted = params[node.canonical]
        return normalize(args[0], fitted["mean"], fitted["std"])

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        fitted, value = params[node.canonical], args[0]
        if math.isnan(value):
            return value
        return (value - fitted["mean"]) / fitted["std"] if fitted["std"] > 0 else 0.0


class _QuantileBin(Transform):
    """The bin: the number of boundaries <= v, as a category ("0", "1"...); missing stays (§7.6)."""

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        return bin_values(args[0], np.asarray(params[node.canonical]["boundaries"]))

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        return None if math.isnan(args[0]) else str(bisect_right(params[node.canonical]["boundaries"], args[0]))


class _Ngram(Transform):
    """The tokens, then every run of 2..n consecutive tokens joined by a space (§7.3)."""

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        return tk.ngrams(args[0], node.n or 2)

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        tokens: list[str] = args[0]
        out = list(tokens)
        for k in range(2, (node.n or 2) + 1):
            out += [" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]
        return out


class _Osb(Transform):
    """Orthogonal sparse bigrams: each token with each of the n-1 after it, "_" per gap (§7.4)."""

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        return tk.osb(args[0], node.n or 2)

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        tokens: list[str] = args[0]
        return [tokens[i] + "_" * j + tokens[i + j]
                for j in range(1, node.n or 2) for i in range(len(tokens) - j)]


class _Cartesian(Transform):
    """Every pair of the two arguments' tokens, joined by "_" (§7.8)."""

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        return tk.cartesian(batch_tokens(node.args[0], args[0]), batch_tokens(node.args[1], args[1]), node.canonical)

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        left, right = record_tokens(node.args[0], args[0]), record_tokens(node.args[1], args[1])
        tk.record_pairs(node.canonical, len(left) * len(right))
        return [f"{a}_{b}" for a in left for b in right]


class _TextCase(Transform):
    """lowercase or no_punct, of a category or of each token; an empty result is dropped (a
    category becomes missing) (§7.5)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def batch(self, node: Op, args: list[BatchValue], params: dict[str, Any]) -> BatchValue:
        if node.args[0].kind == CATEGORICAL:
            return _map_categories(args[0], tk.lowered if self.name == "lowercase" else _strip_punct)
        return tk.lowercase(args[0]) if self.name == "lowercase" else tk.no_punct(args[0])

    def record(self, node: Op, args: list[RecordValue], params: dict[str, Any]) -> RecordValue:
        if node.args[0].kind != CATEGORICAL:
            return text_case(self.name, args[0])
        done = text_case(self.name, [args[0]]) if args[0] is not None else []
        return done[0] if done else None


TRANSFORMS: dict[str, Transform] = {
    "normalize": _Normalize(), "quantile_bin": _QuantileBin(), "ngram": _Ngram(), "osb": _Osb(),
    "cartesian": _Cartesian(), "lowercase": _TextCase("lowercase"), "no_punct": _TextCase("no_punct"),
}


def batch_tokens(node: Node, value: BatchValue) -> tk.TokenList:
    """A variable's batch values as tokens (a category or a binary value: one token)."""
    if node.kind in (TEXT, TOKENS):
        tokens: tk.TokenList = value
        return tokens
    if node.kind == BINARY:
        return tk.from_binary(value)
    return tk.from_values(value)


def record_tokens(node: Node, value: RecordValue) -> list[str]:
    """batch_tokens of one record's value."""
    if node.kind in (TEXT, TOKENS):
        tokens: list[str] = value
        return tokens
    if node.kind == BINARY:
        return [] if math.isnan(value) else ["1" if value > 0 else "0"]
    return [] if value is None else [value]


def text_case(name: str, texts: list[str]) -> list[str]:
    """lowercase or no_punct of each text, without the empty results: str methods for ASCII
    texts, the batch form's Arrow kernels (exactly its results) for any other."""
    if all(text.isascii() for text in texts):
        if name == "lowercase":
            return [text.lower() for text in texts]
        return [t for t in (text.strip(_PUNCTUATION) for text in texts) if t]
    values = pa.array(texts, pa.string())
    done = tk.lowered(values) if name == "lowercase" else pc.replace_substring_regex(values, tk.PUNCT_EDGES, "")
    return [t for t in done.to_pylist() if t]


def normalize(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(v - mean) / std; a zero std gives 0; NaN stays NaN (recipes.md §7.7)."""
    if std > 0:
        return standardize(values, mean, std)
    return np.where(np.isnan(values), np.nan, 0.0)


def bin_values(values: np.ndarray, boundaries: np.ndarray) -> pa.Array:
    """Bin index = number of boundaries <= v, as a dictionary-encoded category (§7.6)."""
    index = np.searchsorted(boundaries, values, side="right").astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(index, mask=np.isnan(values)),
                                          bin_labels(len(boundaries) + 1))


@functools.lru_cache(maxsize=64)
def bin_labels(count: int) -> pa.Array:
    """"0" .. str(count - 1): the categories of `count` bins (made once, not per batch)."""
    return pa.array([str(i) for i in range(count)], pa.string())


def _strip_punct(values: pa.Array) -> pa.Array:
    stripped = pc.replace_substring_regex(values, tk.PUNCT_EDGES, "")
    return pc.if_else(pc.equal(pc.utf8_length(stripped), 0), pa.scalar(None, pa.string()), stripped)


def _map_categories(column: pa.Array, fn: Any) -> pa.Array:
    """Apply a string function to each distinct value of a categorical column."""
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices, fn(column.dictionary))
    return fn(column)
