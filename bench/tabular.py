"""Tabular data as Amazon ML's users had it: a BINARY model with the default recipe, side by side.

`write_dataset` generates a bank-marketing-like CSV (seeded, vectorised): 9 NUMERIC inputs (an
age, skewed amounts, durations and counts, a rate, a day; a few percent empty fields in three),
7 CATEGORICAL with 5-50 levels of skewed frequency, 3 BINARY yes/no, 1 short TEXT (2-8 words,
some values quoted for a comma inside) and the BINARY target `y`, about 10 % positives, which
depends on thresholds and U shapes of the numbers (so quantile bins beat raw values), on the
categories, the yes/no inputs and a few words. About 145 bytes a row.

Every contender trains on the same 70 % of the rows and scores the other 30 %: OpenAML's random
DataRearrangement, which the do-it-yourself pipelines compute with OpenAML's own selection code.
They read the file with pyarrow (declared types), one-hot the categories and yes/no values, cut
each number into 50 quantile bins of the training part (missing: a bin of its own), add a bag of
lowercased words, then train scikit-learn's SGDClassifier (log loss) or Vowpal Wabbit (logistic)
for the same number of passes. OpenAML runs as a real `openaml serve` with no recipe given.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from pipeline import BUCKET, POLL_S, Server, job_times, ml_client, running, stage_timer
from scipy import sparse

GENERATOR = "v1"  # part of a generated file's name: change it when the data changes
SEED = 20
SPLIT_SEED = "openaml-bench"
CHUNK_ROWS = 250_000
BINS = 50
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


# --- the data ---------------------------------------------------------------------------------

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
    columns[TARGET] = pc.take(no_yes, pa.array(target.astype(np.int8)))
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


def schema_json() -> str:
    """The datasource schema: the right attributeType for every column, target `y`, a header."""
    kinds = ({n: "NUMERIC" for n in NUMERIC} | {n: "CATEGORICAL" for n in CATEGORICAL}
             | {n: "BINARY" for n in BINARY} | {TEXT: "TEXT", TARGET: "BINARY"})
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


# --- the split and the do-it-yourself pipelines ------------------------------------------------

COLUMN_TYPES = ({n: pa.float64() for n in NUMERIC}
                | {n: pa.string() for n in (*CATEGORICAL, *BINARY, TEXT, TARGET)})


def split_text(complement: bool) -> str:
    """The DataRearrangement of the training part (with `complement`, the evaluation part)."""
    return json.dumps({"splitting": {"percentBegin": 0, "percentEnd": 70, "complement": complement,
                                     "strategy": "random",
                                     "strategyParams": {"randomSeed": SPLIT_SEED}}})


def training_rows(path: Path, file_key: str) -> np.ndarray:
    """Mask of the rows OpenAML's training datasource selects, by its own code on the records'
    byte offsets (the generated file has no line break inside a field and no empty line)."""
    from openaml.ml.data.rearrangement import parse_rearrangement

    ends = np.flatnonzero(np.fromfile(path, dtype=np.uint8) == ord("\n"))
    starts = (ends[:-1] + 1).astype(np.int64)  # record i begins after line i's newline (header 0)
    return parse_rearrangement(split_text(False)).select_random(file_key, starts)


def read_table(path: Path, columns: tuple[str, ...] = COLUMNS) -> pa.Table:
    """The CSV by pyarrow's multithreaded reader, every column of its declared type."""
    return csv.read_csv(path, convert_options=csv.ConvertOptions(
        column_types=COLUMN_TYPES, include_columns=list(columns)))


def floor_parse(path: Path) -> dict[str, Any]:
    """The floor: the pyarrow parse of the whole file."""
    start = time.perf_counter()
    rows = read_table(path).num_rows
    return {"seconds": time.perf_counter() - start, "rows": rows}


@dataclass
class Features:
    """Rows as feature numbers: one per fixed column (a bin, level or yes/no), then their words."""

    fixed: np.ndarray  # (rows, 19) feature numbers: NUMERIC bins, CATEGORICAL, BINARY
    token_rows: np.ndarray  # the row of each distinct word of a row, ascending
    tokens: np.ndarray  # that word's feature number
    names: list[str]  # feature names by number (no white space, colon or bar: VW-safe)
    labels: np.ndarray  # the target, 0/1


