#!/usr/bin/env python3
"""The Amazon ML MNIST workflow, as a plain boto3 client (no OpenAML imports).

Registers the labeled Kaggle-format train file as two datasources (sequential 0-70 % for
training, 70-100 % for evaluation, both with statistics) and the unlabeled test file as a batch
datasource with its own schema, and creates a MULTICLASS model, its evaluation and a batch
prediction of the test file, all at once: the service chains the jobs. It polls with backoff,
then prints the macro F1 against the baseline, the confusion matrix and the first predictions.

Works against OpenAML (`--endpoint-url http://127.0.0.1:8080`) or any service implementing the
API. Output files are read from the embedded object store folder (`--local-store DIR`) or with
boto3's S3 client (`--s3-endpoint-url`, or AWS itself when neither is given).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACTIVE = ("PENDING", "INPROGRESS")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", required=True, help="the Amazon ML API endpoint")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--train-uri", required=True, help="s3:// URI of the labeled train CSV")
    parser.add_argument("--test-uri", required=True, help="s3:// URI of the unlabeled test CSV")
    parser.add_argument("--train-schema-uri", required=True)
    parser.add_argument("--batch-schema-uri", required=True)
    parser.add_argument("--recipe-uri", required=True)
    parser.add_argument("--output-uri", required=True, help="s3:// folder for batch results")
    parser.add_argument("--local-store", type=Path, default=None,
                        help="folder of the embedded object store (s3://B/K = DIR/B/K)")
    parser.add_argument("--s3-endpoint-url", default=None, help="S3 endpoint to read results from")
    parser.add_argument("--test-labels", type=Path, default=None,
                        help="CSV of the true test labels (header 'label'), to report accuracy")
    parser.add_argument("--max-passes", default="10")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", type=key_value,
                        help="another training parameter, e.g. openaml.algorithm=gbdt (repeatable)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait in all")
    parser.add_argument("--show-rows", type=int, default=5)
    return parser.parse_args(argv)


def key_value(text: str) -> tuple[str, str]:
    """KEY=VALUE as (KEY, VALUE)."""
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ml = boto3.client("machinelearning", endpoint_url=args.endpoint_url, region_name=args.region,
                      config=Config(retries={"max_attempts": 5, "mode": "standard"}))
    run = f"mnist-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    ids = {name: f"{run}-{name}" for name in ("ds-train", "ds-eval", "ds-batch", "model",
                                              "evaluation", "batch")}
    print(f"run {run}: creating datasources, model, evaluation and batch prediction")
    started = time.monotonic()
    for name, begin, end in (("ds-train", 0, 70), ("ds-eval", 70, 100)):
        ml.create_data_source_from_s3(
            DataSourceId=ids[name], DataSourceName=f"MNIST {name[3:]} {begin}-{end}%",
            DataSpec={
                "DataLocationS3": args.train_uri,
                "DataSchemaLocationS3": args.train_schema_uri,
                "DataRearrangement": json.dumps(
                    {"splitting": {"percentBegin": begin, "percentEnd": end,
                                   "strategy": "sequential"}}),
            },
            ComputeStatistics=True)
    ml.create_data_source_from_s3(
        DataSourceId=ids["ds-batch"], DataSourceName="MNIST unlabeled test",
        DataSpec={"DataLocationS3": args.test_uri, "DataSchemaLocationS3": args.batch_schema_uri},
        ComputeStatistics=False)
    ml.create_ml_model(
        MLModelId=ids["model"], MLModelName="MNIST multiclass", MLModelType="MULTICLASS",
        TrainingDataSourceId=ids["ds-train"], RecipeUri=args.recipe_uri,
        Parameters={"sgd.maxPasses": args.max_passes, "sgd.maxMLModelSizeInBytes": "104857600",
                    "sgd.l2RegularizationAmount": "1e-5", "sgd.shuffleType": "auto",
                    **dict(args.parameter)})
    ml.create_evaluation(EvaluationId=ids["evaluation"], EvaluationName="MNIST evaluation",
                         MLModelId=ids["model"], EvaluationDataSourceId=ids["ds-eval"])
    ml.create_batch_prediction(
        BatchPredictionId=ids["batch"], BatchPredictionName="MNIST test predictions",
        MLModelId=ids["model"], BatchPredictionDataSourceId=ids["ds-batch"],
        OutputUri=args.output_uri)

    watcher = Watcher(ml, args.timeout)
    states = watcher.wait({name: ids[name] for name in ("ds-train", "ds-eval", "ds-batch", "model",
                                                        "evaluation", "batch")},
                          until=("evaluation", "batch"))
    failed = {name: state for name, state in states.items() if state["Status"] != "COMPLETED"
              and state["Status"] not in ACTIVE}
    for name, state in failed.items():
        print(f"{name} {state['Status']}: {state.get('Message')}", file=sys.stderr)
    if failed:
        return 1
    evaluation, batch = states["evaluation"], states["batch"]
    elapsed = time.monotonic() - started
    print(f"all jobs done in {elapsed:.1f} s")
    report_evaluation(args.endpoint_url, evaluation)
    return report_batch(args, batch)


class Watcher:
    """Polls Get* with backoff and prints each status change (and training passes)."""

    def __init__(self, ml: Any, timeout: float) -> None:
        self.ml, self.deadline = ml, time.monotonic() + timeout
        self.seen: dict[str, str] = {}

    def get(self, name: str, entity_id: str) -> dict[str, Any]:
        if name.startswith("ds-"):
            return self.ml.get_data_source(DataSourceId=entity_id)
        if name == "model":
            return self.ml.get_ml_model(MLModelId=entity_id)
        if name == "evaluation":
            return self.ml.get_evaluation(EvaluationId=entity_id)
        return self.ml.get_batch_prediction(BatchPredictionId=entity_id)

    def wait(self, entities: dict[str, str], until: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Poll `entities` until every one named in `until` has ended, or one of them has
        failed; returns the last state of each. An entity that has ended is not asked again.
        After a failure the others still running are asked once more: a job that failed
        while this sweep went on (often the cause of the failure seen) is then reported too."""
        delay = 0.1
        states: dict[str, dict[str, Any]] = {}
        while True:
            self._sweep(entities, states)
            if any(state["Status"] == "FAILED" for state in states.values()):
                self._sweep(entities, states)
                return states
            if all(states[name]["Status"] not in ACTIVE for name in until):
                return states
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"still waiting: {', '.join(until)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _sweep(self, entities: dict[str, str], states: dict[str, dict[str, Any]]) -> None:
        """Ask for every entity that has not ended; print what changed."""
        for name, entity_id in entities.items():
            if name in states and states[name]["Status"] not in ACTIVE:
                continue
            state = states[name] = self.get(name, entity_id)
            line = state["Status"]
            if name == "model" and state["Status"] == "INPROGRESS":
                line += training_pass(state.get("LogUri"))
            if state["Status"] == "FAILED":
                line += f": {state.get('Message')}"
            if self.seen.get(name) != line:
                self.seen[name] = line
                print(f"  {name:<11} {line}", flush=True)


