"""The MNIST workflow four ways, side by side: raw parse, scikit-learn, Vowpal Wabbit, OpenAML.

Every contender gets the same plain Kaggle-layout CSVs (`label,f0..fn` train, `f0..fn` test),
the same sequential 70/30 split of train, and reports its time per stage and the macro F1 on the
30 %. Pixel values are treated as categories everywhere (one-hot), as the CATEGORICAL recipe does.
OpenAML runs as a real `openaml serve` subprocess (so its peak RSS can be read from /proc) and is
driven by examples/mnist/workflow.py, the plain boto3 client of `openaml demo mnist`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "mnist" / "workflow.py"
BUCKET = "bench"
# The client polls at least this often: its wall time is at most this much after the service's
# last job ends. Polling costs CPU on both sides (about 3 ms a Get call here), which a 2-core
# machine takes from the jobs: every 0.05 s cost about a fifth of the machine.
POLL_S = 0.2
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "openaml-bench", "AWS_SECRET_ACCESS_KEY": "openaml-bench",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def read_pixels(path: Path, labeled: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """(labels, features) of a Kaggle-layout CSV, every column parsed as uint8 by pyarrow."""
    import pyarrow as pa
    import pyarrow.csv as csv

    names = header(path)
    table = csv.read_csv(path, convert_options=csv.ConvertOptions(
        column_types={n: pa.uint8() for n in names}))
    matrix = np.column_stack([c.to_numpy() for c in table.columns])
    return (matrix[:, 0], matrix[:, 1:]) if labeled else (None, matrix)


def header(path: Path) -> list[str]:
    with open(path, "rb") as stream:
        return stream.readline().decode().strip().split(",")


def split_point(rows: int) -> int:
    """First row of the evaluation part of a sequential 70/30 split."""
    return int(rows * 0.7)


def stage_timer() -> tuple[dict[str, float], Callable[[str], None]]:
    """A dict of stage durations and `lap(name)`, which records the time since the last lap."""
    stages: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        stages[name], clock[0] = now - clock[0], now

    return stages, lap


def floor_parse(train: Path, test: Path) -> dict[str, Any]:
    """The floor: multithreaded pyarrow parse of both files into uint8 columns."""
    import pyarrow.csv  # noqa: F401  (imported before the clock starts)

    start = time.perf_counter()
    labels, x_train = read_pixels(train, labeled=True)
    _, x_test = read_pixels(test, labeled=False)
    return {"seconds": time.perf_counter() - start, "train_rows": len(x_train),
            "test_rows": len(x_test), "features": x_train.shape[1]}


def sklearn_pipeline(train: Path, test: Path, work: Path) -> dict[str, Any]:
    """Read, split, one-hot, LogisticRegression(saga, 10 epochs), macro F1, predict_proba, CSV."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import OneHotEncoder

    stages, lap = stage_timer()

    labels, x = read_pixels(train, labeled=True)
    cut = split_point(len(x))
    lap("read_train")
    encoder = OneHotEncoder(handle_unknown="ignore")
    x_fit = encoder.fit_transform(x[:cut])
    lap("one_hot")
    model = LogisticRegression(solver="saga", max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_fit, labels[:cut])
    lap("train")
    f1 = f1_score(labels[cut:], model.predict(encoder.transform(x[cut:])), average="macro")
    lap("evaluate")
    _, x_test = read_pixels(test, labeled=False)
    probabilities = model.predict_proba(encoder.transform(x_test))
    out = work / "sklearn-predictions.csv"
    np.savetxt(out, probabilities, fmt="%.6g", delimiter=",",
               header=",".join(str(c) for c in model.classes_), comments="")
    lap("predict_test")
    return {"seconds": sum(stages.values()), "stages": stages, "macro_f1": float(f1),
            "features": int(x_fit.shape[1])}


def lightgbm_pipeline(train: Path, test: Path, work: Path, rounds: int = 100, threads: int = 2) -> dict[str, Any]:
    """Read, split, LightGBM on the pixel values (`rounds` rounds, LightGBM's other defaults: 31
    leaves, learning rate 0.1, 255 bins), macro F1, predicted probabilities of the test file, CSV."""
    import lightgbm
    from sklearn.metrics import f1_score

    stages, lap = stage_timer()
    labels, x = read_pixels(train, labeled=True)
    assert labels is not None
    cut = split_point(len(x))
    lap("read_train")
    model = lightgbm.LGBMClassifier(n_estimators=rounds, n_jobs=threads, verbose=-1)
    model.fit(x[:cut], labels[:cut])
    lap("train")
    f1 = f1_score(labels[cut:], model.predict(x[cut:]), average="macro")
    lap("evaluate")
    _, x_test = read_pixels(test, labeled=False)
    probabilities = model.predict_proba(x_test)
    out = work / "lightgbm-predictions.csv"
    np.savetxt(out, probabilities, fmt="%.6g", delimiter=",",
               header=",".join(str(c) for c in model.classes_), comments="")
    lap("predict_test")
    return {"seconds": sum(stages.values()), "stages": stages, "macro_f1": float(f1), "rounds": rounds}


