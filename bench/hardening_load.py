"""Predict under load while models train, then the per-endpoint rate limit (issue #14).

    .venv/bin/python bench/hardening_load.py [--seconds 60]

Phase 1: `openaml serve --predict-rate-limit 0` serves a BINARY model trained on synthetic
tabular data (numbers, categories, a little text) at a real-time endpoint. A background thread
keeps models training on a bigger datasource (a new one as soon as one ends) and samples their
status with GetMLModel, while wrk replays pre-signed Predict requests (bench/predict_load.py) for
`--seconds`; a `response` hook tallies every answer by status and shape. The target: at least
2,000 requests/s, every answer a 200 with a Prediction, no socket error, training INPROGRESS
during the window.

Phase 2: the same data dir served again with the default limit (200 requests/s per endpoint,
spec §4.3); the endpoint comes back READY after the restart. wrk floods it for
`--flood-seconds`: every answer must be a 200 with a Prediction or a 417 LimitExceededException
(never a 5xx), and the accepted rate, less the bucket's initial burst, must be within 10 % of 200.

Prints one JSON line, then one human line per phase; the exit status is 1 when a target is
missed. Results are facts about one machine: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pipeline import Server, ml_client  # bench/, this script's folder
from predict_load import endpoint_ready, lua_script, signed_request

from openaml.cli.bench import TARGETS

DEFAULT_RATE_LIMIT = 200  # spec §4.3: the per-endpoint token bucket's rate and capacity
RATE_TOLERANCE = 0.10
POLL_S = 0.25

# Appended to predict_load's replay script: tally answers per thread ("200 Prediction",
# "417 LimitExceededException", "500 InternalServerException", ...) and print them with wrk's
# socket errors and latency percentiles as one JSON line (replacing its `done`).
TALLY_LUA = """
answers = {}
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
response = function(status, headers, body)
  local shape = string.match(body or "", '"__type"%s*:%s*"([%w%.#:]+)"')
  if shape == nil then
    shape = string.find(body or "", '"Prediction"', 1, true) and "Prediction" or "unknown"
  end
  local key = status .. " " .. shape
  answers[key] = (answers[key] or 0) + 1
end
done = function(summary, latency, _)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("answers")) do
      total[key] = (total[key] or 0) + n
    end
  end
  local parts = {}
  for key, n in pairs(total) do
    table.insert(parts, string.format('"%s": %d', key, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"answers": {%s}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, table.concat(parts, ", ")))
end
"""
SOCKET_ERRORS = ("connect_errors", "read_errors", "write_errors", "timeouts")
ATTRIBUTES = (("age", "NUMERIC"), ("income", "NUMERIC"), ("city", "CATEGORICAL"),
              ("device", "CATEGORICAL"), ("comment", "TEXT"), ("churned", "BINARY"))


def synthetic_csv(rows: int, seed: int) -> tuple[bytes, list[dict[str, str]]]:
    """A CSV with a learnable BINARY target, and its first 100 records without the target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    income = np.round(rng.lognormal(10, 0.6, rows), 2)
    cities = np.array(["paris", "lyon", "berlin", "madrid", "rome", "oslo"])
    devices = np.array(["ios", "android", "web"])
    city, device = rng.integers(0, len(cities), rows), rng.integers(0, len(devices), rows)
    signal = (age - 50) / 20 - np.log(income / 22000) + (device == 2) - 0.5 * (city < 2)
    churned = (signal + rng.normal(0, 0.5, rows) > 0).astype(int)
    words = np.array(["great service", "too expensive", "slow app", "friendly staff",
                      "will leave", "happy so far"])
    comment = words[(churned * 3 + rng.integers(0, 3, rows)) % len(words)]
    names = [name for name, _ in ATTRIBUTES]
    lines = [",".join(names)] + [
        f"{a},{i},{cities[c]},{devices[d]},{t},{y}"
        for a, i, c, d, t, y in zip(age, income, city, device, comment, churned, strict=True)]
    records = [dict(zip(names[:-1], line.split(",")[:-1], strict=True)) for line in lines[1:101]]
    return ("\n".join(lines) + "\n").encode(), records


