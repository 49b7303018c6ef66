"""Datasource ingestion benchmark: ingest speed against a pyarrow floor, and bounded memory.

Speed (default): build a Kaggle-layout MNIST train.csv of --rows rows (repeating the rows of
examples/mnist/data/train.csv.gz) or take --train PATH, then time side by side in one process,
alternating, after --warmup untimed runs of each, median of --repeat runs:
  (a) floor: pyarrow.csv.read_csv, multithreaded, every column typed uint8;
  (b) openaml.ml.data.ingest with examples/mnist/train.schema.json (label + 784 CATEGORICAL
      pixels, header), statistics on, writing the materialized copy to a temp file.
Prints a table and the ratio (b)/(a) of wall seconds, plus the ratio of CPU seconds (all
threads), which other load on the machine disturbs less; writes a JSON result (--out).

Memory (--memory-cap MB): generate a file --cap-file-mb MB large (repeated rows), then re-run
this script in a child process under RLIMIT_AS = the cap (address space, so every allocation
counts) to ingest it with statistics on; the child reports its peak RSS (getrusage).

    .venv/bin/python bench/ingest.py --out /tmp/ingest.json
    .venv/bin/python bench/ingest.py --memory-cap 1024 --cap-file-mb 3072 --out /tmp/ingest-cap.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "mnist" / "data" / "train.csv.gz"
SCHEMA = ROOT / "examples" / "mnist" / "train.schema.json"


def build_train(path: Path, rows: int | None = None, megabytes: int | None = None) -> Path:
    """A Kaggle-layout train.csv of `rows` rows (or about `megabytes` MB) by repeating the sample."""
    with gzip.open(SAMPLE, "rb") as stream:
        header, *lines = stream.read().splitlines(keepends=True)
    body = b"".join(lines)
    with open(path, "wb") as out:
        out.write(header)
        if rows is not None:
            for _ in range(rows // len(lines)):
                out.write(body)
            out.write(b"".join(lines[:rows % len(lines)]))
        else:
            while out.tell() < (megabytes or 0) << 20:
                out.write(body)
    return path


def time_floor(path: Path) -> tuple[float, float]:
    import pyarrow as pa
    import pyarrow.csv as csv

    names = _header(path)
    start, cpu = time.perf_counter(), time.process_time()
    table = csv.read_csv(path, read_options=csv.ReadOptions(use_threads=True),
                         convert_options=csv.ConvertOptions(
                             column_types={n: pa.uint8() for n in names}))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert table.num_columns == len(names)
    return elapsed, cpu


def _header(path: Path) -> list[str]:
    with open(path, "rb") as stream:
        return stream.readline().decode().strip().split(",")


def run_ingest(path: Path, sink_path: Path) -> tuple[float, float, object]:
    """Wall and CPU seconds (all threads) of one ingest, and its report."""
    from openaml.ml.data import DataObject, ingest, parse_rearrangement
    from openaml.ml.schema import parse_schema

    schema = parse_schema(SCHEMA.read_text())
    obj = DataObject(f"s3://bench/{path.name}", path.name, path.stat().st_size,
                     lambda: open(path, "rb"))
    start, cpu = time.perf_counter(), time.process_time()
    with open(sink_path, "wb") as sink:
        report = ingest([obj], schema, parse_rearrangement(None), True, sink)
    return time.perf_counter() - start, time.process_time() - cpu, report


def speed(args: argparse.Namespace, work: Path) -> dict[str, object]:
    path = Path(args.train) if args.train else build_train(work / "train.csv", rows=args.rows)
    sink = work / "materialized.out"
    for _ in range(args.warmup):   # one-time costs (lazy imports inside pyarrow) are not timed
        time_floor(path)
        run_ingest(path, sink)
    floor, ours, floor_cpu, ours_cpu = [], [], [], []
    for _ in range(args.repeat):
        seconds, cpu = time_floor(path)
        floor.append(seconds)
        floor_cpu.append(cpu)
        seconds, cpu, report = run_ingest(path, sink)
        ours.append(seconds)
        ours_cpu.append(cpu)
    result = {
        "file": str(path), "bytes": path.stat().st_size, "rows": report.records_read,  # type: ignore[attr-defined]
        "materialized_bytes": sink.stat().st_size, "repeat": args.repeat,
        "pyarrow_uint8_s": floor, "openaml_ingest_s": ours,
        "pyarrow_uint8_median_s": statistics.median(floor),
        "openaml_ingest_median_s": statistics.median(ours),
        "pyarrow_uint8_cpu_s": floor_cpu, "openaml_ingest_cpu_s": ours_cpu, "warmup": args.warmup,
    }
    result["ratio"] = result["openaml_ingest_median_s"] / result["pyarrow_uint8_median_s"]
    result["cpu_ratio"] = statistics.median(ours_cpu) / statistics.median(floor_cpu)
    print(f"file {path} ({result['bytes'] / 1e6:.1f} MB, {result['rows']:,} rows), "
          f"median of {args.repeat}")
    print(f"{'reader':<44}{'median s':>10}{'runs':>26}")
    for name, runs in (("pyarrow.csv.read_csv uint8, threads (floor)", floor),
                       ("openaml ingest, statistics, materialized", ours)):
        print(f"{name:<44}{statistics.median(runs):>10.3f}   "
              + " ".join(f"{r:.3f}" for r in runs))
    print(f"ratio ingest / floor: {result['ratio']:.2f} (wall); "
          f"{result['cpu_ratio']:.2f} (CPU seconds of all threads, median "
          f"{statistics.median(ours_cpu):.3f} / {statistics.median(floor_cpu):.3f})")
    return result


def capped(args: argparse.Namespace, work: Path) -> dict[str, object]:
    path = Path(args.train) if args.train else build_train(work / "big.csv",
                                                           megabytes=args.cap_file_mb)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--memory-cap", str(args.memory_cap),
         "--work", str(work)],
        capture_output=True, text=True, env=os.environ | {
            # Under an address-space cap, reserved-but-unused ranges count: Arrow's default
            # allocator and per-thread malloc arenas reserve much; the system pool does not.
            "ARROW_DEFAULT_MEMORY_POOL": "system", "OPENBLAS_NUM_THREADS": "1",
            "MALLOC_ARENA_MAX": "2"})  # each glibc arena reserves 64 MB of address space
    if child.returncode != 0:
        print(child.stdout, child.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(f"capped ingest failed (exit {child.returncode})")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"file {path}: {result['bytes'] / 2**20:,.0f} MiB, {result['rows']:,} rows; "
          f"address-space cap {args.memory_cap} MiB")
    print(f"ingest with statistics: {result['seconds']:.1f} s, peak RSS "
          f"{result['peak_rss_mib']:.0f} MiB, materialized {result['materialized_bytes'] / 2**20:,.0f} MiB")
    return result


def child(args: argparse.Namespace) -> None:
    cap = args.memory_cap << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    path = Path(args.child)
    sink = Path(args.work) / "materialized-capped.out"
    seconds, _, report = run_ingest(path, sink)
    print(json.dumps({
        "file": str(path), "bytes": path.stat().st_size, "rows": report.records_read,  # type: ignore[attr-defined]
        "cap_mib": args.memory_cap, "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "materialized_bytes": sink.stat().st_size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=42_000, help="rows of the generated file")
    parser.add_argument("--train", help="use this CSV (Kaggle MNIST layout) instead")
    parser.add_argument("--work", help="folder for generated files (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--out", help="write the JSON result here")
    parser.add_argument("--memory-cap", type=int, metavar="MB",
                        help="ingest a larger file under this address-space cap instead")
    parser.add_argument("--cap-file-mb", type=int, default=3072,
                        help="size of the file generated for --memory-cap")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory(dir=args.work) as temp:
        work = Path(temp)
        result = capped(args, work) if args.memory_cap else speed(args, work)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
