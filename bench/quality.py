"""Model quality at the default parameters: OpenAML against scikit-learn's best linear fit on
the same features, in k-fold cross-validation (`openaml bench --dataset quality`).

Each dataset is written as CSV and ingested with statistics as a datasource would be; each
fold trains OpenAML's default-recipe model with no parameters given (sgd.maxPasses 10) through
the ML core (no server: quality, not speed), and scores the held-out rows. scikit-learn gets
the very feature rows of that model's recipe (its pipeline's transform) at the regularization
strength of a grid with the best mean metric over the held-out folds: chosen on them, which
favours scikit-learn (a grid search by cross-validation would choose on the training folds);
each fold's own best strength, which favours it more, is reported beside it.
LogisticRegression (lbfgs) for BINARY and MULTICLASS, Ridge for REGRESSION. Folds are
random, drawn three times (seeds), and sequential (consecutive rows, as users split with
DataRearrangement). The metric is Amazon ML's: AUC, macro-average F1, RMSE. The suite:
scikit-learn's bundled breast cancer, diabetes, digits and wine data (wine's rows come sorted
by class: they have no order of their own, so their sequential folds are cut from shuffled
orders, drawn as the random folds are: `Dataset.ordered`); the tabular benchmark's generated
bank table at 8,000 rows and three more generated tables (quality_data.py: rare positives, 24
classes, amounts); the bundled MNIST sample and 10,000 Fashion-MNIST images, every pixel
CATEGORICAL as in the seed's workflow.

With `--algorithm gbdt` each fold trains OpenAML's boosted trees (openaml.algorithm=gbdt, the
default 100 rounds, learning rate 0.1, 31 leaves, 20 records a leaf) and scikit-learn's
HistGradientBoosting with the same budget on the same columns (the model's tree columns, its
categorical ones declared so), without early stopping, on the tables (not the images).
"""

from __future__ import annotations

import gzip
import io
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import sparse

from openaml.ml import evaluate_model, parse_parameters, train_model
from openaml.ml.data import DataObject, ingest, parse_rearrangement, read_materialized
from openaml.ml.features.values import Columns
from openaml.ml.metrics.evaluation import METRIC_KEYS
from openaml.ml.model_type import ModelType
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import Schema, parse_schema
from openaml.ml.training.params import TreeParams
from openaml.ml.training.trees import max_bins_for

FOLDS = 4
SEED = 7
SEEDS = 3  # draws of the random folds: a metric difference of one draw can be its folds' luck
STRENGTHS = (0.01, 0.1, 1.0, 10.0, 100.0)  # C of LogisticRegression, 1/alpha of Ridge
# One-hot images have about 100,000 features: a fit takes about 20 s, and C = 0.1 and 1 score
# alike on the MNIST sample (0.894) within 100-120 lbfgs iterations
WIDE_FEATURES, WIDE_STRENGTHS, WIDE_ITERATIONS = 10_000, (0.1, 1.0), 300
TARGETS = {"metric_tolerance": 0.005, "rmse_tolerance": 0.01, "spread_slack": 0.01}
TABULAR_ROWS = 8_000
GENERATED = {"rare_positives": ("rare positives", 20_000), "many_classes": ("24 classes", 12_000),
             "amounts": ("amounts", 5_000)}  # quality_data.py: (label, rows)
QUICK_ROWS = 3_000
IMAGE_ROWS = 10_000
MNIST_SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist" / "data" / "train.csv.gz"
SPLITS = ("random", "sequential")


@dataclass(frozen=True)
class Dataset:
    """A CSV data set: its schema, header line and data lines, and the model type to train."""

    model_type: ModelType
    schema: Schema
    header: bytes
    lines: list[bytes]
    ordered: bool = True  # the rows have an order of their own, which sequential folds keep


