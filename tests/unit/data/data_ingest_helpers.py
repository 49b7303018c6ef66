"""Helpers for datasource engine tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa

from openaml.ml.data import (
    FAST_PATHS,
    DataObject,
    IngestReport,
    ParseOptions,
    ingest,
    parse_rearrangement,
    read_materialized,
)
from openaml.ml.schema import parse_schema


def make_object(key: str, content: bytes, compress: bool = False) -> DataObject:
    stored = gzip.compress(content) if compress else content
    return DataObject(f"s3://bucket/{key}", key, len(stored), lambda: io.BytesIO(stored))


def make_schema(types: dict[str, str], header: bool = False, target: str | None = None):
    return parse_schema(json.dumps({
        "targetAttributeName": target, "dataFileContainsHeader": header,
        "attributes": [{"attributeName": n, "attributeType": t} for n, t in types.items()]}))


def run_ingest(objects, schema, split: str | None = None, stats: bool = False,
               parsing: ParseOptions = FAST_PATHS) -> tuple[IngestReport, pa.Table]:
    sink = io.BytesIO()
    report = ingest(objects, schema, parse_rearrangement(split), stats, sink, parsing=parsing)
    sink.seek(0)
    table = pa.Table.from_batches(list(read_materialized(sink)))
    return report, table


def same_records(report: dict) -> dict:
    """A report (to_dict) without the paths its blocks took: what every path must agree on."""
    return {k: v for k, v in report.items() if k != "blocksByPath"}
