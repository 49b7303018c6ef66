"""Datasource ingestion benchmark: ingest speed against a pyarrow floor.

Speed (default): build a Kaggle-layout MNIST train.csv of --rows rows (repeating the rows of
examples/mnist/data/train.csv.gz) or take --train PATH, then time side by side in one process,
alternating, after --warmup untimed runs of each, median of --repeat runs:
  (a) floor: pyarrow.csv.read_csv, multithreaded, every column typed uint8;
  (b) openaml.ml.data.ingest with examples/mnist/train.schema.json (label + 784 CATEGORICAL
      pixels, header), statistics on, writing the materialized copy to a temp file.
Prints a table and the ratio (b)/(a) of wall seconds, plus the ratio of CPU seconds (all
threads), which other load on the machine disturbs less; writes a JSON result (--out).
Ingestion under a memory cap is measured, with training, by `openaml bench --memory-cap`
(bench/memory.py).

    .venv/bin/python bench/ingest.py --out /tmp/ingest.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "mnist" / "data" / "train.csv.gz"
SCHEMA = ROOT / "examples" / "mnist" / "train.schema.json"


def build_train(path: Path, rows: int) -> Path:
    """A Kaggle-layout train.csv of `rows` rows by repeating the sample."""
    with gzip.open(SAMPLE, "rb") as stream:
        header, *lines = stream.read().splitlines(keepends=True)
    body = b"".join(lines)
    with open(path, "wb") as out:
        out.write(header)
        for _ in range(rows // len(lines)):
            out.write(body)
        out.write(b"".join(lines[:rows % len(lines)]))
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
    from openaml.ml.execution import Execution
    from openaml.ml.schema import parse_schema
    from openaml.settings import Settings

    schema = parse_schema(SCHEMA.read_text())
    obj = DataObject(f"s3://bench/{path.name}", path.name, path.stat().st_size,
                     lambda: open(path, "rb"))
    start, cpu = time.perf_counter(), time.process_time()
    with open(sink_path, "wb") as sink:
        report = ingest([obj], schema, parse_rearrangement(None), True, sink,
                        execution=Execution(Settings().job_threads))  # as a job runs it
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=42_000, help="rows of the generated file")
    parser.add_argument("--train", help="use this CSV (Kaggle MNIST layout) instead")
    parser.add_argument("--work", help="folder for generated files (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--out", help="write the JSON result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as temp:
        result = speed(args, Path(temp))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