def datasets(quick: bool = False, images_too: bool = True) -> dict[str, Dataset]:
    """The suite: scikit-learn's bundled sets, the generated tables (quality_data.py; --quick:
    smaller), and the MNIST sample and 10,000 Fashion-MNIST images (not with --quick, nor
    without `images_too`)."""
    from sklearn import datasets as bundled

    suite = {name: from_arrays(model_type, *loader(return_X_y=True)) for name, model_type, loader in (
        ("breast cancer", ModelType.BINARY, bundled.load_breast_cancer),
        ("diabetes", ModelType.REGRESSION, bundled.load_diabetes),
        ("digits", ModelType.MULTICLASS, bundled.load_digits),
        ("wine", ModelType.MULTICLASS, bundled.load_wine))}
    suite[f"tabular {TABULAR_ROWS // 1000}k"] = tabular(TABULAR_ROWS)
    for name, (label, rows) in GENERATED.items():
        rows = min(rows, QUICK_ROWS) if quick else rows
        suite[f"{label} {rows // 1000}k"] = generated(name, rows)
    if not quick and images_too:
        suite["MNIST sample 7k"] = images(MNIST_SAMPLE.read_bytes())
        fashion = fashion_sample(IMAGE_ROWS)
        if fashion is not None:
            suite[f"Fashion-MNIST {IMAGE_ROWS // 1000}k"] = fashion
    return suite


def generated(name: str, rows: int) -> Dataset:
    """A generated table of quality_data.py."""
    from quality_data import table
    from tabular_data import schema_json

    target_type, text = table(name, rows, SEED)
    header, *lines = text.splitlines(keepends=True)
    model_type = {"BINARY": ModelType.BINARY, "CATEGORICAL": ModelType.MULTICLASS}.get(
        target_type, ModelType.REGRESSION)
    return Dataset(model_type, parse_schema(schema_json(target_type)), header, lines)


def images(gzipped: bytes, rows: int | None = None) -> Dataset:
    """Kaggle-layout digits (label, pixel0..pixel783), every pixel CATEGORICAL as in the seed's
    MNIST workflow, MULTICLASS: the first `rows` images (all when None)."""
    header, *lines = gzip.decompress(gzipped).splitlines(keepends=True)
    names = header.decode().strip().split(",")
    schema = parse_schema(json.dumps({
        "targetAttributeName": names[0], "dataFileContainsHeader": True,
        "attributes": [{"attributeName": n, "attributeType": "CATEGORICAL"} for n in names]}))
    return Dataset(ModelType.MULTICLASS, schema, header, lines[:rows])


def fashion_sample(rows: int) -> Dataset | None:
    """The first `rows` Fashion-MNIST training images (fashion_mnist.py), or None when its
    Debian package cannot be had here."""
    import subprocess
    import tempfile

    from fashion_mnist import write_fashion_mnist

    try:
        with tempfile.TemporaryDirectory(prefix="openaml-quality-") as temp:
            data = write_fashion_mnist(Path(temp))["train"].read_bytes()
    except (OSError, subprocess.CalledProcessError):
        return None
    return images(gzip.compress(data, compresslevel=1), rows)


def from_arrays(model_type: ModelType, x: np.ndarray, y: np.ndarray) -> Dataset:
    """NUMERIC inputs x0, x1... and the target y (a class number, or a number). Rows sorted by
    their target (wine's, by class) have no order of their own (`ordered` False): sequential
    folds of them would hold classes their training part barely saw, and their macro F1 turn
    on one or two of 45 records (scikit-learn's fits of one such fold scored 0.61 to 1.00
    across its strengths)."""
    names = [f"x{j}" for j in range(x.shape[1])]
    target = {ModelType.BINARY: "BINARY", ModelType.MULTICLASS: "CATEGORICAL"}.get(model_type, "NUMERIC")
    schema = parse_schema(json.dumps({
        "targetAttributeName": "y", "dataFileContainsHeader": True,
        "attributes": [{"attributeName": n, "attributeType": "NUMERIC"} for n in names]
        + [{"attributeName": "y", "attributeType": target}]}))
    labels = y.astype(int) if model_type is not ModelType.REGRESSION else y
    lines = [(",".join(f"{v:.10g}" for v in row) + f",{label}\n").encode() for row, label in zip(x, labels)]
    return Dataset(model_type, schema, (",".join(names) + ",y\n").encode(), lines,
                   ordered=not bool(np.all(np.diff(y) >= 0)))


