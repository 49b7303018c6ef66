"""Model quality at the default parameters: OpenAML against scikit-learn's best linear fit on
the same features, in k-fold cross-validation (`openaml bench --dataset quality`).

Each dataset is written as CSV and ingested with statistics as a datasource would be; each
fold trains OpenAML's default-recipe model with no parameters given (sgd.maxPasses 10) through
the ML core (no server: quality, not speed), and scores the held-out rows. scikit-learn gets
the very feature rows of that model's recipe (its pipeline's transform) and the best of a grid
of regularization strengths on the held-out rows, an upper bound for a linear model on those
features: LogisticRegression (lbfgs) for BINARY and MULTICLASS, Ridge for REGRESSION. The
metric is Amazon ML's: AUC, macro-average F1, RMSE. This first suite is scikit-learn's bundled
breast cancer, diabetes, digits and wine data; the issue asks for more (MNIST, Fashion-MNIST,
generated tabular sets, sequential splits).
"""

from __future__ import annotations

import io
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse

from openaml.ml import evaluate_model, parse_parameters, train_model
from openaml.ml.data import DataObject, ingest, parse_rearrangement, read_materialized
from openaml.ml.model_type import ModelType
from openaml.ml.recipes import default_recipe
from openaml.ml.schema import parse_schema

FOLDS = 4
SEED = 7
STRENGTHS = (0.01, 0.1, 1.0, 10.0, 100.0)  # C of LogisticRegression, 1/alpha of Ridge
TARGETS = {"metric_tolerance": 0.005, "rmse_tolerance": 0.01, "spread_slack": 0.01}


def datasets() -> dict[str, tuple[ModelType, np.ndarray, np.ndarray]]:
    from sklearn import datasets as bundled

    return {
        "breast cancer": (ModelType.BINARY, *bundled.load_breast_cancer(return_X_y=True)),
        "diabetes": (ModelType.REGRESSION, *bundled.load_diabetes(return_X_y=True)),
        "digits": (ModelType.MULTICLASS, *bundled.load_digits(return_X_y=True)),
        "wine": (ModelType.MULTICLASS, *bundled.load_wine(return_X_y=True)),
    }


def stored(x: np.ndarray, y: np.ndarray, model_type: ModelType, rows: np.ndarray
           ) -> tuple[Any, Callable[[], Any], Any]:
    """Ingest the rows as a CSV datasource (statistics on): its schema, a reader of its
    materialized batches, and its statistics."""
    names = [f"x{j}" for j in range(x.shape[1])]
    target = {ModelType.BINARY: "BINARY", ModelType.MULTICLASS: "CATEGORICAL"}.get(model_type, "NUMERIC")
    schema = parse_schema(json.dumps({
        "targetAttributeName": "y", "dataFileContainsHeader": False,
        "attributes": [{"attributeName": n, "attributeType": "NUMERIC"} for n in names]
        + [{"attributeName": "y", "attributeType": target}]}))
    labels = y[rows].astype(int) if model_type is not ModelType.REGRESSION else y[rows]
    text = "".join(",".join(f"{v:.10g}" for v in row) + f",{label}\n" for row, label in zip(x[rows], labels))
    data = text.encode()
    sink = io.BytesIO()
    report = ingest([DataObject("s3://quality/data.csv", "data.csv", len(data), lambda: io.BytesIO(data))],
                    schema, parse_rearrangement(None), True, sink)
    copy = sink.getvalue()
    return schema, lambda: read_materialized(io.BytesIO(copy)), report.statistics


