"""The datasource engine: CSV reading, splitting, statistics and materialization (data.md)."""

from openaml.ml.data.ingest import DataError, IngestReport, ingest, materialized_schema
from openaml.ml.data.materialized import read_materialized
from openaml.ml.data.objects import DataObject
from openaml.ml.data.rearrangement import Rearrangement, RearrangementError, parse_rearrangement

__all__ = [
    "DataError",
    "DataObject",
    "IngestReport",
    "Rearrangement",
    "RearrangementError",
    "ingest",
    "materialized_schema",
    "parse_rearrangement",
    "read_materialized",
]