def vw_lines(labels: np.ndarray | None, x: np.ndarray) -> list[str]:
    """VW text lines `label | i:v ...`, one feature per non-zero pixel, scaled to (0, 1]."""
    values = np.array([f"{v / 255:.4g}" for v in range(256)], dtype=object)
    names = np.array([f"{i}:" for i in range(x.shape[1])], dtype=object)
    prefixes = ["|"] * len(x) if labels is None else [f"{int(y) + 1} |" for y in labels]
    return [prefix + " " + " ".join(names[(nz := np.flatnonzero(row))] + values[row[nz]])
            for prefix, row in zip(prefixes, x, strict=True)]


def vw_pipeline(train: Path, test: Path, work: Path, passes: int = 10) -> dict[str, Any]:
    """Vowpal Wabbit --oaa multiclass, logistic loss, `passes` passes: convert, train, predict."""
    from sklearn.metrics import f1_score

    stages, lap = stage_timer()

    labels, x = read_pixels(train, labeled=True)
    _, x_test = read_pixels(test, labeled=False)
    cut = split_point(len(x))
    classes = int(labels.max()) + 1
    files = {"train": work / "train.vw", "eval": work / "eval.vw", "test": work / "test.vw"}
    for name, (y, rows) in {"train": (labels[:cut], x[:cut]), "eval": (labels[cut:], x[cut:]),
                            "test": (None, x_test)}.items():
        files[name].write_text("\n".join(vw_lines(y, rows)) + "\n")
    lap("convert")
    model = vw_train(files["train"], work, passes, f"--oaa {classes}")
    lap("train")
    predicted = vw_predict(model, files["eval"], work / "eval.pred", probabilities=False)
    f1 = f1_score(labels[cut:], predicted.astype(int) - 1, average="macro")
    lap("evaluate")
    probabilities = vw_predict(model, files["test"], work / "test.pred", probabilities=True)
    assert len(probabilities) == len(x_test)
    lap("predict_test")
    return {"seconds": sum(stages.values()), "stages": stages, "macro_f1": float(f1)}


def vw_train(data: Path, work: Path, passes: int, *flags: str) -> Path:
    """Train Vowpal Wabbit on `data` (logistic loss, `passes` passes over a fresh cache in `work`,
    extra `flags` first); the saved model's path, work/model.vw."""
    from vowpalwabbit import Workspace

    model, cache = work / "model.vw", work / "train.cache"
    cache.unlink(missing_ok=True)
    command = (f"--loss_function logistic --passes {passes} --holdout_off -k "
               f"--cache_file {cache} -d {data} -f {model} --quiet")
    learner = Workspace(" ".join((*flags, command)))
    learner.run_parser()
    learner.finish()
    return model


def vw_predict(model: Path, data: Path, out: Path, probabilities: bool) -> np.ndarray:
    """Predictions of a saved VW model: class numbers, or `k:p` pairs turned into a matrix."""
    from vowpalwabbit import Workspace

    flags = " --probabilities" if probabilities else ""
    learner = Workspace(f"-t -i {model} -d {data} -p {out} --quiet{flags}")
    learner.run_parser()
    learner.finish()
    if not probabilities:
        return np.loadtxt(out, dtype=float)
    rows = [line.split() for line in out.read_text().splitlines()]
    return np.array([[float(pair.split(":")[1]) for pair in row] for row in rows])