def training_pass(log_uri: str | None) -> str:
    """' (pass k of n)' from the job log, where the service offers one."""
    text = fetch_text(log_uri) if log_uri else None
    lines = [ln for ln in (text or "").splitlines() if " pass " in ln]
    if not lines:
        return ""
    words = lines[-1].split(" pass ", 1)[1].split(":", 1)[0]
    return f" (pass {words})"


def fetch_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - URL from the API
            return answer.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def report_evaluation(endpoint_url: str, evaluation: dict[str, Any]) -> None:
    f1 = float(evaluation["PerformanceMetrics"]["Properties"]["MulticlassAvgFScore"])
    report_text = fetch_text(f"{endpoint_url.rstrip('/')}/reports/Evaluation/"
                             f"{evaluation['EvaluationId']}")
    report = json.loads(report_text) if report_text else {}
    baseline = report.get("baseline")
    shown = f" (baseline {float(baseline):.3f})" if baseline is not None else ""
    print(f"macro-average F1 on the evaluation split: {f1:.3f}{shown}")
    matrix, labels = report.get("confusion_matrix"), report.get("classes")
    if matrix and labels:
        print("confusion matrix (rows: true digit, columns: predicted digit)")
        width = max(5, max(len(str(v)) for row in matrix for v in row) + 1)
        print("      " + "".join(f"{label:>{width}}" for label in labels))
        for label, row in zip(labels, matrix, strict=False):
            print(f"{label:>5} " + "".join(f"{value:>{width}}" for value in row))


