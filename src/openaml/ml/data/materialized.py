"""The materialized copy of a datasource: an Arrow IPC stream, written and read batch by batch.

An IPC stream costs next to nothing to write and read (buffers are stored as they are), unlike
Parquet whose per-column encoding dominated ingesting wide data. Buffers are not compressed:
a copy is read without a decompression (the Fashion-MNIST training split: about 0.1 s instead
of 0.15-0.6 s with LZ4, whose compression also took a fifth of ingesting), at twice the disk
space (129 MB instead of 61 MB). Each batch carries its own dictionaries (the
stream format allows replacing them), so memory stays bounded by one batch whatever the number
of distinct values. Copies written earlier with LZ4, or as Parquet, are still read.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

COMPRESSION = None  # see above; "lz4" halves the disk space
WRITE_BUFFER = 1 << 20
_PARQUET_MAGIC = b"PAR1"


@contextmanager
def open_writer(sink: BinaryIO, schema: pa.Schema) -> Iterator[ipc.RecordBatchStreamWriter]:
    """A stream writer of record batches of `schema` into `sink`, which stays open for its owner.
    Arrow writes each column's buffers and dictionaries separately (a Fashion-MNIST batch: about
    5,000 writes); they gather in an Arrow buffer of WRITE_BUFFER bytes, so the Python `sink`
    gets a few large writes instead."""
    buffered = pa.BufferedOutputStream(pa.PythonFile(sink, mode="w"), buffer_size=WRITE_BUFFER)
    try:
        # Threads only add overhead for hundreds of small column buffers (measured on MNIST).
        with ipc.new_stream(buffered, schema, options=ipc.IpcWriteOptions(compression=COMPRESSION,
                                                                           use_threads=False)) as writer:
            yield writer
    except BaseException:
        with contextlib.suppress(Exception):  # the sink may be what failed: its error is the one told
            buffered.detach()
        raise
    buffered.detach()  # flushed into `sink`, which is not closed


def read_materialized(source: str | Path | BinaryIO | pa.NativeFile, columns: Sequence[str] | None = None,
                      batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """Yield the records in input order as batches of at most `batch_size` rows.

    columns: names to read (e.g. ["__rejected", "age"]); None reads them all.
    """
    wanted = list(columns) if columns is not None else None
    if isinstance(source, (str, Path)):
        # Arrow's own file reader; not a memory map, whose pages would count towards the
        # process's address space and resident size as a pass reads the whole file
        with pa.OSFile(str(source)) as stream:
            yield from read_materialized(stream, wanted, batch_size)
        return
    if isinstance(source, io.BufferedReader):  # a stream that may not seek (an S3 object's)
        magic = source.peek(4)[:4]
    else:
        start = source.tell()
        magic = source.read(4)
        source.seek(start)
    if magic == _PARQUET_MAGIC:
        if not source.seekable():
            source = io.BytesIO(source.read())
        with pq.ParquetFile(source) as parquet:
            yield from parquet.iter_batches(batch_size=batch_size, columns=wanted)
        return
    # One thread: decompressing hundreds of small column buffers on a pool costs more than it
    # saves (Fashion-MNIST training file: 0.31 s with threads, 0.13-0.25 s without).
    with ipc.open_stream(source, options=ipc.IpcReadOptions(use_threads=False)) as reader:
        for batch in reader:
            if wanted is not None:
                batch = batch.select(wanted)
            for offset in range(0, batch.num_rows, batch_size):
                yield batch.slice(offset, batch_size)