def encode(table: pa.Table, train: np.ndarray) -> Features:
    """50 quantile bins per number (edges from the training rows; missing: a bin of its own),
    one-hot levels and yes/no values, the distinct lowercased words of the text."""
    names: list[str] = []
    fixed = []
    for name in NUMERIC:
        values = table[name].to_numpy()  # empty fields are NaN
        known = ~np.isnan(values)
        edges = np.unique(np.quantile(values[train & known], np.linspace(0, 1, BINS + 1)[1:-1]))
        fixed.append(len(names) + np.where(known, np.searchsorted(edges, values, side="right"),
                                           len(edges) + 1))
        names += [f"{name}_{i}" for i in range(len(edges) + 1)] + [f"{name}_missing"]
    for name in (*CATEGORICAL, *BINARY):
        levels = pc.dictionary_encode(table[name].combine_chunks())
        fixed.append(len(names) + levels.indices.to_numpy())
        names += [f"{name}={v}" for v in levels.dictionary.to_pylist()]
    words = pc.utf8_split_whitespace(pc.utf8_lower(table[TEXT].combine_chunks()))
    vocabulary = pc.dictionary_encode(pc.list_flatten(words))
    rows = pc.list_parent_indices(words).to_numpy()
    ids = vocabulary.indices.to_numpy()
    repeated = np.zeros(len(ids), dtype=bool)
    for back in range(1, 8):  # a row has at most 8 words: compare each with the 7 before it
        repeated[back:] |= (ids[back:] == ids[:-back]) & (rows[back:] == rows[:-back])
    labels = pc.equal(table[TARGET], "yes").to_numpy(zero_copy_only=False).astype(np.int8)
    return Features(np.column_stack(fixed).astype(np.int32), rows[~repeated],
                    len(names) + ids[~repeated], names + vocabulary.dictionary.to_pylist(), labels)


def feature_matrix(features: Features) -> sparse.csr_matrix:
    """The features as a 0/1 CSR matrix, one row per record."""
    count, width = features.fixed.shape
    words = np.bincount(features.token_rows, minlength=count)
    indptr = np.concatenate([[0], np.cumsum(width + words)])
    indices = np.empty(indptr[-1], dtype=np.int32)
    indices[(indptr[:-1, None] + np.arange(width)).ravel()] = features.fixed.ravel()
    first_word = np.concatenate([[0], np.cumsum(words)])
    rank = np.arange(len(features.tokens)) - first_word[features.token_rows]
    indices[indptr[features.token_rows] + width + rank] = features.tokens
    return sparse.csr_matrix((np.ones(len(indices)), indices, indptr),
                             shape=(count, len(features.names)))


def write_scores(path: Path, scores: np.ndarray) -> None:
    """Batch output as OpenAML writes it: bestAnswer (threshold 0.5) and score."""
    csv.write_csv(pa.table({"bestAnswer": (scores >= 0.5).astype(np.int8), "score": scores}), path)


