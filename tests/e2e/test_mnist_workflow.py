"""The example client, as a subprocess, against a real `openaml serve` on the MNIST 10k sample."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openaml.datasets import IDX_FILES, read_idx, write_kaggle

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mnist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("e2e")
    port = free_port()
    executable = shutil.which("openaml", path=str(Path(sys.executable).parent)) or "openaml"
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [executable, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, (data_dir / "server.log").read_text()
            time.sleep(0.1)
        yield url, data_dir
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def run_example(url: str, data_dir: Path, bucket: str, train: Path,
                *extra: str, test: Path = EXAMPLE / "data" / "test.csv.gz") -> subprocess.CompletedProcess[str]:
    """examples/mnist/workflow.py as a subprocess, on `train` and `test` (by default the
    sample's), with the example's schemas and recipe, all put into `bucket` of the server's
    local store."""
    store = data_dir / "s3" / bucket
    (store / "input").mkdir(parents=True)
    shutil.copy(train, store / "input" / train.name)
    shutil.copy(test, store / "input" / test.name)
    for name in ("train.schema.json", "batch.schema.json", "recipe.json"):
        shutil.copy(EXAMPLE / name, store / name)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e",
           "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "workflow.py"), "--endpoint-url", url,
         "--train-uri", f"s3://{bucket}/input/{train.name}",
         "--test-uri", f"s3://{bucket}/input/{test.name}",
         "--train-schema-uri", f"s3://{bucket}/train.schema.json",
         "--batch-schema-uri", f"s3://{bucket}/batch.schema.json",
         "--recipe-uri", f"s3://{bucket}/recipe.json", "--output-uri", f"s3://{bucket}/output",
         "--local-store", str(data_dir / "s3"), *extra],
        capture_output=True, text=True, timeout=600, env=env)


def test_example_client_runs_the_workflow(served: tuple[str, Path]) -> None:
    url, data_dir = served
    store = data_dir / "s3" / "digits"
    result = run_example(url, data_dir, "digits", EXAMPLE / "data" / "train.csv.gz",
                         "--test-labels", str(EXAMPLE / "data" / "test_labels.csv"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    f1 = float(re.search(r"macro-average F1 on the evaluation split: ([0-9.]+)", out).group(1))
    baseline = float(re.search(r"\(baseline ([0-9.]+)\)", out).group(1))
    assert f1 >= 0.89, out
    assert baseline < 0.2
    assert "confusion matrix" in out
    assert re.search(r"accuracy on the test labels: 0\.(8[89]|9)", out), out
    assert "checks: one row per test row" in out

    results = list((store / "output" / "batch-prediction" / "result").iterdir())
    assert len(results) == 1 and results[0].name.endswith("-test.csv.gz.gz")
    rows = list(csv.reader(io.StringIO(gzip.decompress(results[0].read_bytes()).decode())))
    assert rows[0] == [str(d) for d in range(10)]
    assert len(rows) == 1 + 3000
    for row in rows[1:50]:
        assert abs(sum(float(v) for v in row) - 1) < 1e-4
    manifests = list((store / "output" / "batch-prediction").glob("*.manifest"))
    assert len(manifests) == 1


def fashion_mnist(folder: Path) -> tuple[Path, Path]:
    """Fashion-MNIST's 60,000 training and 10,000 test images in Kaggle layout, from Debian's
    package dataset-fashion-mnist (scripts/test.sh installs it)."""
    source = Path("/usr/share/datasets/fashion-mnist")
    if not source.exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (scripts/test.sh installs it)")
    arrays = {name: read_idx((source / file_name).read_bytes()) for name, file_name in IDX_FILES.items()}
    paths = write_kaggle(folder, **arrays)
    return paths["train"], paths["test"]


@pytest.mark.parametrize("data, bound", [("sample", 0.93), ("fashion", 0.89)])
def test_example_client_trains_boosted_trees(served: tuple[str, Path], tmp_path: Path, data: str,
                                             bound: float) -> None:
    """The seed's workflow with openaml.algorithm=gbdt added: issue 18's macro F1 on the
    bundled sample (LightGBM on the raw pixels: 0.942) and Fashion-MNIST (target 0.89)."""
    url, data_dir = served
    train, test = ((EXAMPLE / "data" / "train.csv.gz", EXAMPLE / "data" / "test.csv.gz") if data == "sample"
                   else fashion_mnist(tmp_path))
    result = run_example(url, data_dir, f"trees-{data}", train, "--parameter", "openaml.algorithm=gbdt", test=test)
    assert result.returncode == 0, result.stdout + result.stderr
    f1 = float(re.search(r"macro-average F1 on the evaluation split: ([0-9.]+)", result.stdout).group(1))
    assert f1 >= bound, result.stdout


def test_guess_schema_command(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("id,age,smoker,comment,label\n1,34,yes,likes long walks,a\n2,51,no,quiet,b\n"
                    "3,29,yes,reads a lot of books,a\n")
    result = subprocess.run([sys.executable, "-m", "openaml", "guess-schema", str(data),
                             "--target", "label", "--row-id", "id"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    types = {a["attributeName"]: a["attributeType"] for a in schema["attributes"]}
    assert types["age"] == "NUMERIC" and types["smoker"] == "BINARY"
    assert types["label"] == "CATEGORICAL" and types["comment"] == "TEXT"
    assert schema["targetAttributeName"] == "label" and schema["rowId"] == "id"
    assert schema["dataFileContainsHeader"] is True


def test_example_client_stops_at_the_first_failure(served: tuple[str, Path]) -> None:
    """Training data without a valid target fail their datasources: the client returns 1 at
    once and prints every failed job with its message."""
    url, data_dir = served
    with gzip.open(EXAMPLE / "data" / "train.csv.gz", "rt") as stream:
        header = stream.readline().strip()
    width = header.count(",")
    train = data_dir / "broken-train.csv"
    train.write_text(header + "\n" + ("," + ",".join(["0"] * width) + "\n") * 50)
    result = run_example(url, data_dir, "broken", train)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"ds-train FAILED: .*target", result.stderr), result.stderr
    assert "all jobs done" not in result.stdout
