"""The datasource engine: CSV reading, splitting, statistics and materialization (data.md)."""

from openaml.ml.data.ingest import (
    FAST_PATHS,
    GENERAL_PATH,
    DataError,
    IngestReport,
    ParseOptions,
    PartialIngest,
    Target,
    count_partition,
    ingest,
    ingest_many,
    ingest_partition,
    materialized_schema,
    merge_partitions,
    merged_partials,
    plan_partitions,
    rejected_lines,
)
from openaml.ml.data.materialized import read_materialized
from openaml.ml.data.objects import DataObject
from openaml.ml.data.partitions import ByteRange, Partition, RangeCount, number_partitions
from openaml.ml.data.rearrangement import Rearrangement, RearrangementError, parse_rearrangement

__all__ = [
    "FAST_PATHS",
    "ByteRange",
    "Partition",
    "PartialIngest",
    "RangeCount",
    "count_partition",
    "ingest_partition",
    "merge_partitions",
    "merged_partials",
    "number_partitions",
    "plan_partitions",
    "rejected_lines",
    "GENERAL_PATH",
    "DataError",
    "DataObject",
    "IngestReport",
    "ParseOptions",
    "Rearrangement",
    "RearrangementError",
    "Target",
    "ingest",
    "ingest_many",
    "materialized_schema",
    "parse_rearrangement",
    "read_materialized",
]
