"""Partitions of a datasource's input: byte ranges of its files, read apart and merged (data.md).

A record is one line (`lines`), so a file can be cut anywhere and each cut moved to the start
of the next line: every line then lies in exactly one range. A compressed file, or one whose
store cannot read from an offset, is one range. `plan_ranges` finds the cuts by reading a
few bytes at each; `count_range` counts a range's records and lines (running on every range at
once, where a cluster runs them); `number_partitions` turns the counts into each partition's
first record and first line number, by prefix sums. A partition read with those numbers
selects exactly the records a read of the whole input selects (sequential splits number the
records, random splits hash their file's key and byte offset) and reports the same file line
numbers (ingest.ingest_partition, merge_partitions).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

from openaml.ml.data.lines import BLOCK_BYTES, BOM, LineStart, count_line_ends
from openaml.ml.data.objects import DataObject

FIND_LINE_BYTES = 64 << 10  # read at a time while looking for the end of the line at a cut


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of file `file_index` of the input (end None: to the file's end);
    start is 0 or the start of a line."""

    file_index: int
    start: int
    end: int | None


@dataclass(frozen=True)
class RangeCount:
    """What a range holds: records (non-empty lines, less a header) and lines (all of them)."""

    records: int
    lines: int


@dataclass(frozen=True)
class Partition:
    """A range with the number of the input's records before it (all files) and the file
    line number of its first line."""

    range: ByteRange
    first_record: int
    first_line: int
    records: int

    @property
    def start(self) -> LineStart:
        return LineStart(self.range.start, self.first_line)


def splittable(obj: DataObject) -> bool:
    """Whether the object can be read from an offset (stored as it is, not compressed)."""
    return obj.open_at is not None and not (obj.key.endswith(".gz") or obj.uri.endswith(".gz"))


def plan_ranges(objects: Sequence[DataObject], partition_bytes: int) -> list[ByteRange]:
    """The ranges of the objects' bytes, in input order: cut about every `partition_bytes`,
    each cut moved to the start of the next line."""
    if partition_bytes < 1:
        raise ValueError("partition_bytes must be positive")
    ranges: list[ByteRange] = []
    for index, obj in enumerate(objects):
        starts = [0]
        if splittable(obj) and obj.size > partition_bytes:
            first_line = _first_line_end(obj)  # a header, if any, stays in the first range
            for cut in range(partition_bytes, obj.size, partition_bytes):
                if cut <= max(starts[-1], first_line):
                    continue  # a line longer than a partition ran past this cut
                line_start = _next_line_start(obj, cut)
                if line_start >= obj.size:
                    break
                starts.append(line_start)
        ends: list[int | None] = [*starts[1:], None]
        ranges += [ByteRange(index, start, end) for start, end in zip(starts, ends, strict=True)]
    return ranges


def _next_line_start(obj: DataObject, cut: int) -> int:
    """The offset of the first line that starts at or after `cut` (> 0): just after the
    first LF at or after cut - 1; the object's size when there is none."""
    assert obj.open_at is not None
    with obj.open_at(cut - 1, None) as stream:
        position = cut - 1
        while chunk := stream.read(FIND_LINE_BYTES):
            found = chunk.find(b"\n")
            if found >= 0:
                return position + found + 1
            position += len(chunk)
    return obj.size


def _first_line_end(obj: DataObject) -> int:
    """The offset just after the object's first non-empty line (data.md §1: past a byte order
    mark and empty lines, which may end in CR LF); its size when it has none."""
    with obj.open() as stream:
        chunk = stream.read(FIND_LINE_BYTES)
        offset = 3 if chunk.startswith(BOM) else 0  # of the chunk's first byte
        chunk = chunk.removeprefix(BOM)
        head = b""  # the first two bytes (at most) of the line read so far: enough to tell it empty
        while chunk:
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                if (head + chunk[start:end])[:2] not in (b"", b"\r"):
                    return offset + end + 1
                head, start = b"", end + 1
            head = (head + chunk[start:])[:2]
            offset += len(chunk)
            chunk = stream.read(FIND_LINE_BYTES)
    return obj.size


def open_range(obj: DataObject, part: ByteRange) -> BinaryIO:
    """A stream of the range's bytes; a whole compressed object's, decompressed."""
    if part.start == 0 and part.end is None:
        stream = obj.open()
        if obj.key.endswith(".gz") or obj.uri.endswith(".gz"):
            return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
        return stream
    assert obj.open_at is not None
    stream = obj.open_at(part.start, part.end)
    return stream if part.end is None else cast(BinaryIO, _Limited(stream, part.end - part.start))


def whole(file_index: int) -> ByteRange:
    """The range of a whole file."""
    return ByteRange(file_index, 0, None)


def count_range(obj: DataObject, part: ByteRange, skip_header: bool,
                block_bytes: int = BLOCK_BYTES) -> RangeCount:
    """The records and lines of one range (a compressed object is read decompressed)."""
    with open_range(obj, part) as stream:
        *_, (records, lines) = [(0, 0), *count_line_ends(stream, skip_header, block_bytes,
                                                         LineStart(part.start, 1))]
    return RangeCount(records, lines)


def number_partitions(ranges: Sequence[ByteRange], counts: Sequence[RangeCount]) -> list[Partition]:
    """Each range with its first record (over all files) and first line (in its file)."""
    partitions, record, line, file_index = [], 0, 1, -1
    for part, count in zip(ranges, counts, strict=True):
        if part.file_index != file_index:
            file_index, line = part.file_index, 1
        partitions.append(Partition(part, record, line, count.records))
        record, line = record + count.records, line + count.lines
    return partitions


class _Limited(io.RawIOBase):
    """The first `size` bytes of a stream; closing it closes the stream."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        super().__init__()
        self.stream, self.left = stream, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            return 0
        data = self.stream.read(min(len(buffer), self.left))
        buffer[:len(data)] = data
        self.left -= len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that are left for -1) in one call to the stream."""
        wanted = self.left if size is None or size < 0 else min(size, self.left)
        if wanted <= 0:
            return b""
        data = self.stream.read(wanted)
        self.left -= len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self.stream.close()
        super().close()
