"""The datasource engine: CSV reading, splitting, statistics and materialization (data.md)."""

from openaml.ml.data.ingest import (
    FAST_PATHS,
    GENERAL_PATH,
    DataError,
    IngestReport,
    ParseOptions,
    Target,
    ingest,
    ingest_many,
    materialized_schema,
)
from openaml.ml.data.materialized import read_materialized
from openaml.ml.data.objects import DataObject
from openaml.ml.data.rearrangement import Rearrangement, RearrangementError, parse_rearrangement

__all__ = [
    "FAST_PATHS",
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