def sklearn_pipeline(path: Path, train: np.ndarray, work: Path, passes: int) -> dict[str, Any]:
    """Read, encode, SGDClassifier(log loss) for `passes` epochs, AUC, batch scores as CSV."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score

    stages, lap = stage_timer()
    table = read_table(path)
    lap("read")
    features = encode(table, train)
    matrix, labels = feature_matrix(features), features.labels
    fit, held = matrix[train], matrix[~train]
    lap("features")
    model = SGDClassifier(loss="log_loss", max_iter=passes, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(fit, labels[train])
    lap("train")
    auc = roc_auc_score(labels[~train], model.decision_function(held))
    lap("evaluate")
    write_scores(work / "sklearn-batch.csv", model.predict_proba(held)[:, 1])
    lap("batch")
    return {"seconds": sum(stages.values()), "stages": stages, "auc": float(auc),
            "features": len(features.names)}


def vw_lines(features: Features) -> pa.Array:
    """VW text lines `label |n bins |c levels |b yes/no |t words`, label 1 or -1."""
    names = pa.array(features.names)
    parts: list[Any] = [pc.take(pa.array(["-1", "1"]), pa.array(features.labels))]
    first = 0
    for namespace, columns in (("n", NUMERIC), ("c", CATEGORICAL), ("b", BINARY)):
        parts.append(f"|{namespace}")
        parts += [pc.take(names, pa.array(features.fixed[:, j]))
                  for j in range(first, first + len(columns))]
        first += len(columns)
    counts = np.bincount(features.token_rows, minlength=len(features.fixed))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    words = pc.take(names, pa.array(features.tokens))
    parts += ["|t", pc.binary_join(pa.ListArray.from_arrays(offsets, words), " ")]
    return pc.binary_join_element_wise(*parts, " ")


def write_lines(path: Path, lines: pa.Array) -> None:
    with open(path, "wb") as out:
        out.write(string_bytes(pc.binary_join_element_wise(lines, "", "\n")))


def vw_pipeline(path: Path, train: np.ndarray, work: Path, passes: int) -> dict[str, Any]:
    """Read, encode, VW text files, logistic loss for `passes` passes, AUC, batch scores."""
    from sklearn.metrics import roc_auc_score
    from vowpalwabbit import Workspace

    stages, lap = stage_timer()
    table = read_table(path)
    lap("read")
    features = encode(table, train)
    lines = vw_lines(features)
    files = {"train": work / "train.vw", "eval": work / "eval.vw"}
    write_lines(files["train"], pc.filter(lines, pa.array(train)))
    write_lines(files["eval"], pc.filter(lines, pa.array(~train)))
    lap("features")
    model, cache = work / "model.vw", work / "train.cache"
    cache.unlink(missing_ok=True)
    learner = Workspace(f"--loss_function logistic --passes {passes} --holdout_off -k "
                        f"--cache_file {cache} -d {files['train']} -f {model} --quiet")
    learner.run_parser()
    learner.finish()
    lap("train")
    auc = roc_auc_score(features.labels[~train], vw_predict(model, files["eval"], work / "eval.pred"))
    lap("evaluate")
    vw_predict(model, files["eval"], work / "batch.pred", "--link logistic")
    lap("batch")
    return {"seconds": sum(stages.values()), "stages": stages, "auc": float(auc)}


def vw_predict(model: Path, data: Path, out: Path, flags: str = "") -> np.ndarray:
    """A saved VW model's predictions of `data` (margins; probabilities with --link logistic)."""
    from vowpalwabbit import Workspace

    learner = Workspace(f"-t -i {model} -d {data} -p {out} --quiet {flags}")
    learner.run_parser()
    learner.finish()
    return csv.read_csv(out, read_options=csv.ReadOptions(autogenerate_column_names=True),
                        parse_options=csv.ParseOptions(delimiter=" "))[0].to_numpy()


# --- OpenAML through the API ---------------------------------------------------------------------

ACTIVE = ("PENDING", "INPROGRESS")
IDS = {"ds-train": "ds-tabular-train", "ds-eval": "ds-tabular-eval", "model": "ml-tabular",
       "evaluation": "ev-tabular", "batch": "bp-tabular"}


def openaml_workflow(server: Server, data: dict[str, Any], passes: int,
                     timeout: float = 3600) -> dict[str, Any]:
    """Both datasources (statistics on), a BINARY model with no recipe, its evaluation and a
    batch prediction of the evaluation rows, created at once; polled every POLL_S."""
    ml = ml_client(server.url)
    location = server.put(f"input/{data['path'].name}", data["path"])
    schema = server.put("config/tabular.schema.json", data["schema"])
    start = time.perf_counter()
    for part, complement in (("train", False), ("eval", True)):
        ml.create_data_source_from_s3(
            DataSourceId=IDS[f"ds-{part}"], DataSourceName=f"tabular {part}",
            DataSpec={"DataLocationS3": location, "DataSchemaLocationS3": schema,
                      "DataRearrangement": split_text(complement)}, ComputeStatistics=True)
    ml.create_ml_model(MLModelId=IDS["model"], MLModelName="tabular", MLModelType="BINARY",
                       TrainingDataSourceId=IDS["ds-train"],
                       Parameters={"sgd.maxPasses": str(passes)})
    ml.create_evaluation(EvaluationId=IDS["evaluation"], MLModelId=IDS["model"],
                         EvaluationDataSourceId=IDS["ds-eval"])
    ml.create_batch_prediction(BatchPredictionId=IDS["batch"], MLModelId=IDS["model"],
                               BatchPredictionDataSourceId=IDS["ds-eval"],
                               OutputUri=f"s3://{BUCKET}/output/")
    evaluation = wait_for(ml, time.monotonic() + timeout)
    wall = time.perf_counter() - start
    jobs = job_times(ml)
    datasources = [j for name, j in jobs.items() if name.startswith("datasource")]
    recipe = ml.get_ml_model(MLModelId=IDS["model"], Verbose=True)["Recipe"]
    output = (server.data_dir / "s3" / BUCKET / "output" / "batch-prediction" / "result"
              / f"{IDS['batch']}-{data['path'].name}.gz")
    batch = csv.read_csv(output)
    return {"seconds": wall, "auc": float(evaluation["PerformanceMetrics"]["Properties"]["BinaryAUC"]),
            "stages": {"ingest": max(j["finished"] for j in datasources)
                       - min(j["started"] for j in datasources),
                       "train": jobs["training"]["run_s"], "eval": jobs["evaluation"]["run_s"],
                       "batch": jobs["batch_prediction"]["run_s"]},
            "jobs": jobs, "service_span_s": max(j["finished"] for j in jobs.values())
            - min(j["created"] for j in jobs.values()),
            "peak_rss_mib": server.peak_rss_mib(), "recipe": recipe,
            "recipe_outputs": json.loads(recipe)["outputs"],
            "batch_labels": batch["trueLabel"].to_numpy(), "batch_scores": batch["score"].to_numpy()}


