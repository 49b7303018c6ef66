"""Token lists: every token of every record of a batch, flattened, with its row index.

Text transformations of recipes.md §7 run here on whole batches with Arrow compute kernels and
NumPy index arithmetic; nothing loops over records in Python. ASCII text is split by the
compiled scan of the datasource statistics (data/token_counts.py), which hashes each token
once: its tokens come dictionary-encoded (each distinct token once, and the token of each
occurrence), so that lowercase, no_punct and the vocabulary lookup work on the distinct
tokens alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openaml.ml.data import token_counts
from openaml.ml.errors import InputError

# Pairs one cartesian() makes at once: about 1 GB of tokens, instead of a host's memory. A batch
# that would make more is evaluated in parts by its consumer (TooManyPairs).
MAX_CARTESIAN_PAIRS = 20_000_000
# Pairs one cartesian() may make for one record, in every path (training, scoring, Predict):
# 1,000 tokens by 1,000, about 0.15 s of a Predict's work.
MAX_RECORD_PAIRS = 1_000_000
# Tokens and token pairs all of a Predict record's variables may make together: a recipe of 40
# cartesians, each within MAX_RECORD_PAIRS, made a 90 KB record cost 8 CPU-seconds.
MAX_RECORD_TOKENS = 2 * MAX_RECORD_PAIRS
# Capitals whose lower case is not one character of its own: Σ is ς at the end of a word
# (Final_Sigma), İ is "i̇" (i and a combining dot above).
CONTEXT_CAPITALS = "[\u03a3\u0130]"
# Unicode punctuation (P*) and symbols (S*) at the start or end of a token (recipes.md §7.5).
PUNCT_EDGES = r"^[\p{P}\p{S}]+|[\p{P}\p{S}]+$"


class TooManyPairs(Exception):
    """cartesian() would make more than MAX_CARTESIAN_PAIRS pairs for the records of a batch
    (of two records at least): the consumer of its tokens takes them for parts of the batch
    (Columns.halves)."""


class RecordTooLarge(InputError):
    """A record's variables would take more than MAX_RECORD_PAIRS token pairs."""


def record_pairs(function: str, pairs: int) -> None:
    """Refuse a record whose cartesian() (`function`, canonical) would make more than
    MAX_RECORD_PAIRS token pairs."""
    if pairs > MAX_RECORD_PAIRS:
        raise RecordTooLarge(
            f"{function} would make {pairs:,} token pairs for one record (at most {MAX_RECORD_PAIRS:,}): "
            "its arguments hold too many tokens; use fewer tokens (e.g. a categorical or a binned "
            "variable) on one side")


@dataclass(frozen=True)
class TokenList:
    """values[i] belongs to record rows[i]; a record may own any number of tokens."""

    values: pa.Array  # string, or dictionary-encoded strings; no nulls
    rows: np.ndarray  # int64, one per value
    n_rows: int

    def keep(self, mask: np.ndarray) -> TokenList:
        return TokenList(self.values.filter(pa.array(mask)), self.rows[mask], self.n_rows)

    def sliced(self, start: int, stop: int) -> TokenList:
        """The tokens of records [start, stop), numbered from 0."""
        mask = (self.rows >= start) & (self.rows < stop)
        return TokenList(self.values.filter(pa.array(mask)), self.rows[mask] - start, stop - start)

    def mapped(self, function: Callable[[pa.Array], pa.Array]) -> TokenList:
        """Each token mapped by the string function `function` (of the distinct tokens alone
        when they are dictionary-encoded), without the tokens it leaves empty."""
        values = self.values
        if pa.types.is_dictionary(values.type):
            values = pa.DictionaryArray.from_arrays(values.indices, function(values.dictionary))
        else:
            values = function(values)
        return TokenList(values, self.rows, self.n_rows).nonempty()

    def nonempty(self) -> TokenList:
        """Without its empty tokens."""
        values = self.values
        coded = pa.types.is_dictionary(values.type)
        empty = pc.equal(pc.utf8_length(values.dictionary if coded else values), 0).to_numpy(zero_copy_only=False)
        if not empty.any():
            return self
        return self.keep(~(empty[values.indices.to_numpy()] if coded else empty))


def plain(column: pa.Array) -> pa.Array:
    """A string column without dictionary encoding, of Arrow's string type (a large_string one,
    which Arrow's joins cannot mix with strings, is cast: batches hold far less than 2 GiB)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column.cast(pa.string()) if pa.types.is_large_string(column.type) else column


def tokenize(column: pa.Array) -> TokenList:
    """Split TEXT values on runs of white space; missing values give no tokens. ASCII text
    is scanned by one compiled pass (its tokens dictionary-encoded), any other split by
    Arrow's kernel: the same tokens."""
    column = plain(column)
    scanned = token_counts.tokenize(column)
    if scanned is not None:
        rows = np.repeat(np.arange(len(column), dtype=np.int64), scanned.words)
        ids = scanned.ids
        if ids.base is not None and ids.base.nbytes > 2 * ids.nbytes:  # the scan's room: let it go
            ids = ids.copy()
        return TokenList(pa.DictionaryArray.from_arrays(pa.array(ids, pa.int32()), scanned.tokens), rows,
                         len(column))
    lists = pc.utf8_split_whitespace(column)
    rows = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
    return TokenList(pc.list_flatten(lists), rows, len(column)).nonempty()