def read_result(args: argparse.Namespace, uri: str) -> bytes:
    bucket, _, key = uri[len("s3://"):].partition("/")
    if args.local_store is not None:
        return (args.local_store / bucket / key).read_bytes()
    s3 = boto3.client("s3", endpoint_url=args.s3_endpoint_url, region_name=args.region)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def report_batch(args: argparse.Namespace, batch: dict[str, Any]) -> int:
    base = args.output_uri if args.output_uri.endswith("/") else args.output_uri + "/"
    name = args.test_uri.rstrip("/").rsplit("/", 1)[-1]
    uri = f"{base}batch-prediction/result/{batch['BatchPredictionId']}-{name}.gz"
    rows = list(csv.reader(io.StringIO(gzip.decompress(read_result(args, uri)).decode())))
    header, body = rows[0], rows[1:]
    problems = []
    if len(body) != batch["TotalRecordCount"]:
        problems.append(f"{len(body)} rows, but TotalRecordCount is {batch['TotalRecordCount']}")
    predicted = []
    for number, row in enumerate(body):
        if not row:
            predicted.append(None)
            continue
        scores = [float(v) for v in row]
        if len(scores) != len(header):
            problems.append(f"row {number + 1} has {len(scores)} columns for {len(header)} classes")
        if abs(sum(scores) - 1.0) > 1e-3:
            problems.append(f"row {number + 1} sums to {sum(scores):.6f}, not 1")
        predicted.append(header[max(range(len(scores)), key=scores.__getitem__)])
    print(f"batch prediction: {batch['TotalRecordCount']} rows "
          f"({batch['InvalidRecordCount']} invalid), one column per class: {','.join(header)}")
    print(f"result file: {uri}")
    for number, row in enumerate(body[: args.show_rows]):
        best = predicted[number]
        probability = max(float(v) for v in row) if row else 0.0
        print(f"  test row {number + 1}: digit {best} (p={probability:.3f})")
    if args.test_labels is not None:
        truth, mismatch = read_labels(args.test_labels, len(predicted))
        if mismatch:
            problems.append(f"the test labels do not match the predictions: {mismatch}")
        else:
            hits = sum(1 for p, t in zip(predicted, truth, strict=True) if p == t)
            print(f"accuracy on the test labels: {hits / max(len(truth), 1):.4f} ({hits}/{len(truth)})")
    for problem in problems[:10]:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("checks: one row per test row, one column per class, every row sums to 1")
    return 1 if problems else 0


def read_labels(path: Path, count: int) -> tuple[list[str], str | None]:
    """The true labels of `count` test rows, in order, from a CSV with a `label` column (and
    optionally `ImageId`, which must count 1, 2, ...); or a sentence saying why they do not fit."""
    try:
        rows = [row for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))) if row]
    except (OSError, UnicodeDecodeError) as exc:
        return [], f"{path} cannot be read: {exc}"
    header = [name.strip().lower() for name in rows[0]] if rows else []
    if "label" not in header:
        return [], f"{path} has no 'label' column (its header: {','.join(rows[0]) if rows else 'none'})"
    body = rows[1:]
    if len(body) != count:
        return [], f"{path} has {len(body)} labels for {count} test rows"
    if any(len(row) != len(header) for row in body):
        return [], f"{path} has rows of other than {len(header)} fields"
    if "imageid" in header:
        ids = header.index("imageid")
        for number, row in enumerate(body, 1):
            if row[ids].strip() != str(number):
                return [], f"{path} row {number} is ImageId {row[ids]}, not {number} (the test rows' order)"
    column = header.index("label")
    return [row[column].strip() for row in body], None


if __name__ == "__main__":
    sys.exit(main())