def wait_for(ml: Any, deadline: float) -> dict[str, Any]:
    """Poll the evaluation and the batch prediction until both complete; their GetEvaluation."""
    states: dict[str, dict[str, Any]] = {}
    while True:
        for name, get in (("evaluation", lambda: ml.get_evaluation(EvaluationId=IDS["evaluation"])),
                          ("batch", lambda: ml.get_batch_prediction(
                              BatchPredictionId=IDS["batch"]))):
            if states.get(name, {}).get("Status") in (None, *ACTIVE):
                states[name] = get()
        failed = {n: s.get("Message") for n, s in states.items()
                  if s["Status"] not in ("COMPLETED", *ACTIVE)}
        if failed:
            raise RuntimeError(f"OpenAML jobs did not complete: {failed}")
        if all(s["Status"] == "COMPLETED" for s in states.values()):
            return states["evaluation"]
        if time.monotonic() > deadline:
            raise TimeoutError("OpenAML jobs still running")
        time.sleep(POLL_S)


# --- one run over several sizes ---------------------------------------------------------------

TARGETS = {"auc_tolerance": 0.005, "large_rows": 2_000_000, "large_vs_faster_diy": 0.5,
           "large_ingest_vs_parse": 2.0, "large_peak_rss_gb": 1.35, "small_rows": 50_000,
           "small_vs_faster_diy": 1.0}
PIPELINES = {"sklearn": ("sklearn", sklearn_pipeline, "scikit-learn"),
             "vw": ("vowpalwabbit", vw_pipeline, "Vowpal Wabbit")}


def run(result: dict[str, Any], place: Path, data_folder: Path, sizes: list[int],
        skip: tuple[str, ...], passes: int, echo: Callable[[str], None]) -> None:
    """Benchmark every size into result["sizes"]; result["targets_met"] by size."""
    import importlib.util

    result["sizes"] = []
    for rows in sizes:
        data = write_dataset(data_folder, rows)
        made = f"generated in {data['generate_s']:.1f} s" if data["generate_s"] else "cached"
        echo(f"{rows:,} rows: {data['path']} ({data['mb']:.1f} MB, {made})")
        train = training_rows(data["path"], f"input/{data['path'].name}")
        entry: dict[str, Any] = {
            "rows": rows, "mb": data["mb"], "bytes_per_row": data["bytes_per_row"],
            "generate_s": data["generate_s"], "train_rows": int(train.sum()),
            "eval_rows": int((~train).sum()), "passes": passes}
        work = place / f"diy-{rows}"
        work.mkdir(parents=True, exist_ok=True)
        for part, (module, pipeline, label) in PIPELINES.items():
            if part in skip:
                continue
            if importlib.util.find_spec(module) is None:
                echo(f"  {label}: skipped, {module} is not installed (pip install 'openaml[bench]')")
                continue
            entry[part] = pipeline(data["path"], train, work, passes)
            echo(f"  {label} {entry[part]['seconds']:.2f} s, AUC {entry[part]['auc']:.4f}")
        floor_parse(data["path"])  # warm-up; the floor is measured right before OpenAML's ingest
        runs = [floor_parse(data["path"]) for _ in range(3)]
        entry["floor"] = {"seconds": float(np.median([r["seconds"] for r in runs])),
                          "runs": len(runs)}
        echo(f"  floor parse {entry['floor']['seconds']:.2f} s")
        if "openaml" not in skip:
            with running(Server(place / "server")) as server:
                ours = openaml_workflow(server, data, passes)
            check_batch(ours, read_table(data["path"], (TARGET,)), train)
            entry["openaml"] = ours
            echo(f"  OpenAML {ours['seconds']:.2f} s, AUC {ours['auc']:.4f}")
        entry["ratios"] = ratios(entry)
        result["sizes"].append(entry)
    result["targets_met"] = {str(e["rows"]): e["ratios"]["targets_met"] for e in result["sizes"]}