def data_schema() -> str:
    return json.dumps({
        "version": "1.0", "targetAttributeName": "churned", "dataFormat": "CSV",
        "dataFileContainsHeader": True,
        "attributes": [{"attributeName": n, "attributeType": t} for n, t in ATTRIBUTES]})


def wait_completed(get: Any, timeout: float = 600) -> None:
    """Poll a Get* call until its entity leaves PENDING/INPROGRESS; fail unless COMPLETED."""
    deadline = time.monotonic() + timeout
    while (found := get())["Status"] in ("PENDING", "INPROGRESS"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {found['Status']} after {timeout} s")
        time.sleep(POLL_S)
    if found["Status"] != "COMPLETED":
        raise RuntimeError(f"ended {found['Status']}: {found.get('Message')}")


class TrainingLoad:
    """Keeps `parallel` models training on one datasource, creating a new one as each ends,
    and samples their statuses with GetMLModel every POLL_S seconds."""

    def __init__(self, ml: Any, datasource_id: str, passes: int, parallel: int) -> None:
        self.ml, self.datasource_id, self.passes, self.parallel = ml, datasource_id, passes, parallel
        self.samples: list[tuple[float, int]] = []  # (time.monotonic(), models INPROGRESS)
        self.models: dict[str, str] = {}  # id -> last status seen
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="training-load", daemon=True)

    def start(self, timeout: float = 600) -> None:
        """Start, and return once a model is INPROGRESS (its datasource may still be loading)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not any(n for _, n in self.samples[-1:]):
            if self.failure or time.monotonic() > deadline:
                raise RuntimeError(f"no model started training: {self.failure or 'timeout'}")
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Stop sampling, and delete the models still training (a restart would run them
        again)."""
        self._stop.set()
        self._thread.join()
        for model_id, status in self.models.items():
            if status in ("PENDING", "INPROGRESS"):
                self.ml.delete_ml_model(MLModelId=model_id)

    def inprogress_share(self, start: float, end: float) -> tuple[int, float]:
        """(samples taken in [start, end], the share of them that saw a model INPROGRESS)."""
        seen = [n > 0 for t, n in self.samples if start <= t <= end]
        return len(seen), (sum(seen) / len(seen) if seen else 0.0)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                active = [m for m, s in self.models.items() if s in ("PENDING", "INPROGRESS")]
                for _ in range(self.parallel - len(active)):
                    model_id = f"training-{len(self.models) + 1}"
                    self.ml.create_ml_model(
                        MLModelId=model_id, MLModelType="BINARY",
                        TrainingDataSourceId=self.datasource_id,
                        Parameters={"sgd.maxPasses": str(self.passes), "sgd.shuffleType": "auto"})
                    active.append(model_id)
                    self.models[model_id] = "PENDING"
                for model_id in active:
                    self.models[model_id] = self.ml.get_ml_model(MLModelId=model_id)["Status"]
                    if self.models[model_id] == "FAILED":
                        raise RuntimeError(f"training model {model_id} FAILED")
                self.samples.append((time.monotonic(),
                                     sum(s == "INPROGRESS" for s in self.models.values())))
                self._stop.wait(POLL_S)
        except Exception as exc:  # noqa: BLE001 - reported by the run's result
            self.failure = f"{type(exc).__name__}: {exc}"


