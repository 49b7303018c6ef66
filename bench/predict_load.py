"""Predict under load: `wrk` replays pre-built, pre-signed Predict requests at a real-time endpoint.

The requests (one per test record, cycled) are signed once with SigV4 before the run, so the load
generator does no crypto or JSON work; wrk's C event loop on one thread is not the bottleneck.
Its Lua `done` hook prints requests, errors and latency percentiles as one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

LUA = """
local requests = {}
local payloads = {
%s
}
init = function(args)
  for i, p in ipairs(payloads) do
    requests[i] = wrk.format("POST", "/", p[1], p[2])
  end
end
local n = 0
request = function()
  n = n %% #requests + 1
  return requests[n]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, ' ..
    '"write_errors": %%d, "status_errors": %%d, "timeouts": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def signed_request(url: str, model_id: str, record: dict[str, str]) -> tuple[dict[str, str], str]:
    """(headers, body) of a Predict call, signed with SigV4 like boto3 signs it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"MLModelId": model_id, "Record": record, "PredictEndpoint": url})
    request = AWSRequest(method="POST", url=url.rstrip("/") + "/", data=body, headers={
        "X-Amz-Target": "AmazonML_20141212.Predict",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("openaml-bench", "openaml-bench"), "machinelearning",
              "us-east-1").add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "host"}, body


def lua_script(payloads: list[tuple[dict[str, str], str]]) -> str:
    def text(value: str) -> str:
        assert "]==]" not in value
        return f"[==[{value}]==]"

    rows = ",\n".join(
        "{{" + ", ".join(f"[ {text(k)} ] = {text(v)}" for k, v in headers.items()) + "}, "
        + text(body) + "}" for headers, body in payloads)
    return LUA % rows


def endpoint_ready(ml: Any, model_id: str, timeout: float = 60) -> str:
    """Create the model's real-time endpoint and wait until it is READY; its URL."""
    ml.create_realtime_endpoint(MLModelId=model_id)
    deadline = time.monotonic() + timeout
    while True:
        info = ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]
        if info["EndpointStatus"] == "READY":
            return str(info["EndpointUrl"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint still {info['EndpointStatus']}")
        time.sleep(0.05)


def predict_load(ml: Any, model_id: str, names: list[str], x: np.ndarray, work: Path,
                 seconds: int = 10, connections: int = 8, records: int = 100) -> dict[str, Any]:
    """Requests/s, p50/p99 latency (ms) and errors of `seconds` of wrk load on the endpoint,
    after two untimed seconds that let every HTTP process of the server load the model."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (Debian/Ubuntu: apt-get install wrk)"}
    url = endpoint_ready(ml, model_id)
    rows = [{n: str(v) for n, v in zip(names, row, strict=True)} for row in x[:records]]
    check = ml.predict(MLModelId=model_id, Record=rows[0], PredictEndpoint=url)["Prediction"]
    script = work / "predict.lua"
    script.write_text(lua_script([signed_request(url, model_id, r) for r in rows]))
    def command(duration: int) -> list[str]:
        return [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "2s",
                "-s", str(script), url.rstrip("/") + "/"]

    subprocess.run(command(2), capture_output=True, check=True)
    result = subprocess.run(command(seconds), capture_output=True, text=True, check=True)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("BENCH "))
    raw = json.loads(line[len("BENCH "):])
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors",
                                  "status_errors", "timeouts"))
    return {"requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "max_ms": raw["max_us"] / 1000, "errors": errors, "requests": raw["requests"],
            "seconds": seconds, "connections": connections, "distinct_records": len(rows),
            "wrk": raw, "sample_prediction": check}
