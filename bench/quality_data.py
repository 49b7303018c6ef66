"""Generated tables of the quality benchmark beyond the tabular benchmark's bank table.

Each draws the bank table's inputs (tabular_data.py: skewed numbers with empty fields,
categories of skewed frequency, yes/no, a short text) and a target of another kind, noisy
enough that no model separates it:
- `rare_positives`: BINARY, about 2.5 % positives (the bank table's log-odds, shifted);
- `many_classes`: MULTICLASS, 24 classes of unequal size, each with its own effects of the
  number ranges, categories and words, drawn by a softmax of those scores;
- `amounts`: REGRESSION, an amount with steps and curves in the numbers, category and word
  effects, and heavy-tailed noise (Student's t, 3 degrees of freedom).
The data are the same for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tabular_data import (
    CATEGORICAL,
    NUMERIC,
    TARGET,
    Inputs,
    csv_bytes,
    draw_inputs,
    input_columns,
    log_odds,
    vocabulary,
)

RARE_SHIFT = -1.6  # on the bank table's log-odds: about 2.5 % positives instead of 10 %
CLASSES = 24
WORDS_PER_CLASS = 4


def rare_positives(rng: np.random.Generator, rows: Inputs) -> pa.Array:
    z = log_odds(rows) + RARE_SHIFT + rng.normal(0.0, 0.6, len(rows.used))
    return pc.take(pa.array(["no", "yes"]), pa.array((rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(np.int8)))


def ranks(rows: Inputs) -> np.ndarray:
    """Each number's quartile within the rows (-1 for an empty field), as (rows, numbers)."""
    out = np.full((len(rows.used), len(NUMERIC)), -1)
    for j, name in enumerate(NUMERIC):
        values = rows.numbers[name]
        present = ~np.isnan(values)
        edges = np.quantile(values[present], [0.25, 0.5, 0.75])
        out[present, j] = np.searchsorted(edges, values[present])
    return out


def many_classes(rng: np.random.Generator, rows: Inputs) -> pa.Array:
    effects = np.random.default_rng(11)  # the same effects for every seed
    n = len(rows.used)
    scores = np.tile(effects.normal(0.0, 0.5, CLASSES), (n, 1))  # classes of unequal size
    quartiles = ranks(rows)
    for j in range(len(NUMERIC)):
        table = effects.normal(0.0, 0.9, (5, CLASSES))  # per quartile, and for an empty field
        scores += table[quartiles[:, j]]
    for name, levels in CATEGORICAL.items():
        scores += effects.normal(0.0, 0.9, (len(levels), CLASSES))[rows.codes[name]]
    words, _ = vocabulary()
    signal = effects.choice(np.arange(8, len(words)), (CLASSES, WORDS_PER_CLASS), replace=False)
    for c in range(CLASSES):
        scores[:, c] += 2.0 * (np.isin(rows.words, signal[c]) & rows.used).any(axis=1)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    drawn = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(0, CLASSES - 1)
    return pa.array([f"class{c:02d}" for c in drawn])


def amounts(rng: np.random.Generator, rows: Inputs) -> pa.Array:
    effects = np.random.default_rng(13)
    age, balance, duration, campaign, _, previous, income, rate, day = (rows.numbers[k] for k in NUMERIC)
    y = (120 + 40 * (age >= 60) - 25 * (age < 25) + 15 * np.log1p(np.nan_to_num(np.maximum(balance, 0)) / 500)
         + 30 * np.tanh(duration / 300) - 6 * np.minimum(campaign, 8) + 12 * (previous >= 1)
         + 20 * np.nan_to_num((np.log(income) - 10.5) / 0.6) - 18 * (rate > 3.5) + 8 * np.cos(2 * np.pi * day / 31))
    for name, levels in CATEGORICAL.items():
        y += effects.normal(0.0, 12.0, len(levels))[rows.codes[name]]
    words, _ = vocabulary()
    weight = effects.normal(0.0, 6.0, len(words))
    y += (weight[rows.words] * rows.used).sum(axis=1)
    y += 15 * rng.standard_t(3, len(y))
    return pa.array(np.round(y, 2)).cast(pa.string())


TARGETS: dict[str, tuple[str, Callable[[np.random.Generator, Inputs], pa.Array]]] = {
    "rare_positives": ("BINARY", rare_positives),
    "many_classes": ("CATEGORICAL", many_classes),
    "amounts": ("NUMERIC", amounts),
}


def table(name: str, rows: int, seed: int) -> tuple[str, bytes]:
    """The CSV (with its header) of `rows` rows of generated table `name`, and its target's
    attribute type."""
    from tabular_data import COLUMNS

    target_type, target = TARGETS[name]
    rng = np.random.default_rng([seed, rows])
    inputs = draw_inputs(rng, rows)
    columns = input_columns(rng, inputs)
    columns[TARGET] = target(rng, inputs)
    return target_type, (",".join(COLUMNS) + "\n").encode() + bytes(csv_bytes(columns))