def from_values(column: pa.Array) -> TokenList:
    """One token per non-missing value (CATEGORICAL), for cartesian products."""
    column = plain(column)
    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    return TokenList(column.filter(pa.array(valid)), rows, len(column))


def from_binary(values: np.ndarray) -> TokenList:
    """BINARY values (1.0, 0.0, NaN) as tokens "1"/"0" (recipes.md §7.8 [Choice])."""
    rows = np.flatnonzero(~np.isnan(values))
    labels = np.where(values[rows] > 0, "1", "0")
    return TokenList(pa.array(labels, pa.string()), rows, len(values))


def lowercase(tokens: TokenList) -> TokenList:
    return tokens.mapped(lowered)


def lowered(values: pa.Array) -> pa.Array:
    """Unicode's default lower case of each string (recipes.md §7.4): Arrow's utf8_lower maps
    each character alone, which is that case but for two capitals (CONTEXT_CAPITALS), so the
    strings holding one are lowered by Python's str.lower instead."""
    done = pc.utf8_lower(values)
    special = pc.fill_null(pc.match_substring_regex(values, CONTEXT_CAPITALS), False)
    if not pc.any(special).as_py():
        return done
    fixed = [text.lower() for text in values.filter(special).to_pylist()]
    return pc.replace_with_mask(done, special, pa.array(fixed, done.type))


def no_punct(tokens: TokenList) -> TokenList:
    return tokens.mapped(lambda values: pc.replace_substring_regex(values, PUNCT_EDGES, ""))


def ngrams(tokens: TokenList, n: int) -> TokenList:
    """Unigrams plus every contiguous 2..n-gram within a record, joined by one space."""
    words = plain(tokens.values)
    values, rows = [words], [tokens.rows]
    current = words
    for k in range(2, n + 1):
        m = len(words) - k + 1
        if m <= 0:
            break
        current = pc.binary_join_element_wise(current[:m], words[k - 1:], " ")
        same = tokens.rows[:m] == tokens.rows[k - 1:]
        values.append(current.filter(pa.array(same)))
        rows.append(tokens.rows[:m][same])
    return _concat(values, rows, tokens.n_rows)


def osb(tokens: TokenList, n: int) -> TokenList:
    """Orthogonal sparse bigrams: token[i] + "_" * j + token[i+j] for j = 1..n-1 (§7.3)."""
    words = plain(tokens.values)
    values, rows = [], []
    for j in range(1, n):
        m = len(words) - j
        if m <= 0:
            break
        same = tokens.rows[:m] == tokens.rows[j:]
        joined = pc.binary_join_element_wise(words[:m], words[j:], "_" * j)
        values.append(joined.filter(pa.array(same)))
        rows.append(tokens.rows[:m][same])
    return _concat(values, rows, tokens.n_rows)


def cartesian(left: TokenList, right: TokenList, function: str = "cartesian()") -> TokenList:
    """Every (left token, right token) pair of each record, joined by "_" (§7.8); RecordTooLarge
    past MAX_RECORD_PAIRS for a record (`function` names it), TooManyPairs past
    MAX_CARTESIAN_PAIRS for the batch."""
    n = left.n_rows
    lc = np.bincount(left.rows, minlength=n)
    rc = np.bincount(right.rows, minlength=n)
    lstart = np.concatenate(([0], np.cumsum(lc)[:-1]))
    rstart = np.concatenate(([0], np.cumsum(rc)[:-1]))
    pairs = lc * rc
    record_pairs(function, int(pairs.max()) if n else 0)
    total = int(pairs.sum())
    if total > MAX_CARTESIAN_PAIRS and n > 1:  # (one record: MAX_RECORD_PAIRS bounds it)
        raise TooManyPairs
    row = np.repeat(np.arange(n), pairs)
    offset = np.arange(total) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    li = lstart[row] + offset // np.maximum(rc[row], 1)
    ri = rstart[row] + offset % np.maximum(rc[row], 1)
    # TokenLists are grouped by row in row order, so per-row starts index them directly.
    lvals = plain(_row_sorted(left).values.take(pa.array(li)))
    rvals = plain(_row_sorted(right).values.take(pa.array(ri)))
    return TokenList(pc.binary_join_element_wise(lvals, rvals, "_"), row, n)


def _row_sorted(tokens: TokenList) -> TokenList:
    if len(tokens.rows) < 2 or bool(np.all(tokens.rows[1:] >= tokens.rows[:-1])):
        return tokens
    order = np.argsort(tokens.rows, kind="stable")
    return TokenList(tokens.values.take(pa.array(order)), tokens.rows[order], tokens.n_rows)


def _concat(values: list[pa.Array], rows: list[np.ndarray], n_rows: int) -> TokenList:
    if not values:
        return TokenList(pa.array([], pa.string()), np.zeros(0, np.int64), n_rows)
    return TokenList(pa.concat_arrays(values), np.concatenate(rows), n_rows)