def tabular(rows: int) -> Dataset:
    """The tabular benchmark's generated bank-marketing-like table (numbers, categories, yes/no,
    a short text, 10 % positives; tabular_data.py), at `rows` rows."""
    import tempfile

    from tabular_data import schema_json, write_dataset

    path = write_dataset(Path(tempfile.gettempdir()) / "openaml-quality", rows)["path"]
    header, *lines = path.read_bytes().splitlines(keepends=True)
    return Dataset(ModelType.BINARY, parse_schema(schema_json()), header, lines)


def stored(data: Dataset, rows: np.ndarray) -> tuple[Callable[[], Any], Any]:
    """The rows ingested as a CSV datasource (statistics on): a reader of its materialized
    batches, and its statistics."""
    text = data.header + b"".join(data.lines[i] for i in rows)
    sink = io.BytesIO()
    report = ingest([DataObject("s3://quality/data.csv", "data.csv", len(text), lambda: io.BytesIO(text))],
                    data.schema, parse_rearrangement(None), True, sink)
    copy = sink.getvalue()
    return lambda: read_materialized(io.BytesIO(copy)), report.statistics


def fold(data: Dataset, train: np.ndarray, held: np.ndarray, algorithm: str = "sgd") -> dict[str, float]:
    """OpenAML's metric and scikit-learn's (best linear, or boosted trees) on one fold."""
    model_type, schema = data.model_type, data.schema
    batches, statistics = stored(data, train)
    held_batches, _ = stored(data, held)
    given = {"openaml.algorithm": "gbdt"} if algorithm == "gbdt" else {}
    started = time.perf_counter()
    model = train_model(model_type, schema, default_recipe(schema, statistics), parse_parameters(given, model_type),
                        statistics, batches)
    seconds = time.perf_counter() - started
    ours = float(evaluate_model(model, held_batches(), schema).metrics[METRIC_KEYS[model_type]])
    sides = [features_and_labels(model, read(), model_type, algorithm == "gbdt") for read in (batches, held_batches)]
    fits = ({"trees": histogram_trees(model, *sides[0], *sides[1])} if algorithm == "gbdt"
            else linear_fits(model_type, *sides[0], *sides[1]))
    return {"openaml": ours, "sklearn_fits": fits, "seconds": seconds}


def features_and_labels(model: Any, batches: Any, model_type: ModelType,
                        tree_columns: bool = False) -> tuple[Any, np.ndarray]:
    """The model's feature rows (or, `tree_columns`, its trees' columns) of the records with a
    valid target, and those targets (as the model reads them: numbers, 1/0, or class labels)."""
    rows, labels = [], []
    for batch in batches:
        columns = Columns(batch, model.pipeline.schema)
        target = model.pipeline.schema.target
        values = (columns.get(target) if model_type is not ModelType.MULTICLASS
                  else np.array(columns.raw(target).cast(pa.string()).to_pylist(), dtype=object))
        valid = (~np.isnan(values) if model_type is not ModelType.MULTICLASS
                 else np.array([v is not None for v in values]))
        rows.append((model.tree_columns().matrix(model.pipeline.rows(batch)) if tree_columns
                     else model.pipeline.transform(batch))[valid])
        labels.append(values[valid])
    return sparse.vstack(rows).tocsr(), np.concatenate(labels)