def run_wrk(script: Path, url: str, seconds: float, connections: int) -> dict[str, Any]:
    """wrk's BENCH line for `seconds` of closed-loop load with `connections` connections."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s",
               "-s", str(script), url.rstrip("/") + "/"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("BENCH "))
    raw: dict[str, Any] = json.loads(line[len("BENCH "):])
    raw["seconds"] = raw["duration_us"] / 1e6
    return raw


def write_script(path: Path, url: str, model_id: str, records: list[dict[str, str]]) -> Path:
    path.write_text(lua_script([signed_request(url, model_id, r) for r in records]) + TALLY_LUA)
    return path


def counted(raw: dict[str, Any], expected: tuple[str, ...] = ("200 Prediction",)
            ) -> dict[str, Any]:
    """Rate, latency (ms) and errors by kind of a wrk run: answers other than `expected`
    (non-2xx, or 2xx without a Prediction) and socket errors."""
    unexpected = {k: n for k, n in raw["answers"].items() if k not in expected}
    return {"requests": raw["requests"], "seconds": round(raw["seconds"], 3),
            "requests_per_s": round(raw["requests"] / raw["seconds"], 1),
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "max_ms": raw["max_us"] / 1000, "answers": raw["answers"],
            "errors": {"non_2xx": sum(n for k, n in unexpected.items() if not k.startswith("2")),
                       "2xx_without_prediction": sum(
                           n for k, n in unexpected.items() if k.startswith("2")),
                       **{k.removesuffix("_errors"): raw[k] for k in SOCKET_ERRORS}}}


def predict_under_training(server: Server, work: Path, args: argparse.Namespace
                           ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Phase 1: the endpoint's model, the training load, wrk; the result and the records."""
    ml = ml_client(server.url)
    small, records = synthetic_csv(args.rows, seed=1)
    big, _ = synthetic_csv(args.train_rows, seed=2)
    for name, data in (("small", small), ("big", big)):
        ml.create_data_source_from_s3(
            DataSourceId=name, ComputeStatistics=True,
            DataSpec={"DataLocationS3": server.put(f"{name}.csv", data), "DataSchema": data_schema()})
    ml.create_ml_model(MLModelId="served", MLModelType="BINARY", TrainingDataSourceId="small")
    wait_completed(lambda: ml.get_ml_model(MLModelId="served"))
    url = endpoint_ready(ml, "served")
    ml.predict(MLModelId="served", Record=records[0], PredictEndpoint=url)
    script = write_script(work / "phase1.lua", url, "served", records)
    training = TrainingLoad(ml_client(server.url), "big", args.max_passes, args.training_jobs)
    training.start()
    try:
        run_wrk(script, url, 2, args.connections)  # warm-up, untimed
        start = time.monotonic()
        raw = run_wrk(script, url, args.seconds, args.connections)
        end = time.monotonic()
    finally:
        training.stop()
    samples, share = training.inprogress_share(start, end)
    result = counted(raw) | {"connections": args.connections, "training": {
        "models": len(training.models),
        "completed": sum(s == "COMPLETED" for s in training.models.values()),
        "samples_in_window": samples, "inprogress_share": round(share, 3),
        "rows": args.train_rows, "max_passes": args.max_passes, "failure": training.failure}}
    return result, records


def flood_rate_limited(server: Server, work: Path, records: list[dict[str, str]],
                       args: argparse.Namespace) -> dict[str, Any]:
    """Phase 2: the restarted server's endpoint (default limit) flooded for a few seconds."""
    ml = ml_client(server.url)
    deadline = time.monotonic() + 60
    while (info := ml.get_ml_model(MLModelId="served")["EndpointInfo"])["EndpointStatus"] != "READY":
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {info['EndpointStatus']} after the restart")
        time.sleep(POLL_S)
    url = str(info["EndpointUrl"])
    script = write_script(work / "phase2.lua", url, "served", records)
    # Let the start-up mount finish: a Predict before it would mount the model again (a new,
    # full bucket), and the burst below would no longer be the bucket's capacity.
    time.sleep(1)
    raw = run_wrk(script, url, args.flood_seconds, args.connections)
    result = counted(raw, expected=("200 Prediction", "417 LimitExceededException"))
    accepted = raw["answers"].get("200 Prediction", 0)
    limit = int(info["PeakRequestsPerSecond"])
    return result | {"limit": limit, "accepted": accepted,
                     "limited": raw["answers"].get("417 LimitExceededException", 0),
                     "accepted_per_s": round(accepted / raw["seconds"], 1),
                     "accepted_per_s_after_burst": round((accepted - limit) / raw["seconds"], 1)}


