"""Bounded memory: ingest and train on a CSV several times larger than the server's memory cap.

The server runs in a memory cgroup of its own with the cap as its limit (v1 memory.limit_in_bytes
or v2 memory.max: what containers and systemd enforce) when this process may create one, and
otherwise under RLIMIT_AS (address space: every mapping counts, not just touched pages, so the
same cap is much tighter). Either way the server sees the cap and sizes its training buffers
from it. The file repeats the rows of the given Kaggle-layout train file. One datasource with
statistics and one MULTICLASS model (`passes` passes) are created through the API; the
server's VmHWM (peak resident set) is read afterwards.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline import Server, header, ml_client, running, schemas

# Arrow's default allocator (jemalloc/mimalloc) reserves large address ranges and glibc makes a
# 64 MiB arena per thread: both count against RLIMIT_AS without holding data.
CAPPED_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2",
              "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def repeat_rows(source: Path, target: Path, megabytes: int) -> Path:
    """Write `source`'s header, then its rows again and again until `megabytes` MiB are written."""
    with open(source, "rb") as stream:
        head = stream.readline()
        body = stream.read()
    if not body.endswith(b"\n"):
        body += b"\n"
    with open(target, "wb") as out:
        out.write(head)
        while out.tell() < megabytes << 20:
            out.write(body)
    return target


def capped_run(train: Path, work: Path, cap_mib: int, file_mib: int, passes: int = 1,
               timeout: float = 3600) -> dict[str, Any]:
    """Seconds per job, status and the server's peak RSS for a `file_mib` file under `cap_mib`."""
    big = repeat_rows(train, work / "big-train.csv", file_mib)
    train_schema, _ = schemas(train)
    with memory_cgroup(cap_mib << 20) as procs:
        server = Server(work / "capped-server", extra=["--workers", "1"], env=CAPPED_ENV,
                        limit_as_bytes=None if procs else cap_mib << 20, cgroup_procs=procs)
        result = _run(server, big, train_schema=train_schema, passes=passes, timeout=timeout)
    return {"cap_mib": cap_mib, "cap": "cgroup memory limit" if procs else "RLIMIT_AS",
            "file_mib": big.stat().st_size / 2**20, "rows": _rows(big), "passes": passes,
            **result, "columns": len(header(train))}


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[Path | None]:
    """A fresh memory cgroup limited to `limit` bytes; yields its cgroup.procs file, or None
    when none can be made here (no permission, no memory controller)."""
    root = Path("/sys/fs/cgroup")
    name = f"openaml-bench-{os.getpid()}"
    candidates = [(root / "memory" / name, "memory.limit_in_bytes"), (root / name, "memory.max")]
    for folder, limit_file in candidates:
        try:
            folder.mkdir()
        except OSError:
            continue
        try:
            (folder / limit_file).write_text(str(limit))
        except OSError:
            folder.rmdir()
            continue
        try:
            yield folder / "cgroup.procs"
        finally:
            with contextlib.suppress(OSError):
                folder.rmdir()  # empty once the server has exited
        return
    yield None


def _run(server: Server, big: Path, train_schema: str, passes: int, timeout: float) -> dict[str, Any]:
    with running(server):
        uri = server.put("input/big-train.csv", big)
        schema_uri = server.put("config/train.schema.json", train_schema.encode())
        recipe_uri = server.put("config/recipe.json",
                                b'{"groups": {}, "assignments": {}, "outputs": ["ALL_CATEGORICAL"]}')
        ml = ml_client(server.url)
        start = time.perf_counter()
        ml.create_data_source_from_s3(
            DataSourceId="big-ds", DataSpec={"DataLocationS3": uri,
                                             "DataSchemaLocationS3": schema_uri},
            ComputeStatistics=True)
        ml.create_ml_model(MLModelId="big-model", MLModelType="MULTICLASS",
                           TrainingDataSourceId="big-ds", RecipeUri=recipe_uri,
                           Parameters={"sgd.maxPasses": str(passes),
                                       "sgd.maxMLModelSizeInBytes": "104857600"})
        datasource, model = wait(ml, timeout)
        wall = time.perf_counter() - start
        rss = server.peak_rss_mib()
    return {"datasource": {"status": datasource["Status"], "message": datasource.get("Message"),
                           "run_s": _run_s(datasource)},
            "training": {"status": model["Status"], "message": model.get("Message"),
                         "run_s": _run_s(model)},
            "seconds": wall, "peak_rss_mib": rss,
            "completed": datasource["Status"] == model["Status"] == "COMPLETED"}


def wait(ml: Any, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        datasource = ml.get_data_source(DataSourceId="big-ds")
        model = ml.get_ml_model(MLModelId="big-model")
        if model["Status"] in ("COMPLETED", "FAILED", "DELETED") or time.monotonic() > deadline:
            return datasource, model
        time.sleep(0.5)


def _run_s(item: dict[str, Any]) -> float | None:
    if item.get("StartedAt") is None or item.get("FinishedAt") is None:
        return None
    return float((item["FinishedAt"] - item["StartedAt"]).total_seconds())


def _rows(path: Path) -> int:
    """Data rows of a CSV with a header (counted in 16 MiB blocks)."""
    count = -1
    with open(path, "rb") as stream:
        while block := stream.read(16 << 20):
            count += block.count(b"\n")
    return count