def check_batch(ours: dict[str, Any], labels: pa.Table, train: np.ndarray) -> None:
    """Whether the batch output's true labels are the evaluation rows' (so the split is the
    DIY pipelines' one), and the AUC of its scores (Mann-Whitney: no scikit-learn needed)."""
    from scipy.stats import rankdata

    expected = pc.equal(labels[TARGET], "yes").to_numpy(zero_copy_only=False)[~train]
    found, scores = ours.pop("batch_labels"), ours.pop("batch_scores")
    ours["batch_rows_match"] = bool(np.array_equal(found, expected))
    positives = int(found.sum())
    negatives = len(found) - positives
    ours["batch_auc"] = float((rankdata(scores)[found == 1].sum() - positives * (positives + 1) / 2)
                              / (positives * negatives))


def ratios(entry: dict[str, Any]) -> dict[str, Any]:
    """AUC differences and time, ingest and memory ratios, and the targets met at this size."""
    ours, floor = entry.get("openaml"), entry["floor"]
    diy = {part: entry[part] for part in PIPELINES if part in entry}
    found: dict[str, Any] = {}
    met: dict[str, bool] = {}
    if ours:
        for part, theirs in diy.items():
            found[f"auc_minus_{part}"] = ours["auc"] - theirs["auc"]
            met[f"auc_vs_{part}"] = found[f"auc_minus_{part}"] >= -TARGETS["auc_tolerance"]
        if diy:
            found["vs_faster_diy"] = ours["seconds"] / min(p["seconds"] for p in diy.values())
        found["ingest_vs_parse"] = ours["stages"]["ingest"] / floor["seconds"]
        found["peak_rss_gb"] = ours["peak_rss_mib"] * 2**20 / 1e9
        if entry["rows"] == TARGETS["large_rows"]:
            if "vs_faster_diy" in found:
                met["vs_faster_diy"] = found["vs_faster_diy"] <= TARGETS["large_vs_faster_diy"]
            met["ingest_vs_parse"] = found["ingest_vs_parse"] <= TARGETS["large_ingest_vs_parse"]
            met["peak_rss"] = found["peak_rss_gb"] <= TARGETS["large_peak_rss_gb"]
        if entry["rows"] == TARGETS["small_rows"] and "vs_faster_diy" in found:
            met["vs_faster_diy"] = found["vs_faster_diy"] <= TARGETS["small_vs_faster_diy"]
    found["targets_met"] = met
    return found


def table(result: dict[str, Any]) -> list[str]:
    """One Markdown row per size, then the targets met per size and the model's recipe."""
    def cell(part: dict[str, Any] | None, key: str, form: str) -> str:
        return "" if not part else format(part[key], form)

    lines = ["| rows | MB | OpenAML s (ingest / train / eval / batch) | OpenAML AUC | "
             "scikit-learn s | AUC | Vowpal Wabbit s | AUC | parse s | OpenAML / faster DIY | "
             "ingest / parse | server peak RSS MiB |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for entry in result["sizes"]:
        ours, found = entry.get("openaml"), entry["ratios"]
        split = "" if not ours else "{:.2f} ({})".format(
            ours["seconds"], " / ".join(f"{v:.2f}" for v in ours["stages"].values()))
        sk, vw = entry.get("sklearn"), entry.get("vw")
        lines.append(
            f"| {entry['rows']:,} | {entry['mb']:.1f} | {split} | {cell(ours, 'auc', '.4f')} | "
            f"{cell(sk, 'seconds', '.2f')} | {cell(sk, 'auc', '.4f')} | "
            f"{cell(vw, 'seconds', '.2f')} | {cell(vw, 'auc', '.4f')} | "
            f"{entry['floor']['seconds']:.2f} | "
            f"{cell(found, 'vs_faster_diy', '.2f') if 'vs_faster_diy' in found else ''} | "
            f"{cell(found, 'ingest_vs_parse', '.2f') if ours else ''} | "
            f"{cell(ours, 'peak_rss_mib', ',.0f')} |")
    lines.append("")
    for entry in result["sizes"]:
        met = entry["ratios"]["targets_met"]
        lines.append(f"- {entry['rows']:,} rows: targets met: "
                     + (", ".join(k for k, v in met.items() if v) or "none") + "; missed: "
                     + (", ".join(k for k, v in met.items() if not v) or "none"))
    if ours := next((e["openaml"] for e in reversed(result["sizes"]) if "openaml" in e), None):
        lines.append("- recipe of the default-recipe model (last size): "
                     + ", ".join(f"`{o}`" for o in ours["recipe_outputs"]))
    return lines