def failures(phase1: dict[str, Any], phase2: dict[str, Any], min_rate: float) -> list[str]:
    found = []
    if phase1["requests_per_s"] < min_rate:
        found.append(f"phase 1: {phase1['requests_per_s']:,.0f} requests/s < {min_rate:,.0f}")
    if bad := {k: n for k, n in phase1["errors"].items() if n}:
        found.append(f"phase 1: errors {bad}")
    training = phase1["training"]
    if training["failure"] or training["inprogress_share"] == 0:
        found.append("phase 1: no model INPROGRESS during the window: "
                     + (training["failure"] or "none sampled"))
    if bad := {k: n for k, n in phase2["errors"].items() if n}:
        found.append(f"phase 2: errors {bad} (answers {phase2['answers']})")
    if not phase2["limited"]:
        found.append("phase 2: no LimitExceededException: the flood did not exceed the limit")
    if abs(phase2["accepted_per_s_after_burst"] - phase2["limit"]) > RATE_TOLERANCE * phase2["limit"]:
        found.append(f"phase 2: accepted {phase2['accepted_per_s_after_burst']:,.0f}/s after the "
                     f"burst, not within {RATE_TOLERANCE:.0%} of {phase2['limit']} (answered "
                     f"{phase2['requests_per_s']:,.0f}/s in all)")
    return found


def human(phase1: dict[str, Any], phase2: dict[str, Any]) -> list[str]:
    def errors(found: dict[str, int]) -> str:
        return ", ".join(f"{k} {n}" for k, n in found.items())

    training = phase1["training"]
    return [
        f"Predict while training: {phase1['requests']:,} requests in {phase1['seconds']:.1f} s = "
        f"{phase1['requests_per_s']:,.0f} req/s, p50 {phase1['p50_ms']:.2f} ms, p99 "
        f"{phase1['p99_ms']:.2f} ms, max {phase1['max_ms']:.1f} ms, {phase1['connections']} "
        f"connections; errors: {errors(phase1['errors'])}; training models: {training['models']} "
        f"({training['completed']} completed), INPROGRESS in "
        f"{training['inprogress_share']:.0%} of {training['samples_in_window']} samples",
        f"Rate limit {phase2['limit']}/s: {phase2['requests']:,} answers in "
        f"{phase2['seconds']:.1f} s ({phase2['requests_per_s']:,.0f}/s): {phase2['accepted']:,} "
        f"accepted ({phase2['accepted_per_s']:,.0f}/s, {phase2['accepted_per_s_after_burst']:,.0f}"
        f"/s after the {phase2['limit']}-request burst), {phase2['limited']:,} "
        f"LimitExceededException 417; errors: {errors(phase2['errors'])}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="phase 1 load")
    parser.add_argument("--flood-seconds", type=int, default=5, help="phase 2 load")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rows", type=int, default=3000, help="rows of the served model's data")
    parser.add_argument("--train-rows", type=int, default=200_000,
                        help="rows of the datasource the background models train on")
    parser.add_argument("--max-passes", type=int, default=100, help="their sgd.maxPasses")
    parser.add_argument("--training-jobs", type=int, default=1,
                        help="models training at once during phase 1")
    parser.add_argument("--http-workers", type=int, default=None,
                        help="openaml serve --http-workers (None: the server's default)")
    parser.add_argument("--min-rate", type=float, default=TARGETS["requests_per_s"],
                        help="phase 1 target in requests/s")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the server's data dir, logs and wrk scripts here")
    args = parser.parse_args(argv)
    workers = [] if args.http_workers is None else ["--http-workers", str(args.http_workers)]
    with tempfile.TemporaryDirectory(prefix="openaml-hardening-") as temp:
        work = args.work or Path(temp)
        shutil.rmtree(work / "server", ignore_errors=True)
        (work / "server").mkdir(parents=True)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        server = Server(work / "server", extra=["--predict-rate-limit", "0", *workers])
        server.start()
        try:
            phase1, records = predict_under_training(server, work, args)
        finally:
            server.stop()
            (work / "server.log").replace(work / "server-phase1.log")
        server = Server(work / "server", extra=workers)
        server.start()
        try:
            phase2 = flood_rate_limited(server, work, records, args)
        finally:
            server.stop()
    missed = failures(phase1, phase2, args.min_rate)
    print(json.dumps({"date": started, "predict_under_training": phase1,
                      "rate_limit": phase2, "min_rate": args.min_rate, "failures": missed}))
    print("\n".join(human(phase1, phase2)))
    print("FAILED: " + "; ".join(missed) if missed else "all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