@dataclass
class Server:
    """An `openaml serve` subprocess on a free loopback port with a data dir of its own."""

    data_dir: Path
    extra: list[str] = field(default_factory=list)
    limit_as_bytes: int | None = None  # RLIMIT_AS of the server process, if any
    cgroup_procs: Path | None = None  # the cgroup.procs file of a cgroup to start it in
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def put(self, key: str, source: Path | bytes) -> str:
        """'Upload' to the embedded object store by writing DATA_DIR/s3/BUCKET/KEY."""
        target = self.data_dir / "s3" / BUCKET / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        return f"s3://{BUCKET}/{key}"

    def start(self) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "openaml", "serve", "--port", str(self.port),
                   "--data-dir", str(self.data_dir), "--log-level", "warning", *self.extra]
        limit, procs = self.limit_as_bytes, self.cgroup_procs

        def cap() -> None:
            import resource

            if procs is not None:
                procs.write_text(str(os.getpid()))
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self.log = open(self.data_dir.parent / f"{self.data_dir.name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=os.environ | CREDENTIALS | self.env,
                                        preexec_fn=cap if limit or procs else None)  # noqa: PLW1509
        deadline = time.monotonic() + 60
        while not (port_open(self.port) and self.warm()):  # start-up costs are not timed
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"openaml serve did not start; see {self.log.name}")
            time.sleep(0.05)

    def warm(self) -> bool:
        """Whether the server has run its start-up warm-up (GET /health; only the process
        that runs jobs reports it)."""
        with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
            return bool(json.load(response).get("warm"))

    def peak_rss_mib(self) -> float:
        """VmHWM of the server process: its peak resident set so far."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """The server started on an empty data folder (a kept --work folder holds an earlier run's
    entities, which the Describe calls would also list), stopped at the end."""
    shutil.rmtree(server.data_dir, ignore_errors=True)
    server.data_dir.mkdir(parents=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ml_client(url: str) -> Any:
    import boto3

    return boto3.client("machinelearning", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="openaml-bench", aws_secret_access_key="openaml-bench")


def schemas(train: Path) -> tuple[str, str]:
    """Training and batch schemas for a Kaggle layout: target first, features CATEGORICAL."""
    target, *features = header(train)

    def schema(names: list[str], target_name: str | None) -> str:
        attributes = [{"attributeName": n, "attributeType": "CATEGORICAL"} for n in names]
        return json.dumps({"version": "1.0", "targetAttributeName": target_name,
                           "dataFormat": "CSV", "dataFileContainsHeader": True,
                           "attributes": attributes, "excludedAttributeNames": []})

    return schema([target, *features], target), schema(features, None)


def load_workflow() -> Any:
    spec = importlib.util.spec_from_file_location("openaml_bench_workflow", WORKFLOW)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def openaml_pipeline(server: Server, train: Path, test: Path, max_passes: int = 10,
                     parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The MNIST workflow (examples/mnist/workflow.py) against `server`, with `parameters` added
    to the training's; service timestamps."""
    train_schema, batch_schema = schemas(train)
    uris = {"train": server.put(f"input/{train.name}", train),
            "test": server.put(f"input/{test.name}", test),
            "train_schema": server.put("config/train.schema.json", train_schema.encode()),
            "batch_schema": server.put("config/batch.schema.json", batch_schema.encode()),
            "recipe": server.put("config/recipe.json",
                                 b'{"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL"]}')}
    workflow = load_workflow()
    # The example backs off to 2 s between polls; poll every POLL_S instead (same calls).
    workflow.time = _FastPolling()
    argv = ["--endpoint-url", server.url, "--train-uri", uris["train"], "--test-uri", uris["test"],
            "--train-schema-uri", uris["train_schema"], "--batch-schema-uri", uris["batch_schema"],
            "--recipe-uri", uris["recipe"], "--output-uri", f"s3://{BUCKET}/output/",
            "--local-store", str(server.data_dir / "s3"), "--max-passes", str(max_passes),
            *(f"--parameter={key}={value}" for key, value in (parameters or {}).items())]
    for name, value in CREDENTIALS.items():  # the workflow's boto3 client reads the environment
        os.environ.setdefault(name, value)
    output = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(output):
        code = workflow.main(argv)
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"the workflow failed:\n{output.getvalue()}")
    ml = ml_client(server.url)
    jobs = job_times(ml)
    model = ml.describe_ml_models()["Results"][0]
    jobs["training"] |= training_passes(ml.get_ml_model(MLModelId=model["MLModelId"])["LogUri"])
    evaluation = ml.describe_evaluations()["Results"][0]
    return {"seconds": wall, "macro_f1": float(
                evaluation["PerformanceMetrics"]["Properties"]["MulticlassAvgFScore"]),
            "model_id": model["MLModelId"], "jobs": jobs,
            "service_span_s": max(j["finished"] for j in jobs.values())
            - min(j["created"] for j in jobs.values()),
            "peak_rss_mib": server.peak_rss_mib(), "workflow_output": output.getvalue()}


class _FastPolling:
    """The `time` module as workflow.py sees it, with sleeps capped at POLL_S."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, POLL_S))


def training_passes(log_uri: str) -> dict[str, int]:
    """The passes the training log tells of: the model's, and those of its cross-validation's
    folds (small data only); empty when the log cannot be read."""
    import re
    import urllib.request

    try:
        with urllib.request.urlopen(log_uri, timeout=10) as answer:
            log = answer.read().decode()
    except OSError:
        return {}
    return {"passes": len(re.findall(r"^.*\bpass \d+ of (?:the )?\d+", log, re.MULTILINE)),
            "validation_passes": log.count("cross-validation pass ")}


def job_times(ml: Any) -> dict[str, dict[str, float]]:
    """Per job: created/started/finished (epoch s), run and queued seconds, from the Get* calls."""
    found = {}
    for kind, describe, get, key in (
            ("datasource", ml.describe_data_sources, ml.get_data_source, "DataSourceId"),
            ("training", ml.describe_ml_models, ml.get_ml_model, "MLModelId"),
            ("evaluation", ml.describe_evaluations, ml.get_evaluation, "EvaluationId"),
            ("batch_prediction", ml.describe_batch_predictions, ml.get_batch_prediction,
             "BatchPredictionId")):
        for listed in describe()["Results"]:
            item = get(**{key: listed[key]})
            name = kind if kind != "datasource" else "datasource " + item["Name"].split(" ", 1)[1]
            times = {"created": item["CreatedAt"].timestamp(),
                     "started": item["StartedAt"].timestamp(),
                     "finished": item["FinishedAt"].timestamp()}
            times["run_s"] = times["finished"] - times["started"]
            times["queued_s"] = times["started"] - times["created"]
            found[name] = times
    return found
