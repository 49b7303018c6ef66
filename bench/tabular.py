"""Tabular data as Amazon ML's users had it: a BINARY model with the default recipe, side by side.

OpenAML runs as a real `openaml serve` with no recipe given, on the data of tabular_data.py and
the split of tabular_diy.py, against the do-it-yourself pipelines there. `run` benchmarks every
size, `ratios` checks the targets and `table` writes the Markdown rows (`openaml bench --dataset
tabular` calls them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from pipeline import BUCKET, POLL_S, Server, job_times, ml_client, running
from tabular_data import TARGET, write_dataset
from tabular_diy import floor_parse, read_table, sklearn_pipeline, split_text, training_rows, vw_pipeline

# --- OpenAML through the API ---------------------------------------------------------------------

ACTIVE = ("PENDING", "INPROGRESS")
IDS = {"ds-train": "ds-tabular-train", "ds-eval": "ds-tabular-eval", "model": "ml-tabular",
       "evaluation": "ev-tabular", "batch": "bp-tabular"}


def openaml_workflow(server: Server, data: dict[str, Any], passes: int,
                     timeout: float = 3600) -> dict[str, Any]:
    """Both datasources (statistics on), a BINARY model with no recipe, its evaluation and a
    batch prediction of the evaluation rows, created at once; polled every POLL_S. The time is
    from the first Create call to the last job's FinishedAt (the service's clock, this
    machine's): a poll's delay is not counted (up to a fifth of a 50k workflow), and polling
    faster to shorten it would take CPU from the jobs (every 0.02 s cost 2M rows 12%)."""
    ml = ml_client(server.url)
    location = server.put(f"input/{data['path'].name}", data["path"])
    schema = server.put("config/tabular.schema.json", data["schema"])
    start = time.time()
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
    polled = time.time() - start
    jobs = job_times(ml)
    datasources = [j for name, j in jobs.items() if name.startswith("datasource")]
    recipe = ml.get_ml_model(MLModelId=IDS["model"], Verbose=True)["Recipe"]
    output = (server.data_dir / "s3" / BUCKET / "output" / "batch-prediction" / "result"
              / f"{IDS['batch']}-{data['path'].name}.gz")
    batch = csv.read_csv(output)
    return {"seconds": max(j["finished"] for j in jobs.values()) - start, "polled_seconds": polled,
            "auc": float(evaluation["PerformanceMetrics"]["Properties"]["BinaryAUC"]),
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
