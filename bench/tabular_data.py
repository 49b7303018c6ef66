"""The generated tabular data: a bank-marketing-like CSV and its datasource schema.

`write_dataset` writes it (seeded, vectorised): 9 NUMERIC inputs (an age, skewed amounts,
durations and counts, a rate, a day; a few percent empty fields in three), 7 CATEGORICAL with
5-50 levels of skewed frequency, 3 BINARY yes/no, 1 short TEXT (2-8 words, some values quoted
for a comma inside) and the BINARY target `y`, about 10 % positives, which depends on thresholds
and U shapes of the numbers (so quantile bins beat raw values), on the categories, the yes/no
inputs and a few words. About 145 bytes a row.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GENERATOR = "v1"  # part of a generated file's name: change it when the data changes
SEED = 20
CHUNK_ROWS = 250_000
NUMERIC = ("age", "balance", "duration", "campaign", "pdays", "previous", "income", "rate", "day")
CATEGORICAL = {
    "job": ("admin.", "blue-collar", "technician", "services", "management", "retired",
            "entrepreneur", "self-employed", "housemaid", "unemployed", "student", "unknown"),
    "marital": ("married", "single", "divorced", "widowed", "unknown"),
    "education": ("university", "high.school", "basic.9y", "professional", "basic.4y",
                  "basic.6y", "unknown", "illiterate"),
    "contact": ("cellular", "telephone", "unknown", "email", "branch"),
    "month": ("may", "july", "august", "june", "november", "april", "february", "october",
              "september", "march", "january", "december"),
    "region": tuple(f"region{i:02d}" for i in range(1, 51)),
    "product": tuple(f"product{i:02d}" for i in range(1, 21)),
}
BINARY = {"default": 0.03, "housing": 0.55, "loan": 0.16}  # share of "yes"
TEXT, TARGET = "notes", "y"
COLUMNS = (*NUMERIC, *CATEGORICAL, *BINARY, TEXT, TARGET)
MISSING = {"balance": 0.03, "pdays": 0.05, "income": 0.02}  # share of empty fields
SIGNAL_WORDS = {"interested": 0.9, "callback": 0.7, "savings": 0.6, "declined": -0.9,
                "complaint": -0.7, "busy": -0.5}
COMMON_WORDS = ("call", "client", "said", "will", "the", "to", "and", "no", "not", "about",
                "rate", "account", "deposit", "term", "branch", "phone", "email", "wants", "info",
                "asked", "next", "week", "month", "good", "time", "send", "offer", "spoke",
                "with", "wife", "husband", "pension", "loan", "car", "house", "visit", "mail",
                "letter", "number", "wrong")
COMMA_WORDS = ("late", "again", "maybe", "later", "thanks")  # also drawn as "late," etc.
VOCABULARY_SIZE = 300
INTERCEPT = -3.35  # puts 10 % of the rows positive (found by bisection on 400,000 rows)


def vocabulary() -> tuple[list[str], np.ndarray]:
    """The words, most frequent first, and for each the index of its form without a comma."""
    syllables = np.random.default_rng(3)
    known = set(COMMON_WORDS) | set(SIGNAL_WORDS) | set(COMMA_WORDS)
    wanted = VOCABULARY_SIZE - len(known) - len(COMMA_WORDS)
    made: list[str] = []
    while len(made) < wanted:
        word = "".join(syllables.choice(list("bdfgklmnprstvz")) + syllables.choice(list("aeiou"))
                       for _ in range(int(syllables.integers(2, 5))))
        if word not in known:
            known.add(word)
            made.append(word)
    words = [*COMMON_WORDS[:8], *SIGNAL_WORDS, *COMMON_WORDS[8:], *COMMA_WORDS,
             *(w + "," for w in COMMA_WORDS), *made]
    plain = np.arange(len(words))
    for word in COMMA_WORDS:
        plain[words.index(word + ",")] = words.index(word)
    return words, plain


def skewed_codes(rng: np.random.Generator, n: int, levels: int, skew: float = 1.1) -> np.ndarray:
    """Level numbers 0..levels-1 with Zipf-like frequencies (level 0 the most frequent)."""
    weights = np.cumsum(1.0 / np.arange(1, levels + 1) ** skew)
    return np.minimum(np.searchsorted(weights / weights[-1], rng.random(n), side="right"),
                      levels - 1)


def category_effects() -> dict[str, np.ndarray]:
    """Each category level's contribution to the target's log-odds (the same for every seed)."""
    rng = np.random.default_rng(7)
    return {name: rng.normal(0.0, 0.45, len(levels)) for name, levels in CATEGORICAL.items()}


@dataclass
class Inputs:
    """The drawn inputs of some rows, before they are written as text."""

    numbers: dict[str, np.ndarray]  # float64, NaN where the field is empty
    codes: dict[str, np.ndarray]  # level number of each CATEGORICAL value
    yes: dict[str, np.ndarray]  # each BINARY value
    words: np.ndarray  # (rows, 8) word numbers, of which a row uses the first 2-8
    used: np.ndarray  # (rows, 8) whether the row uses that word


def draw_inputs(rng: np.random.Generator, n: int) -> Inputs:
    """`n` rows of inputs: skewed numbers with some empty fields, levels, yes/no, words."""
    numbers = {"age": np.minimum(18 + rng.gamma(5.0, 4.6, n), 95).astype(np.int64),
               "balance": np.round(rng.lognormal(7.0, 1.2, n) - 400, 2),
               "duration": rng.exponential(260, n).astype(np.int64) + 1,
               "campaign": rng.geometric(0.38, n),
               "pdays": rng.exponential(120, n).astype(np.int64),
               "previous": rng.poisson(0.4, n),
               "income": np.round(rng.lognormal(10.5, 0.6, n)),
               "rate": np.round(0.6 + 4.4 * rng.beta(0.7, 0.9, n), 4),
               "day": rng.integers(1, 32, n)}
    numbers = {name: v.astype(np.float64) for name, v in numbers.items()}
    for name, share in MISSING.items():
        numbers[name][rng.random(n) < share] = np.nan
    codes = {name: skewed_codes(rng, n, len(levels)) for name, levels in CATEGORICAL.items()}
    yes = {name: rng.random(n) < share for name, share in BINARY.items()}
    words, plain = vocabulary()
    counts = rng.integers(2, 9, n)
    ids = skewed_codes(rng, n * 8, len(words), skew=0.8).reshape(n, 8)
    ends = (np.arange(n), counts - 1)
    ids[ends] = plain[ids[ends]]  # no comma after the last word
    return Inputs(numbers, codes, yes, ids, np.arange(8) < counts[:, None])


def log_odds(rows: Inputs) -> np.ndarray:
    """The target's log-odds: steps and U shapes of the numbers (an empty field says something
    too), one effect per level, yes/no and signal words."""
    age, balance, duration, campaign, pdays, previous, income, rate, day = (
        rows.numbers[name] for name in NUMERIC)
    z = (0.8 * (age <= 24) + 1.2 * (age >= 61)
         + 0.5 * (balance > 2500) - 0.4 * (balance < 0) + 0.3 * np.isnan(balance)
         + 0.9 * np.log1p(duration / 120) + 0.8 * (duration > 600)
         - 0.6 * (campaign >= 4) - 0.15 * np.minimum(campaign, 6)
         + 1.0 * (pdays < 30) + 0.4 * ((pdays >= 30) & (pdays < 90)) - 0.2 * np.isnan(pdays)
         + 0.6 * (previous >= 1) + 0.2 * (previous >= 3)
         + 0.35 * np.nan_to_num(np.minimum(((np.log(income) - 10.5) / 0.6) ** 2, 4))
         + 1.3 * (rate < 1.2) + 0.5 * ((rate >= 1.2) & (rate < 2.0)) - 0.3 * (rate > 4)
         + 0.35 * np.sin(2 * np.pi * day / 31)
         - 0.5 * rows.yes["default"] - 0.4 * rows.yes["housing"] - 0.3 * rows.yes["loan"]
         + INTERCEPT)
    for name, effect in category_effects().items():
        z += effect[rows.codes[name]]
    words, _ = vocabulary()
    for word, weight in SIGNAL_WORDS.items():
        z += weight * ((rows.words == words.index(word)) & rows.used).any(axis=1)
    return z


def draw_rows(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    """`n` rows as string columns (null: an empty field), the target drawn from its log-odds
    plus noise."""
    rows = draw_inputs(rng, n)
    target = rng.random(n) < 1 / (1 + np.exp(-(log_odds(rows) + rng.normal(0.0, 0.6, n))))
    columns = input_columns(rng, rows)
    columns[TARGET] = pc.take(pa.array(["no", "yes"]), pa.array(target.astype(np.int8)))
    return columns


def input_columns(rng: np.random.Generator, rows: Inputs) -> dict[str, pa.Array]:
    """The inputs as string columns (null: an empty field); some texts capitalized."""
    n = len(rows.used)
    columns = {name: pa.array(v, from_pandas=True).cast(pa.string())  # 36.0 is written 36
               for name, v in rows.numbers.items()}
    columns |= {name: pc.take(pa.array(levels), pa.array(rows.codes[name]))
                for name, levels in CATEGORICAL.items()}
    no_yes = pa.array(["no", "yes"])
    columns |= {name: pc.take(no_yes, pa.array(v.astype(np.int8))) for name, v in rows.yes.items()}
    words, _ = vocabulary()
    offsets = pa.array(np.concatenate([[0], np.cumsum(rows.used.sum(axis=1))]).astype(np.int32))
    text = pc.binary_join(pa.ListArray.from_arrays(
        offsets, pc.take(pa.array(words), rows.words[rows.used])), " ")
    text = pc.if_else(pa.array(rng.random(n) < 0.3), pc.utf8_capitalize(text), text)
    columns[TEXT] = pc.if_else(pc.match_substring(text, ","),
                               pc.binary_join_element_wise('"', text, '"', ""), text)
    return columns


def csv_bytes(columns: dict[str, pa.Array]) -> memoryview:
    """The rows as CSV lines (empty fields for nulls), each ending with a newline."""
    lines = pc.binary_join_element_wise(*(columns[c] for c in COLUMNS), ",",
                                        null_handling="replace", null_replacement="")
    return string_bytes(pc.binary_join_element_wise(lines, "", "\n"))


def string_bytes(array: pa.Array) -> memoryview:
    """The values of a string array back to back (no copy)."""
    offsets = np.frombuffer(array.buffers()[1], np.int32)[array.offset:array.offset + len(array) + 1]
    return memoryview(array.buffers()[2])[offsets[0]:offsets[-1]]


def schema_json(target_type: str = "BINARY") -> str:
    """The datasource schema: the right attributeType for every column, target `y`, a header."""
    kinds = ({n: "NUMERIC" for n in NUMERIC} | {n: "CATEGORICAL" for n in CATEGORICAL}
             | {n: "BINARY" for n in BINARY} | {TEXT: "TEXT", TARGET: target_type})
    return json.dumps({"version": "1.0", "rowId": None, "rowWeight": None,
                       "targetAttributeName": TARGET, "dataFormat": "CSV",
                       "dataFileContainsHeader": True,
                       "attributes": [{"attributeName": c, "attributeType": kinds[c]}
                                      for c in COLUMNS],
                       "excludedAttributeNames": []}, indent=2)


def write_dataset(folder: Path, rows: int, seed: int = SEED) -> dict[str, Any]:
    """The CSV of `rows` rows and its schema in `folder`; an existing file is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tabular-{GENERATOR}-{seed}-{rows}.csv"
    schema = path.with_suffix(".schema.json")
    seconds = None
    if not path.exists():
        start = time.perf_counter()
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as out:
            out.write((",".join(COLUMNS) + "\n").encode())
            for index, first in enumerate(range(0, rows, CHUNK_ROWS)):
                out.write(csv_bytes(draw_rows(np.random.default_rng([seed, index]),
                                              min(CHUNK_ROWS, rows - first))))
        partial.rename(path)
        seconds = time.perf_counter() - start
    schema.write_text(schema_json() + "\n")
    return {"path": path, "schema": schema, "rows": rows, "generate_s": seconds,
            "mb": path.stat().st_size / 1e6, "bytes_per_row": path.stat().st_size / rows}
