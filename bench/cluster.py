"""The MNIST workflow in local mode and on a Dask cluster of 1 and 2 workers, side by side.

Each mode gets a fresh data folder with the bundled MNIST sample (7,000 labeled rows, 3,000
unlabeled; or --train/--test files of the same layout), a fresh `openaml serve` and, for Dask, a
fresh `dask scheduler` with `dask worker` processes (one thread each, --memory-limit), all on
127.0.0.1. The workflow is examples/mnist/workflow.py, the plain boto3 client of
`openaml demo mnist`. It reports the wall time to the last job's end, each job's run time
(StartedAt to FinishedAt, as the service records them), records per second of each stage, and
the macro F1, which must be the same in every mode.

    .venv/bin/python bench/cluster.py [--workers 1,2] [--out FILE.json] [--markdown FILE.md]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist"
BUCKET = "bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "openaml-bench", "AWS_SECRET_ACCESS_KEY": "openaml-bench",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
START_SECONDS = 120
KINDS = {"DataSource": ("describe_data_sources", "DataSourceId"), "MLModel": ("describe_ml_models", "MLModelId"),
         "Evaluation": ("describe_evaluations", "EvaluationId"),
         "BatchPrediction": ("describe_batch_predictions", "BatchPredictionId")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def processes(logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to start processes into; each is ended (SIGTERM, then SIGKILL) on leaving."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def start(started: list[subprocess.Popen[bytes]], command: list[str], log: Path,
          env: dict[str, str] | None = None) -> None:
    with open(log, "wb") as out:
        started.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})}))


def dask_cluster(started: list[subprocess.Popen[bytes]], folder: Path, workers: int, memory: str) -> str:
    """Start a scheduler and `workers` one-thread workers; the scheduler's address."""
    scheduler_file = folder / "scheduler.json"
    start(started, [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                    "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
          folder / "scheduler.log")
    deadline = time.monotonic() + START_SECONDS
    while not scheduler_file.exists():
        if time.monotonic() > deadline:
            raise RuntimeError((folder / "scheduler.log").read_text())
        time.sleep(0.1)
    time.sleep(0.2)
    address = str(json.loads(scheduler_file.read_text())["address"])
    for number in range(workers):
        start(started, [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--memory-limit", memory,
                        "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
              folder / f"worker-{number}.log")
    return address


def serve(started: list[subprocess.Popen[bytes]], data_dir: Path, extra: list[str]) -> str:
    port = free_port()
    start(started, [sys.executable, "-m", "openaml", "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--data-dir", str(data_dir), "--log-level", "warning", *extra],
          data_dir.parent / "server.log", CREDENTIALS)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                if json.load(answer).get("warm", True):
                    return url
        except OSError:
            pass
        if time.monotonic() > deadline or started[-1].poll() is not None:
            raise RuntimeError((data_dir.parent / "server.log").read_text()[-3000:])
        time.sleep(0.1)


def prepare(data_dir: Path, train: Path, test: Path) -> None:
    bucket = data_dir / "s3" / BUCKET
    bucket.mkdir(parents=True)
    for source, name in ((train, "train.csv"), (test, "test.csv")):
        with (gzip.open(source) if source.suffix == ".gz" else open(source, "rb")) as stream, \
                open(bucket / name, "wb") as out:
            shutil.copyfileobj(stream, out)
    for name in ("train.schema.json", "batch.schema.json", "recipe.json"):
        shutil.copy(EXAMPLE / name, bucket / name)


def run_mode(name: str, workers: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run the workflow once in one mode (workers 0: local); what it measured."""
    folder = work / name
    data_dir = folder / "data"
    folder.mkdir()
    prepare(data_dir, args.train, args.test)
    with processes(folder) as started:
        extra = ["--workers", "2"]
        if workers:
            extra = ["--executor", "dask", "--dask-scheduler", dask_cluster(started, folder, workers, args.memory)]
        url = serve(started, data_dir, extra)
        begun = time.monotonic()
        output = subprocess.run(
            [sys.executable, str(EXAMPLE / "workflow.py"), "--endpoint-url", url,
             "--train-uri", f"s3://{BUCKET}/train.csv", "--test-uri", f"s3://{BUCKET}/test.csv",
             "--train-schema-uri", f"s3://{BUCKET}/train.schema.json",
             "--batch-schema-uri", f"s3://{BUCKET}/batch.schema.json", "--recipe-uri", f"s3://{BUCKET}/recipe.json",
             "--output-uri", f"s3://{BUCKET}/out/", "--local-store", str(data_dir / "s3")],
            capture_output=True, text=True, env={**os.environ, **CREDENTIALS}, timeout=3600)
        wall = time.monotonic() - begun
        if output.returncode != 0:
            raise RuntimeError(f"{name}: the workflow failed:\n{output.stdout}\n{output.stderr}")
        jobs = job_times(url)
        server_peak = peak_rss_mib(started[-1].pid)
        worker_peaks = [peak for p in started[1:-1] if (peak := peak_rss_mib(p.pid)) is not None]
        worker_peak = max(worker_peaks, default=None)
    f1 = re.search(r"macro-average F1 on the evaluation split: ([0-9.]+)", output.stdout)
    return {"mode": name, "workers": workers, "wall_s": round(wall, 2), "jobs": jobs,
            "macro_f1": float(f1.group(1)) if f1 else None,
            "server_peak_mib": server_peak, "worker_peak_mib": worker_peak}


def peak_rss_mib(pid: int) -> int | None:
    """The largest peak resident size (VmHWM) of process `pid` and its descendants (a Dask
    worker runs in a child of its nanny), in MiB; None where /proc does not tell."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            children.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(stat.parent.name))
    peaks, todo = [], [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError, StopIteration, ValueError):
            line = next(ln for ln in Path(f"/proc/{current}/status").read_text().splitlines()
                        if ln.startswith("VmHWM:"))
            peaks.append(int(line.split()[1]) // 1024)
    return max(peaks, default=None)


def job_times(url: str) -> dict[str, dict[str, float]]:
    """Each entity's run time (s) and records, by kind and name, from the service's Describe calls."""
    ml = boto3.client("machinelearning", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    found: dict[str, dict[str, float]] = {}
    for kind, (describe, id_key) in KINDS.items():
        for entity in getattr(ml, describe)()["Results"]:
            seconds = (entity["FinishedAt"] - entity["StartedAt"]).total_seconds()
            found[f"{kind} {entity.get('Name') or entity[id_key]}"] = {"run_s": round(seconds, 2)}
    return found


def table(results: list[dict[str, Any]]) -> list[str]:
    names = sorted({name for result in results for name in result["jobs"]})
    lines = ["| job | " + " | ".join(r["mode"] for r in results) + " |",
             "|---|" + "---:|" * len(results)]
    lines.append("| wall to the last job's end (s) | " + " | ".join(f"{r['wall_s']:.2f}" for r in results) + " |")
    for name in names:
        lines.append(f"| {name} (s) | " + " | ".join(
            f"{r['jobs'][name]['run_s']:.2f}" if name in r["jobs"] else "" for r in results) + " |")
    lines.append("| macro F1 | " + " | ".join(f"{r['macro_f1']:.4f}" for r in results) + " |")
    lines.append("| peak RSS of the server, MiB | " + " | ".join(str(r["server_peak_mib"]) for r in results) + " |")
    lines.append("| peak RSS of a worker, MiB | " + " | ".join(
        str(r["worker_peak_mib"]) if r["worker_peak_mib"] is not None else "" for r in results) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=EXAMPLE / "data" / "train.csv.gz")
    parser.add_argument("--test", type=Path, default=EXAMPLE / "data" / "test.csv.gz")
    parser.add_argument("--workers", default="1,2", help="Dask worker counts to run (besides local mode)")
    parser.add_argument("--memory", default="4GiB", help="each Dask worker's --memory-limit")
    parser.add_argument("--no-local", action="store_true", help="run the Dask modes alone")
    parser.add_argument("--work", type=Path, default=None, help="keep the data folders and logs here")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="openaml-cluster-")))
        work.mkdir(parents=True, exist_ok=True)
        results = [] if args.no_local else [run_mode("local", 0, args, work)]
        for count in (int(c) for c in args.workers.split(",") if c):
            results.append(run_mode(f"dask, {count} worker{'s' * (count > 1)}", count, args, work))
    lines = table(results)
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps({"results": results}, indent=2))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