def linear_fits(model_type: ModelType, x_train: Any, y_train: np.ndarray, x_held: Any,
                y_held: np.ndarray) -> dict[str, float]:
    """The held-out metric of a linear model at each of STRENGTHS (WIDE_STRENGTHS for wide
    data), by strength."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

    scores = {}
    wide = x_train.shape[1] > WIDE_FEATURES
    for strength in WIDE_STRENGTHS if wide else STRENGTHS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if model_type is ModelType.REGRESSION:
                fitted = Ridge(alpha=1 / strength).fit(x_train, y_train)
                scores[str(strength)] = float(np.sqrt(mean_squared_error(y_held, fitted.predict(x_held))))
                continue
            fitted = LogisticRegression(C=strength, max_iter=WIDE_ITERATIONS if wide else 5000).fit(x_train, y_train)
            if model_type is ModelType.BINARY:
                scores[str(strength)] = float(roc_auc_score(y_held, fitted.predict_proba(x_held)[:, 1]))
            else:
                scores[str(strength)] = float(f1_score(y_held, fitted.predict(x_held), average="macro"))
    return scores


def fold_orders(rows: int, split: str, ordered: bool, seeds: int) -> list[np.ndarray]:
    """The row orders whose consecutive parts are the folds: random ones drawn `seeds` times,
    or the rows' own order for sequential folds. Rows with no order of their own get shuffled
    orders for their sequential folds too, drawn apart from the random folds' (one fixed
    shuffle would be one draw, whose luck the draws are there to average: wine's moved its
    macro F1 by 0.006, one record of 45 on one fold)."""
    if split == "sequential" and ordered:
        return [np.arange(rows)]
    first = 0 if split == "random" else seeds
    return [np.random.default_rng([SEED, seed]).permutation(rows) for seed in range(first, first + seeds)]


def choose_strength(model_type: ModelType, folds: list[dict[str, Any]]) -> str:
    """The strength of the best mean metric over every fold (RMSE: the least), as a grid
    search by cross-validation chooses one; each fold's own best would fit the folds' noise
    (wine: the strongest won 2 folds of 4 by a record each, the others the rest)."""
    means = {s: float(np.mean([f["sklearn_fits"][s] for f in folds])) for s in folds[0]["sklearn_fits"]}
    return (min if model_type is ModelType.REGRESSION else max)(means, key=means.__getitem__)


def histogram_trees(model: Any, x_train: Any, y_train: np.ndarray, x_held: Any, y_held: np.ndarray) -> float:
    """The held-out metric of scikit-learn's HistGradientBoosting with OpenAML's tree budget
    (100 iterations, learning rate 0.1, 31 leaves, 20 records a leaf, the bins of
    gbdt.maxBins=auto, no early stopping) on the model's tree columns (dense; its
    LightGBM-categorical ones categorical)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

    trees = model.tree_columns()
    categorical = np.zeros(trees.n_columns, bool)
    categorical[list(trees.categorical)] = True
    trees_budget = TreeParams()  # OpenAML's defaults
    budget = {"max_iter": trees_budget.rounds, "learning_rate": trees_budget.learning_rate,
              "max_leaf_nodes": trees_budget.leaves, "min_samples_leaf": trees_budget.min_leaf_records,
              "max_bins": max_bins_for(trees_budget, x_train.shape[0], trees.sources),
              "l2_regularization": trees_budget.l2, "early_stopping": False,
              "categorical_features": categorical if categorical.any() else None,
              "random_state": SEED}
    dense_train, dense_held = x_train.toarray(), x_held.toarray()
    if model.model_type is ModelType.REGRESSION:
        fitted = HistGradientBoostingRegressor(**budget).fit(dense_train, y_train)
        return float(np.sqrt(mean_squared_error(y_held, fitted.predict(dense_held))))
    fitted = HistGradientBoostingClassifier(**budget).fit(dense_train, y_train)
    if model.model_type is ModelType.BINARY:
        return float(roc_auc_score(y_held, fitted.predict_proba(dense_held)[:, 1]))
    return float(f1_score(y_held, fitted.predict(dense_held), average="macro"))


