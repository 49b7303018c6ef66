"""The do-it-yourself side of the tabular benchmark: the split, the reading, the features, the
pipelines and the parse floor.

Every contender trains on the same 70 % of the rows and scores the other 30 %: OpenAML's random
DataRearrangement, which `training_rows` computes with OpenAML's own selection code. The
pipelines read the file with pyarrow (declared types), one-hot the categories and yes/no values,
cut each number into 50 quantile bins of the training part (missing: a bin of its own), add a
bag of lowercased words, then train scikit-learn's SGDClassifier (log loss) or Vowpal Wabbit
(logistic) for the same number of passes. `floor_parse` is the pyarrow parse alone.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from pipeline import stage_timer, vw_train
from scipy import sparse
from tabular_data import BINARY, CATEGORICAL, COLUMNS, NUMERIC, TARGET, TEXT, string_bytes

SPLIT_SEED = "openaml-bench"
BINS = 50
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

    stages, lap = stage_timer()
    table = read_table(path)
    lap("read")
    features = encode(table, train)
    lines = vw_lines(features)
    files = {"train": work / "train.vw", "eval": work / "eval.vw"}
    write_lines(files["train"], pc.filter(lines, pa.array(train)))
    write_lines(files["eval"], pc.filter(lines, pa.array(~train)))
    lap("features")
    model = vw_train(files["train"], work, passes)
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
