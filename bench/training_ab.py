"""Training time against an earlier commit, side by side on one machine (issue 21: the seed MNIST
workflow's training time on full-size data "should fall, not rise").

    .venv/bin/python bench/training_ab.py --base e3fc22c [--train FILE] [--rounds 4] [--trainings 5]

The base commit runs from a git worktree of this repository, this checkout from its own tree. Each
round starts a server of the base and then one of this checkout (alternating spreads the machine's
slow spells over both), each on an empty data folder: the training datasource (the first 70 % of
--train, statistics on, every attribute CATEGORICAL as in the seed's layout) is ingested, one
training that is not timed settles what the code compiles on first use, then --trainings MULTICLASS
trainings with the seed's parameters run one after the other, each alone. A training's time is its
job's FinishedAt - StartedAt. --train defaults to full-size MNIST in Kaggle's layout
(mnist_full.py). Prints one JSON line, then the means, medians, each round's ratio and a bootstrap
95 % interval of the ratio of the means (this checkout over the base).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from pipeline import Server, ml_client, running, schemas  # bench/, this script's folder

REPO = Path(__file__).resolve().parents[1]
SEED_PARAMETERS = {"sgd.maxPasses": "10", "sgd.l2RegularizationAmount": "1e-5", "sgd.shuffleType": "auto"}
RECIPE = '{"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL"]}'
SPLIT = '{"splitting": {"percentBegin": 0, "percentEnd": 70}}'


class CodeServer(Server):
    """A Server of the code in `source` (a tree's src/ folder, first on PYTHONPATH)."""

    def warm(self) -> bool:
        """An older commit's /health may not report its warm-up: then it is up once it answers."""
        with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
            return bool(json.load(response).get("warm", True))


def trainings(source: Path, train: Path, place: Path, count: int) -> list[float]:
    """The times of `count` trainings, alone, on a fresh server of the code in `source`."""
    server = CodeServer(place / "data", env={"PYTHONPATH": str(source)})
    with running(server):
        ml = ml_client(server.url)
        schema, _ = schemas(train)
        location = server.put(f"input/{train.name}", train)
        ml.create_data_source_from_s3(DataSourceId="ds-train", DataSpec={
            "DataLocationS3": location, "DataSchema": schema, "DataRearrangement": SPLIT}, ComputeStatistics=True)
        wait(ml.get_data_source, {"DataSourceId": "ds-train"})
        times = []
        for i in range(count + 1):  # the first compiles what is not compiled yet
            ml.create_ml_model(MLModelId=f"ml-{i}", MLModelType="MULTICLASS", TrainingDataSourceId="ds-train",
                               Parameters=SEED_PARAMETERS, Recipe=RECIPE)
            done = wait(ml.get_ml_model, {"MLModelId": f"ml-{i}"})
            if i:
                times.append((done["FinishedAt"] - done["StartedAt"]).total_seconds())
    return times


def wait(get: Any, key: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    """The entity once COMPLETED (RuntimeError if it failed)."""
    deadline = time.monotonic() + timeout
    while (entity := get(**key))["Status"] in ("PENDING", "INPROGRESS"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} still running")
        time.sleep(0.25)
    if entity["Status"] != "COMPLETED":
        raise RuntimeError(f"{key}: {entity['Status']} {entity.get('Message')}")
    return entity


def summary(rounds: list[tuple[list[float], list[float]]], seed: int = 0) -> dict[str, Any]:
    """Means and medians of both sides, each round's ratio of means (this checkout / base), and a
    bootstrap 95 % interval of the ratio of the overall means."""
    base = np.concatenate([b for b, _ in rounds])
    head = np.concatenate([h for _, h in rounds])
    rng = np.random.default_rng(seed)
    ratios = [rng.choice(head, len(head)).mean() / rng.choice(base, len(base)).mean() for _ in range(10_000)]
    return {"base_times": {"n": len(base), "mean_s": float(base.mean()), "median_s": float(np.median(base))},
            "head_times": {"n": len(head), "mean_s": float(head.mean()), "median_s": float(np.median(head))},
            "ratio_of_means": float(head.mean() / base.mean()),
            "round_ratios": [float(np.mean(h) / np.mean(b)) for b, h in rounds],
            "ratio_interval_95": [float(x) for x in np.percentile(ratios, [2.5, 97.5])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--train", type=Path, help="Kaggle-layout labeled CSV (default: full-size MNIST)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--trainings", type=int, default=5, help="timed trainings per server")
    args = parser.parse_args()
    if args.train is None:
        from mnist_full import write_mnist_full

        args.train = write_mnist_full(Path(tempfile.gettempdir()) / "openaml-mnist")["train"]
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{args.base}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="openaml-training-ab-") as temp:
        tree = Path(temp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), commit],
                       check=True)
        try:
            # its kernels compile here, not in a timed server (a commit without the command: in
            # its first training, which is not timed either)
            subprocess.run([sys.executable, "-m", "openaml", "warm-up"], capture_output=True, check=False,
                           timeout=1800, env=os.environ | {"PYTHONPATH": str(tree / "src")})
            rounds = []
            for r in range(args.rounds):
                base = trainings(tree / "src", args.train, Path(temp) / "work", args.trainings)
                head = trainings(REPO / "src", args.train, Path(temp) / "work", args.trainings)
                rounds.append((base, head))
                print(f"round {r + 1}: base {np.round(base, 3).tolist()} this checkout {np.round(head, 3).tolist()}",
                      file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
            shutil.rmtree(tree, ignore_errors=True)
    result = {"base": commit, "train": str(args.train), "rounds": [{"base": b, "head": h} for b, h in rounds],
              **summary(rounds)}
    print(json.dumps(result))
    low, high = result["ratio_interval_95"]
    base, head = result["base_times"], result["head_times"]
    print(f"training: base {commit[:7]} mean {base['mean_s']:.3f} s (median {base['median_s']:.3f}), "
          f"this checkout {head['mean_s']:.3f} s (median {head['median_s']:.3f}); ratio "
          f"{result['ratio_of_means']:.3f}, 95 % interval {low:.3f}-{high:.3f}")


if __name__ == "__main__":
    main()