def run(result: dict[str, Any], echo: Callable[[str], None], folds: int = FOLDS, quick: bool = False,
        algorithm: str = "sgd", seeds: int = SEEDS) -> None:
    """Every dataset of the suite in `folds`-fold cross-validation, with random folds (drawn
    `seeds` times) and with sequential ones (consecutive rows, as DataRearrangement
    complements make them; of shuffled rows, drawn so, where the rows have no order of their
    own), into result["datasets"]: each side's mean over every fold, its
    fold spread (the mean over the draws of max - min) and the spread of the draws' means."""
    result["datasets"] = []
    suite = datasets(quick, images_too=algorithm == "sgd")
    for (name, data), split in ((d, s) for d in suite.items() for s in SPLITS):
        orders = fold_orders(len(data.lines), split, data.ordered, seeds)
        draws = []
        for order in orders:
            parts = np.array_split(order, folds)
            draws.append([fold(data, np.sort(np.concatenate(parts[:k] + parts[k + 1:])), np.sort(parts[k]),
                               algorithm) for k in range(folds)])
        strength = choose_strength(data.model_type, [f for found in draws for f in found])
        best = min if data.model_type is ModelType.REGRESSION else max
        for f in (f for found in draws for f in found):
            f["sklearn"], f["sklearn_fold_best"] = f["sklearn_fits"][strength], best(f["sklearn_fits"].values())
        entry = {"name": name, "split": split, "ordered": data.ordered,
                 "model_type": data.model_type.value, "rows": len(data.lines),
                 "attributes": len(data.schema.attributes) - 1, "metric": METRIC_KEYS[data.model_type],
                 "seeds": len(draws), "sklearn_strength": strength,
                 "folds": [dict(f, seed=s) for s, found in enumerate(draws) for f in found]}
        for side in ("openaml", "sklearn", "sklearn_fold_best"):
            values = [[f[side] for f in found] for found in draws]
            means = [float(np.mean(v)) for v in values]
            entry[side] = {"mean": float(np.mean(means)),
                           "spread": float(np.mean([np.max(v) - np.min(v) for v in values])),
                           "seed_spread": max(means) - min(means)}
        entry["targets_met"] = met(data.model_type, entry)
        result["datasets"].append(entry)
        ours, theirs = entry["openaml"], entry["sklearn"]
        seeds_text = (f", {len(draws)} draws: means spread {ours['seed_spread']:.4f} "
                      f"({theirs['seed_spread']:.4f})") if len(draws) > 1 else ""
        chosen = "" if algorithm == "gbdt" else (f" at {strength}, each fold's best "
                                                 f"{entry['sklearn_fold_best']['mean']:.4f}")
        echo(f"  {name}, folds {_folds(entry)}: OpenAML {ours['mean']:.4f} (spread {ours['spread']:.4f}), "
             f"scikit-learn {theirs['mean']:.4f} ({theirs['spread']:.4f}){chosen}{seeds_text}")


def met(model_type: ModelType, entry: dict[str, Any]) -> dict[str, bool]:
    ours, theirs = entry["openaml"], entry["sklearn"]
    if model_type is ModelType.REGRESSION:
        close = ours["mean"] <= theirs["mean"] * (1 + TARGETS["rmse_tolerance"])
    else:
        close = ours["mean"] >= theirs["mean"] - TARGETS["metric_tolerance"]
    # the slack is on the metric's scale: AUC and F1 lie in [0, 1], an RMSE's scale is its mean
    slack = TARGETS["spread_slack"] * (theirs["mean"] if model_type is ModelType.REGRESSION else 1.0)
    return {"metric": bool(close), "spread": ours["spread"] <= theirs["spread"] + slack}


def table(result: dict[str, Any]) -> list[str]:
    trees = result.get("algorithm") == "gbdt"
    other = ("scikit-learn HistGradientBoosting mean (spread)" if trees
             else "scikit-learn at its best strength: mean (spread) | strength | each fold's best strength: mean")
    lines = [f"| dataset | folds | type | rows | metric | OpenAML mean (spread) | {other} | targets met |",
             "|---|---|---|---:|---|---:|---:|" + ("" if trees else "---:|---:|") + "---|"]
    for e in result["datasets"]:
        draws = e.get("seeds", 1)
        folds = _folds(e) + (f", {draws} draws" if draws > 1 else "")
        theirs = _cell(e["sklearn"], draws) + ("" if trees else
                                               f" | {e['sklearn_strength']} | {e['sklearn_fold_best']['mean']:.4f}")
        lines.append(f"| {e['name']} | {folds} | {e['model_type']} | {e['rows']:,} | {e['metric']} | "
                     f"{_cell(e['openaml'], draws)} | {theirs} | "
                     + ", ".join(k for k, v in e["targets_met"].items() if v) + " |")
    return lines


def _folds(entry: dict[str, Any]) -> str:
    """How an entry's folds were cut: random, sequential, or sequential of shuffled rows."""
    shuffled = entry["split"] == "sequential" and not entry.get("ordered", True)
    return entry["split"] + (" of shuffled rows" if shuffled else "")


def _cell(side: dict[str, float], draws: int) -> str:
    """Mean (fold spread), and with several draws of the folds, the spread of their means."""
    seeds = f"; draws {side['seed_spread']:.4f}" if draws > 1 else ""
    return f"{side['mean']:.4f} ({side['spread']:.4f}{seeds})"
