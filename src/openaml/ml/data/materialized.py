"""Reading the materialized Parquet copy of a datasource with bounded memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq


def read_materialized(source: str | Path | BinaryIO, columns: Sequence[str] | None = None,
                      batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """Yield the records in input order as batches of at most `batch_size` rows.

    columns: names to read (e.g. ["__rejected", "age"]); None reads them all.
    """
    with pq.ParquetFile(source) as parquet:
        yield from parquet.iter_batches(batch_size=batch_size,
                                        columns=list(columns) if columns is not None else None)