def fold(model_type: ModelType, x: np.ndarray, y: np.ndarray, train: np.ndarray, held: np.ndarray
         ) -> dict[str, float]:
    """OpenAML's metric and scikit-learn's best on one fold."""
    schema, batches, statistics = stored(x, y, model_type, train)
    _, held_batches, _ = stored(x, y, model_type, held)
    recipe = default_recipe(schema, statistics)
    started = time.perf_counter()
    model = train_model(model_type, schema, recipe, parse_parameters({}, model_type), statistics, batches)
    seconds = time.perf_counter() - started
    ours = float(evaluate_model(model, held_batches(), schema).metrics[_metric_key(model_type)])
    features = [sparse.vstack([model.pipeline.transform(batch) for batch in read()]).tocsr()
                for read in (batches, held_batches)]
    return {"openaml": ours, "sklearn": best_linear(model_type, features[0], y[train], features[1], y[held]),
            "seconds": seconds}


def best_linear(model_type: ModelType, x_train: Any, y_train: np.ndarray, x_held: Any, y_held: np.ndarray) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

    scores = []
    for strength in STRENGTHS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if model_type is ModelType.REGRESSION:
                fitted = Ridge(alpha=1 / strength).fit(x_train, y_train)
                scores.append(-float(np.sqrt(mean_squared_error(y_held, fitted.predict(x_held)))))
                continue
            fitted = LogisticRegression(C=strength, max_iter=5000).fit(x_train, y_train)
            if model_type is ModelType.BINARY:
                scores.append(float(roc_auc_score(y_held, fitted.predict_proba(x_held)[:, 1])))
            else:
                scores.append(float(f1_score(y_held, fitted.predict(x_held), average="macro")))
    best = max(scores)
    return -best if model_type is ModelType.REGRESSION else best


def _metric_key(model_type: ModelType) -> str:
    return {ModelType.BINARY: "BinaryAUC", ModelType.MULTICLASS: "MulticlassAvgFScore",
            ModelType.REGRESSION: "RegressionRMSE"}[model_type]


def run(result: dict[str, Any], echo: Callable[[str], None], folds: int = FOLDS) -> None:
    """Every dataset of the suite in `folds`-fold cross-validation into result["datasets"]."""
    rng = np.random.default_rng(SEED)
    result["datasets"] = []
    for name, (model_type, x, y) in datasets().items():
        order = rng.permutation(len(y))
        parts = np.array_split(order, folds)
        found = [fold(model_type, x, y, np.concatenate(parts[:k] + parts[k + 1:]), parts[k]) for k in range(folds)]
        entry = {"name": name, "model_type": model_type.value, "rows": len(y), "features": x.shape[1],
                 "metric": _metric_key(model_type), "folds": found}
        for side in ("openaml", "sklearn"):
            values = [f[side] for f in found]
            entry[side] = {"mean": float(np.mean(values)), "spread": float(np.max(values) - np.min(values))}
        entry["targets_met"] = met(model_type, entry)
        result["datasets"].append(entry)
        echo(f"  {name}: OpenAML {entry['openaml']['mean']:.4f} (spread {entry['openaml']['spread']:.4f}), "
             f"scikit-learn {entry['sklearn']['mean']:.4f} ({entry['sklearn']['spread']:.4f})")


def met(model_type: ModelType, entry: dict[str, Any]) -> dict[str, bool]:
    ours, theirs = entry["openaml"], entry["sklearn"]
    if model_type is ModelType.REGRESSION:
        close = ours["mean"] <= theirs["mean"] * (1 + TARGETS["rmse_tolerance"])
    else:
        close = ours["mean"] >= theirs["mean"] - TARGETS["metric_tolerance"]
    return {"metric": bool(close), "spread": ours["spread"] <= theirs["spread"] + TARGETS["spread_slack"]}


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| dataset | type | rows | metric | OpenAML mean (spread) | scikit-learn best mean (spread) | "
             "targets met |", "|---|---|---:|---|---:|---:|---|"]
    for e in result["datasets"]:
        lines.append(f"| {e['name']} | {e['model_type']} | {e['rows']:,} | {e['metric']} | "
                     f"{e['openaml']['mean']:.4f} ({e['openaml']['spread']:.4f}) | "
                     f"{e['sklearn']['mean']:.4f} ({e['sklearn']['spread']:.4f}) | "
                     + ", ".join(k for k, v in e["targets_met"].items() if v) + " |")
    return lines
