"""Cutting a byte stream into lines (data.md §1), block by block, with bounded memory.

Only LF ends a line (a CR right before it belongs to the CR LF end-of-line; a lone CR is an
ordinary byte). Values may not contain an end-of-line even inside quotes, so a record is
exactly one line and can be found by searching for LF bytes with NumPy, without a parser.
Completely empty lines are dropped here; the header line is dropped when asked. A line longer
than MAX_RECORD_BYTES is reported with `too_large` set and its bytes are never kept, so one
enormous line cannot exhaust memory. `count_lines` counts those lines without finding them.
A file that starts as gzip data (a name without .gz), or whose lines all end with a CR alone
(no LF at all), fails with a message saying so (`_FileStartChecks`) rather than as garbage.
A block knows the file line number of each of its lines (`line_number`, for messages), from
the number of its first line and the positions of the empty lines it dropped. A stream may
start inside a file, at the start of a line (`LineStart`: a partition of the file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from numba import njit

MAX_RECORD_BYTES = 102_400
BLOCK_BYTES = 16 << 20
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, dropped at the start of a file
GZIP_MAGIC = b"\x1f\x8b"
LONE_RETURNS = 2  # CRs, without an LF anywhere, that make a file one of CR-ended lines


class CompressedInput(OSError):
    """A file read as text starts as gzip data: its bytes would be read as garbage records
    (a batch prediction's datasource, which needs no valid target, would complete with them)."""

    def __init__(self) -> None:
        super().__init__("its content is gzip-compressed, not text: only objects whose name ends in .gz "
                         "(lower case) are decompressed, once; rename it to end in .gz")


class LoneReturnLineEnds(OSError):
    """A file without LF whose lines end with a CR alone: read as one line, it would fail as
    having no records (its one line the header) or one of a wrong field count."""

    def __init__(self) -> None:
        super().__init__("its lines end with a CR alone (as classic Mac OS wrote them), and only LF or CR LF "
                         "end a line, so the whole file is one line; save it with LF or CR LF line ends")


class _FileStartChecks:
    """What the chunks read from the start of a file tell before any line does: gzip data
    (CompressedInput), or lines ended by CRs alone (LoneReturnLineEnds: two CRs or more and,
    at its end, no LF at all). Chunks are scanned only until the first LF."""

    def __init__(self, at_file_start: bool) -> None:
        self.first = self.watching = at_file_start
        self.returns = 0

    def see(self, chunk: bytes) -> None:
        if not self.watching:
            return
        if self.first:
            self.first = False
            if chunk.startswith(GZIP_MAGIC):
                raise CompressedInput()
        if b"\n" in chunk:
            self.watching = False
        else:
            self.returns += chunk.count(b"\r")

    def end(self) -> None:
        if self.watching and self.returns >= LONE_RETURNS:
            raise LoneReturnLineEnds()


def lone_return_line_ends(text: bytes) -> bool:
    """Whether a whole text (a file, or a sample of one) has lines ended by CRs alone."""
    return b"\n" not in text and text.count(b"\r") >= LONE_RETURNS


@dataclass(frozen=True)
class LineStart:
    """Where a stream starts in its file: a byte offset at the start of a line, and that
    line's number (from 1). Only a stream from the file's start has a byte order mark or a
    header line."""

    offset: int = 0
    line: int = 1

    @property
    def at_file_start(self) -> bool:
        return self.offset == 0


FILE_START = LineStart()


@dataclass(frozen=True)
class LineBlock:
    """Complete lines of one file: `data[starts[k]:ends[k]]` is line k without its end-of-line.

    offsets: byte offset of each line's first byte in the (decompressed) file.
    too_large: lines over MAX_RECORD_BYTES (their span in `data` is empty).
    first_line: file line number (from 1) of the block's first line, kept or dropped.
    empty: positions among the block's lines, from `first_line` on, of the empty lines dropped.
    header: the header line dropped before the block's lines, in the first block of a file.
    """

    data: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    too_large: npt.NDArray[np.bool_]
    first_line: int = 1
    empty: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    header: bytes | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def line_number(self, index: int) -> int:
        """The file line number (from 1) of line `index` of the block."""
        kept_before_empty = self.empty - np.arange(len(self.empty))
        return self.first_line + index + int(np.searchsorted(kept_before_empty, index, "right"))

    def text(self, index: int) -> bytes:
        """The bytes of line `index` (empty for a line over MAX_RECORD_BYTES)."""
        return self.data[int(self.starts[index]):int(self.ends[index])].tobytes()


def iter_line_blocks(stream: BinaryIO, skip_header: bool, block_bytes: int = BLOCK_BYTES,
                     start: LineStart = FILE_START) -> Iterator[LineBlock]:
    """Yield the non-empty lines of `stream`, which starts at `start` of its file, in blocks
    of about `block_bytes`."""
    pending = b""           # an incomplete last line carried into the next read
    pending_offset = start.offset  # file offset of pending[0]
    skipping = False        # inside an over-long line already reported
    header_left = skip_header and start.at_file_start
    first = start.at_file_start
    checks = _FileStartChecks(start.at_file_start)
    line = start.line       # file line number of the next block's first line
    while True:
        chunk = stream.read(block_bytes)
        eof = not chunk
        checks.see(chunk)
        if eof:
            checks.end()
        if first:
            first = False
            if chunk.startswith(BOM):
                chunk, pending_offset = chunk[3:], 3
        if skipping:
            newline = chunk.find(b"\n")
            if newline < 0 and not eof:
                pending_offset += len(chunk)
                continue
            chunk = chunk[newline + 1:] if newline >= 0 else b""
            pending_offset += newline + 1
            skipping = False
        complete, pending = _cut(pending, chunk, eof)
        cut = len(complete)
        long_tail = len(pending) > MAX_RECORD_BYTES + 1
        block = _split(complete, pending_offset, pending_offset + cut if long_tail else None, line)
        line += len(block) + len(block.empty)
        pending_offset += cut + (len(pending) if long_tail else 0)
        if long_tail:
            skipping, pending = True, b""
        if header_left and len(block.offsets):
            header_left = False
            block = _drop_first(block)
        if len(block):
            yield block
        if eof:
            return


def count_lines(stream: BinaryIO, skip_header: bool, block_bytes: int = BLOCK_BYTES,
                start: LineStart = FILE_START) -> Iterator[int]:
    """The number of lines `iter_line_blocks` yields from `stream`, block by block (each
    value is a running total), without finding them."""
    for lines, _ in count_line_ends(stream, skip_header, block_bytes, start):
        yield lines


def count_line_ends(stream: BinaryIO, skip_header: bool, block_bytes: int = BLOCK_BYTES,
                    start: LineStart = FILE_START) -> Iterator[tuple[int, int]]:
    """Running totals, block by block, of the lines `iter_line_blocks` yields from `stream`
    and of all its lines, empty ones included: a line is empty when it has no byte but a CR
    right before its LF, so counting LF bytes and such empty lines is enough."""
    lines = empty = 0
    before = np.array([10, 10], np.uint8)   # the two bytes before the chunk; LFs at the start
    first, ended = start.at_file_start, True
    skip = int(skip_header and start.at_file_start)
    checks = _FileStartChecks(start.at_file_start)
    while chunk := stream.read(block_bytes):
        checks.see(chunk)
        if first:
            first, chunk = False, chunk.removeprefix(BOM)
        if not chunk:
            continue
        found, found_empty, before = _count_chunk(np.frombuffer(chunk, np.uint8), before)
        lines, empty, ended = lines + found, empty + found_empty, chunk.endswith(b"\n")
        yield max(0, lines - empty + (not ended) - skip), lines + (not ended)
    checks.end()


@njit(cache=True, nogil=True)
def _count_chunk(data: npt.NDArray[np.uint8], before: npt.NDArray[np.uint8]) -> tuple[int, int, npt.NDArray[np.uint8]]:
    """LF bytes in `data`, those that end an empty line, and the chunk's last two bytes
    (`before` holds the two bytes before it), without a branch per byte."""
    lines = empty = 0
    two, one = before[0], before[1]
    for byte in data:
        lf = byte == 10
        lines += lf
        empty += lf & ((one == 10) | ((one == 13) & (two == 10)))
        two, one = one, byte
    return lines, empty, np.array([two, one], np.uint8)


def _cut(pending: bytes, chunk: bytes, eof: bool) -> tuple[bytes, bytes]:
    """The complete lines of `pending` (an incomplete line, without LF) followed by `chunk`
    (all of it at the end of the stream), and the incomplete line after them; in one copy
    (none when the chunk ends a line and nothing was pending): two copies of every 16 MB
    block took a tenth of the line cutting."""
    if eof:
        return pending + chunk, b""
    cut = chunk.rfind(b"\n") + 1
    if cut == 0:
        return b"", pending + chunk
    if not pending and cut == len(chunk):
        return chunk, b""
    return b"".join((pending, memoryview(chunk)[:cut])), chunk[cut:]


def _split(data: bytes, base: int, long_line_at: int | None, first_line: int) -> LineBlock:
    """Lines of `data` (complete lines, the last may lack LF, the first is line `first_line`
    of the file); append an over-long line marker."""
    array = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_spans(array)
    lengths = ends - starts
    keep = lengths > 0
    too_large = lengths[keep] > MAX_RECORD_BYTES
    offsets = starts[keep] + base
    if not data.isascii():  # ASCII is UTF-8, and bytes.isascii 4 times as fast as decoding
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:   # replace bad bytes with U+FFFD; line count is unchanged
            array = np.frombuffer(data.decode("utf-8", "replace").encode("utf-8"), dtype=np.uint8)
            starts, ends = _line_spans(array)
    starts, ends = starts[keep], ends[keep]
    ends = np.where(too_large, starts, ends)
    if long_line_at is not None:
        starts = np.append(starts, len(array))
        ends = np.append(ends, len(array))
        offsets = np.append(offsets, long_line_at)
        too_large = np.append(too_large, True)
    return LineBlock(array, starts, ends, offsets, too_large, first_line, np.flatnonzero(~keep))


@njit(cache=True, nogil=True)
def _line_spans(array: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start and end (end-of-line excluded) of every line, empty ones included; a CR ends a
    line only when an LF follows it. Two compiled passes (count, then fill): NumPy's
    comparison and flatnonzero made a block-sized temporary, whose pages cost more than the
    scan."""
    n = len(array)
    count = 0
    for i in range(n):
        count += array[i] == 10
    lines = count + (1 if n and array[n - 1] != 10 else 0)
    starts, ends = np.empty(lines, np.int64), np.empty(lines, np.int64)
    line, start = 0, 0
    for i in range(n):
        if array[i] == 10:
            end = i - 1 if i > start and array[i - 1] == 13 else i
            starts[line], ends[line] = start, end
            line += 1
            start = i + 1
    if line < lines:  # the last line, without an LF
        starts[line], ends[line] = start, n
    return starts, ends


def _drop_first(block: LineBlock) -> LineBlock:
    """The block without its first line, which becomes its `header`."""
    before = block.line_number(0) - block.first_line   # empty lines before it
    return LineBlock(block.data, block.starts[1:], block.ends[1:], block.offsets[1:],
                     block.too_large[1:], block.first_line + before + 1,
                     block.empty[before:] - (before + 1), block.text(0))
