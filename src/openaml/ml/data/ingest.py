"""The datasource job's data work (data.md §7): read CSV objects once, validate and split the
records, count, compute statistics, and write the materialized copy (`materialized`).

Design. Each object is streamed in blocks of about 16 MB of complete lines (`lines`); a
record is exactly one non-empty line, so its number and byte offset are known without a
parser. `fields` classifies every line (too large, unterminated quote, wrong field count) and
locates the fields of the others with NumPy, so a rejected line keeps its place in the record
numbering and in the output order, which a CSV reader that merely skips bad rows cannot give.
Columns are built directly from the bytes and dictionary-encoded (TEXT stays plain strings);
type checks then run once per distinct value, and statistics are per-value count tables.
Blocks whose every field is an int16 written canonically (`integers`) are read by one
compiled pass; other blocks without quotes or white space (`plain`) by Arrow's CSV reader, with
integer columns parsed as integers. Reading, decompressing and parsing the next block
run in a thread while the current one is encoded, counted and written, so both cores work.
Each block becomes one record batch. A sequential split that is not "everything" needs
the record count N before its first block is selected, so it costs one extra pass that only
counts lines (`lines.count_lines`), run while the first block is read and parsed. Several
datasources of the same data and schema (a training and an evaluation split) can be written
from one read (`ingest_many`): parsing is shared, selection, counts and statistics are not.

Counts of missing and invalid values (and records with an invalid value) are taken over the
selected well-formed records, i.e. over what the materialized copy holds; records read and
rejected records are counted over all records (the 10,000-rejection rule applies to all).
The first rejected lines (`REJECTED_SHOWN`) are described, with their file line numbers, to a
`rejected` callback as they are found (the job log), and the first line of each reason in the
message of a DataError about rejections (expected and found field counts, the header line).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, fields, replace
from typing import Any, BinaryIO, TypeVar

import numpy as np
import pyarrow as pa

from openaml.ml.data.block_values import BlockValues
from openaml.ml.data.fields import REASONS, Fields, build_columns, split_fields
from openaml.ml.data.integers import parse_int16_block
from openaml.ml.data.lines import (
    BLOCK_BYTES,
    FILE_START,
    MAX_RECORD_BYTES,
    LineBlock,
    LineStart,
    count_lines,
    iter_line_blocks,
)
from openaml.ml.data.materialized import open_writer
from openaml.ml.data.objects import DataObject
from openaml.ml.data.partitions import (
    ByteRange,
    Partition,
    RangeCount,
    count_range,
    open_range,
    plan_ranges,
    whole,
)
from openaml.ml.data.plain import Parsed, encode_int16, encode_plain, is_plain, probe_integers, read_plain
from openaml.ml.data.rearrangement import Rearrangement
from openaml.ml.data.separators import comma_fields, other_separator
from openaml.ml.data.statistics import StatisticsBuilder, entry_counts, per_row
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.data.trimmed import is_trimmable, read_trimmed
from openaml.ml.errors import InputError
from openaml.ml.execution import ONE_THREAD, Execution, one_native_thread, two_at_a_time
from openaml.ml.schema import AttributeType, Schema, coerce_column

MAX_REJECTED = 10_000
REJECTED_SHOWN = 5      # rejected lines described to the `rejected` callback
SHOWN_CHARS = 200       # of a line's text in a description
SHOWN_NAMES = 10        # attribute names in a description
T = TypeVar("T")
PARSE_DEPTH = 3  # blocks parsed ahead of the one the caller takes
_READ_ERRORS = (OSError, EOFError, zlib.error)


class DataError(InputError):
    """The data makes the datasource FAILED (data.md §7); the message is its Message."""


@dataclass(frozen=True)
class ParseOptions:
    """How ingest reads CSV: in blocks of `block_bytes`, each by the first of the fast paths
    allowed here that can read it, else by the general path (fields.py), which reads any CSV.
    Every path gives the same records (the tests hold them to it): turning fast paths off is
    for comparing and diagnosing.

    int16: every field an integer in int16's range (MNIST's pixels), by a compiled scan;
    plain: no quote, and no white space at a field's ends, by Arrow's CSV reader;
    trimmed: quotes or white space that Arrow's reader can take once fields are trimmed.
    """

    int16: bool = True
    plain: bool = True
    trimmed: bool = True
    block_bytes: int = BLOCK_BYTES


FAST_PATHS = ParseOptions()
GENERAL_PATH = ParseOptions(int16=False, plain=False, trimmed=False)


@dataclass(frozen=True)
class IngestReport:
    """Counts of a datasource job; `statistics` is None unless they were computed."""

    files: list[str]
    number_of_files: int
    data_size_in_bytes: int
    records_read: int
    rejected_records: int
    rejected_by_reason: dict[str, int]
    selected_records: int            # selected by the split, rejected ones included
    selected_rejected: int
    records_with_invalid_values: int
    missing_counts: dict[str, int]
    invalid_counts: dict[str, int]
    blocks_by_path: dict[str, int]   # blocks read by each path ("int16", "plain", "trimmed", "general")
    statistics: DatasetStatistics | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (camelCase keys); values are shared, not copied
        (asdict's deep copy of the statistics took a second on 785 attributes)."""
        out = {_camel(f.name): getattr(self, f.name) for f in fields(self)}
        out["statistics"] = None if self.statistics is None else self.statistics.to_json()
        return out


def materialized_schema(schema: Schema) -> pa.Schema:
    """Arrow schema of the materialized copy: __file, __rejected, then one raw column per attribute."""
    dictionary = pa.dictionary(pa.int32(), pa.string())
    return pa.schema([pa.field("__file", pa.int32()), pa.field("__rejected", pa.bool_())] + [
        pa.field(a.name, pa.string() if a.type is AttributeType.TEXT else dictionary)
        for a in schema.attributes])


@dataclass(frozen=True)
class Target:
    """One materialized copy to write from a read of the data: its split, whether statistics
    are computed, and where the Arrow IPC stream goes."""

    rearrangement: Rearrangement
    compute_statistics: bool
    sink: BinaryIO


def ingest(objects: Sequence[DataObject], schema: Schema, rearrangement: Rearrangement,
           compute_statistics: bool, sink: BinaryIO,
           progress: Callable[[int], None] | None = None,
           rejected: Callable[[str], None] | None = None, execution: Execution = ONE_THREAD,
           parsing: ParseOptions = FAST_PATHS) -> IngestReport:
    """Read `objects` in order, write the selected records to `sink` (an Arrow IPC stream), and report.

    progress, if given, is called with the number of records read so far after each block;
    rejected with a description of each of the first REJECTED_SHOWN rejected lines. With two
    threads (`execution`), each block is read and parsed while the one before is counted and
    written, and a record count that a split needs runs beside the first blocks. `parsing`
    says which paths may read the blocks.
    """
    result, = ingest_many(objects, schema, [Target(rearrangement, compute_statistics, sink)],
                          progress, rejected, execution, parsing)
    if isinstance(result, DataError):
        raise result
    return result


def ingest_many(objects: Sequence[DataObject], schema: Schema, targets: Sequence[Target],
                progress: Callable[[int], None] | None = None,
                rejected: Callable[[str], None] | None = None,
                execution: Execution = ONE_THREAD,
                parsing: ParseOptions = FAST_PATHS) -> list[IngestReport | DataError]:
    """Read `objects` once for several targets (datasources of the same data and schema with
    different splits): each gets its records written and a report, or the DataError that
    fails it. Errors of the data itself (unreadable, too many rejected records) raise.
    progress, rejected, execution and parsing are as for `ingest`."""
    if not objects:
        raise DataError("The data location has no readable file")
    with one_native_thread("blas"):  # spinning BLAS threads only cost CPU
        return _ingest_many(objects, schema, targets, progress, rejected, execution, parsing)


def _ingest_many(objects: Sequence[DataObject], schema: Schema, targets: Sequence[Target],
                 progress: Callable[[int], None] | None,
                 rejected: Callable[[str], None] | None,
                 execution: Execution, parsing: ParseOptions) -> list[IngestReport | DataError]:
    needs_count = any(t.rearrangement.needs_count for t in targets)
    read_ended = threading.Event()  # however the read ends, a count still running stops
    with execution.helper("openaml-count") as counting, ExitStack() as stack:
        stack.callback(read_ended.set)
        # the record count runs while the first block is read and parsed (with two threads)
        counted: Future[int] | None = None
        if needs_count:
            counted = (counting.submit(_count_records, objects, schema, read_ended, parsing.block_bytes)
                       if counting is not None
                       else _done(_count_records(objects, schema, read_ended, parsing.block_bytes)))
        pieces = [(i, whole(i), FILE_START) for i in range(len(objects))]
        partials = _read_pieces(objects, pieces, 0, counted, schema, targets, progress, rejected,
                                execution, parsing)
    reports: list[IngestReport | DataError] = []
    for partial in partials:
        try:
            reports.append(_report(objects, schema, partial))
        except DataError as exc:
            reports.append(exc)
    return reports


def ingest_partition(objects: Sequence[DataObject] | Mapping[int, DataObject], partition: Partition, total: int,
                     schema: Schema,
                     targets: Sequence[Target], progress: Callable[[int], None] | None = None,
                     execution: Execution = ONE_THREAD,
                     parsing: ParseOptions = FAST_PATHS) -> list[PartialIngest]:
    """Read one partition of `objects` (partitions.py; a mapping from file number to object
    needs that of the partition alone) for several targets, `total` being the input's record
    count: each target gets the partition's selected records written to its
    sink (an Arrow IPC stream of its own) and the counts and statistics that
    `merge_partitions` combines. Rejected lines are kept for the merge, not passed on; too
    many rejected records in the partition alone raise DataError."""
    with one_native_thread("blas"):
        partials = _read_pieces(objects, [(partition.range.file_index, partition.range, partition.start)],
                                partition.first_record, _done(total), schema, targets, progress, None,
                                execution, parsing)
    for partial in partials:
        if partial.statistics is not None:
            partial.statistics.compact()  # small, without the blocks' buffers, to send
    return partials


def merge_partitions(objects: Sequence[DataObject], schema: Schema,
                     partials: Sequence[PartialIngest]) -> IngestReport | DataError:
    """The report of one target from its partitions' results, in input order (or from those
    merged already: `merged`); a DataError when the data fail the datasource (data.md §7),
    as a read of the whole input would."""
    merged = partials[0]
    for partial in partials[1:]:
        merged = merged_partials(merged, partial)
    if int(merged.rejected.sum()) > MAX_REJECTED:
        return DataError(_too_many_rejected(merged.rejected, merged.shown, schema.names))
    try:
        return _report(objects, schema, merged)
    except DataError as exc:
        return exc


def merged_partials(first: PartialIngest, then: PartialIngest) -> PartialIngest:
    """What two consecutive parts of the input found (neither is changed)."""
    merged = first.copy()
    merged.merge(then)
    return merged


def plan_partitions(objects: Sequence[DataObject], partition_bytes: int) -> list[ByteRange]:
    """The ranges of the objects to read apart (partitions.plan_ranges); DataError when an
    object cannot be read."""
    try:
        return plan_ranges(objects, partition_bytes)
    except _READ_ERRORS as exc:
        raise DataError(f"Cannot read the data: {exc}") from None


def count_partition(objects: Sequence[DataObject] | Mapping[int, DataObject], part: ByteRange, schema: Schema,
                    block_bytes: int = BLOCK_BYTES) -> RangeCount:
    """The records and lines of one range (partitions.count_range); DataError when it
    cannot be read."""
    obj = objects[part.file_index]
    try:
        return count_range(obj, part, schema.header, block_bytes)
    except _READ_ERRORS as exc:
        raise DataError(f"Cannot read {obj.uri}: {exc}") from None


def rejected_lines(schema: Schema, partials: Sequence[PartialIngest]) -> list[str]:
    """The job log's lines about the first REJECTED_SHOWN rejected lines of the partitions."""
    shown = [line for partial in partials for line in partial.shown][:REJECTED_SHOWN]
    return [line.logged(len(schema.names)) for line in shown]


def _read_pieces(objects: Sequence[DataObject] | Mapping[int, DataObject],
                 pieces: Sequence[tuple[int, ByteRange, LineStart]],
                 first_record: int, counted: Future[int] | None, schema: Schema, targets: Sequence[Target],
                 progress: Callable[[int], None] | None, rejected: Callable[[str], None] | None,
                 execution: Execution, parsing: ParseOptions) -> list[PartialIngest]:
    """Read the pieces (file index, its range, where that starts) in order for the targets,
    numbering their records from `first_record`; `counted` gives the input's record count
    when a split needs it."""
    reader = _Reader(schema, rejected, any(t.compute_statistics for t in targets), execution, parsing)
    jobs = [_Job(schema, t.compute_statistics, reader) for t in targets]
    with ExitStack() as stack:
        writers = [stack.enter_context(open_writer(t.sink, materialized_schema(schema))) for t in targets]
        for file_index, part, start in pieces:
            obj = objects[file_index]
            for first, block, parsed, fields, shared in reader.read_file(obj, part, start):
                total = counted.result() if counted is not None else None
                for job, target, writer in zip(jobs, targets, writers):
                    batch = job.take(file_index, obj.key, first_record + first, block, parsed, fields,
                                     target.rearrangement, total, shared)
                    if batch is not None:
                        writer.write_batch(batch)
                if progress is not None:
                    progress(reader.records)
    return [job.partial() for job in jobs]


def _done(value: T) -> Future[T]:
    """A future that holds `value` already."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _count_records(objects: Sequence[DataObject], schema: Schema, stop: threading.Event,
                   block_bytes: int) -> int:
    """The number of records of `objects` (or fewer, once `stop` is set: no longer needed)."""
    count = 0
    for obj in objects:
        with _open(obj, whole(0)) as stream:
            in_object = 0
            for in_object in _read_errors(obj, count_lines(stream, schema.header, block_bytes)):
                if stop.is_set():
                    return count + in_object
            count += in_object
    return count


def _open(obj: DataObject, part: ByteRange) -> BinaryIO:
    try:
        return open_range(obj, part)
    except _READ_ERRORS as exc:
        raise DataError(f"Cannot read {obj.uri}: {exc}") from None


def _read_errors(obj: DataObject, items: Iterator[T]) -> Iterator[T]:
    """The items, read from `obj`; a failed read is a DataError."""
    try:
        yield from items
    except _READ_ERRORS as exc:
        raise DataError(f"Cannot read {obj.uri}: {exc}") from None


@dataclass(frozen=True)
class _RejectedLine:
    """One rejected line: where it is, why (1 + REASONS index), its fields and text."""

    uri: str
    line: int
    reason: int
    fields: int
    text: bytes
    header: bytes | None   # the header line of its file, if the schema says there is one

    def cause(self, expected: int) -> str:
        return (f"longer than {MAX_RECORD_BYTES:,} bytes" if self.reason == 1
                else "unterminated quoted value" if self.reason == 2
                else f"{_fields(self.fields)}, expected {expected}")

    def logged(self, expected: int) -> str:
        """The job log's line about it."""
        text = f": {_shown(self.text)}" if self.text else ""
        return f"rejected line {self.line} of {self.uri} ({self.cause(expected)}){text}"

    def explained(self, names: Sequence[str]) -> str:
        """A sentence for the message of a DataError; `names`: the schema's attributes."""
        if self.reason == 1:
            return f"Line {self.line} of {self.uri} is longer than {MAX_RECORD_BYTES:,} bytes."
        if self.reason == 2:
            return (f"Line {self.line} of {self.uri} has an unterminated quoted value (a double "
                    "quote that opens a value must close it on the same line).")
        shown_names = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
        sentence = (f"Expected {len(names)} fields (one per attribute of the schema: "
                    f"{shown_names}), found {self.fields} on line {self.line} of {self.uri}")
        if self.header:
            sentence += (f"; its header line has {_fields(_field_count(self.header))}: "
                         f"{_shown(self.header)}")
        found = other_separator([line.decode("utf-8", "replace") for line in (self.header, self.text) if line],
                                len(names))
        if found is not None:
            mark, count = found
            holders = "The line and its header hold" if self.header else "The line holds"
            sentence += (f". {holders} {count} {mark}, which would make the schema's {len(names)} fields: "
                         f"the file may be separated by {mark} (with decimal commas, perhaps), and a "
                         "datasource reads comma-separated values. Save it as CSV with commas between the "
                         "fields and points in the numbers")
        return sentence + "."


class _Reader:
    """Parsing shared by the targets of an ingest: blocks, record numbers and rejections."""

    def __init__(self, schema: Schema, on_rejected: Callable[[str], None] | None,
                 statistics: bool, execution: Execution, parsing: ParseOptions) -> None:
        self.schema, self.execution, self.parsing = schema, execution, parsing
        self.statistics = statistics  # whether some target computes statistics
        self.on_rejected = on_rejected
        self.shown: list[_RejectedLine] = []   # the first rejected lines
        self.records = 0
        self.rejected = np.zeros(len(REASONS), dtype=np.int64)
        self.encode = [a.type is not AttributeType.TEXT for a in schema.attributes]
        self.integers: np.ndarray | None = None   # columns the fast path parses as integers
        self._probing = threading.Lock()
        self.int16_blocks = parsing.int16 and all(self.encode)      # TEXT columns stay strings
        self.blocks_by_path = dict.fromkeys(PATHS, 0)

    def read_file(self, obj: DataObject, part: ByteRange, start: LineStart) -> Iterator[
            tuple[int, LineBlock, Parsed | None, Fields | None, BlockValues | None]]:
        """(number of the block's first record among those read, block, its columns by the
        fast path or else its fields by the general one, and the values its targets share
        when the fast path read it) for each block of the object's range `part`, which
        starts at `start`."""
        header = None
        with _open(obj, part) as stream, closing(self._parsed(_read_errors(
                obj, iter_line_blocks(stream, self.schema.header, self.parsing.block_bytes, start)))) as blocks:
            for block, fast, shared in blocks:
                self.blocks_by_path[_path_of(fast)] += 1
                header = block.header if block.header is not None else header
                parsed = (encode_int16(fast) if isinstance(fast, np.ndarray)
                          else encode_plain(block, fast, self.encode) if isinstance(fast, pa.Table)
                          else fast if isinstance(fast, Parsed) else None)
                fields = (fast if isinstance(fast, Fields) else None if parsed is not None
                          else split_fields(block, len(self.encode)))
                reason = fields.reason if fields is not None else np.zeros(len(block), np.int8)
                found = np.bincount(reason, minlength=len(REASONS) + 1)[1:]
                if found.any():
                    self.rejected += found
                    if header is None and self.schema.header and not start.at_file_start:
                        header = _header_line(obj) or b""  # read once (b"": none found)
                    self._show(obj.uri, block, reason, header)
                if int(self.rejected.sum()) > MAX_REJECTED:
                    raise DataError(_too_many_rejected(self.rejected, self.shown, self.schema.names))
                self.records += len(block)
                if parsed is not None and shared is None:
                    shared = BlockValues(self.schema, parsed.columns)
                yield self.records - len(block), block, parsed, fields, shared

    def _parsed(self, blocks: Iterator[LineBlock]) -> Generator[
            tuple[LineBlock, np.ndarray | pa.Table | Parsed | Fields, BlockValues | None], None, None]:
        """_parse of each block, ahead on two threads when there are two. The first block is
        parsed alone: it settles what the reader probes once (int16 blocks, and the integer
        columns when it is a plain block; a later first plain block probes them under a lock)."""
        yield from two_at_a_time(self._parse, blocks, self.execution, ahead=PARSE_DEPTH, first_alone=True,
                                 name="openaml-parse")

    def _parse(self, block: LineBlock) -> tuple[LineBlock, np.ndarray | pa.Table | Parsed | Fields,
                                                BlockValues | None]:
        """The block with its values when every field is an int16 (`integers`), or else with
        Arrow's parse of it when a fast path (`plain`, then `trimmed`) applies, or else with
        its fields (run ahead, beside the caller's work on the blocks before). A block read
        by `trimmed` comes with its shared values computed here too (BlockValues.prepare)."""
        if self.int16_blocks:
            values = parse_int16_block(block, len(self.encode))
            if values is not None:
                return block, values, None
            self.int16_blocks = False   # other fields in one block: likely in later ones too
        if not (self.parsing.plain and is_plain(block, len(self.encode))):
            parsed = (read_trimmed(block, self.schema.names, self.encode)
                      if self.parsing.trimmed and is_trimmable(block, len(self.encode)) else None)
            if parsed is None:
                return block, split_fields(block, len(self.encode)), None
            return block, parsed, BlockValues(self.schema, parsed.columns).prepare(self.statistics)
        if self.integers is None:
            with self._probing:  # the first plain block may be parsed beside another
                if self.integers is None:
                    self.integers = probe_integers(block, self.schema.names, self.encode)
        table = read_plain(block, self.schema.names, self.integers)
        return block, table if table is not None else split_fields(block, len(self.encode)), None

    def _show(self, uri: str, block: LineBlock, reason: np.ndarray, header: bytes | None) -> None:
        """Keep (and pass on) the first REJECTED_SHOWN rejected lines."""
        for index in np.flatnonzero(reason)[:REJECTED_SHOWN - len(self.shown)]:
            text = block.text(int(index))
            line = _RejectedLine(uri, block.line_number(int(index)), int(reason[index]),
                                 _field_count(text), text, header)
            self.shown.append(line)
            if self.on_rejected is not None:
                self.on_rejected(line.logged(len(self.encode)))

def _too_many_rejected(rejected: np.ndarray, shown: Sequence[_RejectedLine], names: Sequence[str]) -> str:
    return (f"More than {MAX_REJECTED:,} records were rejected ({_reasons_text(rejected)}); "
            "the input is not usable. " + _explained(shown, names))


def _reasons_text(rejected: np.ndarray) -> str:
    return ", ".join(f"{name.replace('_', ' ')}: {int(count)}"
                     for name, count in zip(REASONS, rejected) if count)


def _explained(shown: Sequence[_RejectedLine], names: Sequence[str]) -> str:
    """The first rejected line of each reason among those shown, in sentences."""
    first: dict[int, _RejectedLine] = {}
    for line in shown:
        first.setdefault(line.reason, line)
    return " ".join(line.explained(names) for line in first.values())


def _header_line(obj: DataObject) -> bytes | None:
    """The first line of the object (its header), read for a message."""
    with _open(obj, whole(0)) as stream:
        block = next(iter_line_blocks(stream, True, 1 << 16), None)
    return block.header if block is not None else None


PATHS = ("int16", "plain", "trimmed", "general")


def _path_of(values: np.ndarray | pa.Table | Parsed | Fields) -> str:
    """Which path _Reader._parse read a block by, from what it gave."""
    return ("int16" if isinstance(values, np.ndarray) else "plain" if isinstance(values, pa.Table)
            else "trimmed" if isinstance(values, Parsed) else "general")


def _field_count(text: bytes) -> int:
    """Fields of a line: commas outside quotes, plus one (the rule of `fields`)."""
    return comma_fields(text.decode("utf-8", "replace"))


def _fields(count: int) -> str:
    return f"{count} field" + "s" * (count != 1)


def _shown(text: bytes) -> str:
    """A line's text for a message: decoded, control characters escaped, at most SHOWN_CHARS."""
    decoded = text.decode("utf-8", "replace")
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in decoded[:SHOWN_CHARS])
    return shown + ("..." if len(decoded) > SHOWN_CHARS else "")


class _Job:
    """Running counts, statistics and the selected batches of one target of an ingest."""

    def __init__(self, schema: Schema, compute_statistics: bool, reader: _Reader) -> None:
        self.schema, self.reader = schema, reader
        self.arrow_schema = materialized_schema(schema)
        self.selected = self.selected_rejected = self.with_invalid = 0
        self.missing = {a.name: 0 for a in schema.attributes}
        self.invalid = {a.name: 0 for a in schema.attributes}
        self.stats = StatisticsBuilder(schema) if compute_statistics else None

    def take(self, file_index: int, file_key: str, first: int, block: LineBlock,
             parsed: Parsed | None, fields: Fields | None, rearrangement: Rearrangement,
             total: int | None, shared: BlockValues | None = None) -> pa.RecordBatch | None:
        """The block's records that the split selects, as a batch to write (None: none);
        shared: the parsed block's values, which every target reads alike."""
        selected = rearrangement.select(file_key, first, block.offsets, total)
        if not selected.any():
            return None
        if parsed is None:
            return self._batch(file_index, block.data, fields, selected)
        if selected.all():
            return self._record_batch(file_index, np.zeros(len(block), np.bool_),
                                      parsed.columns, parsed.counts, shared=shared)
        rows = np.flatnonzero(selected)
        index = pa.array(rows)
        return self._record_batch(file_index, np.zeros(len(index), np.bool_),
                                  [column.take(index) for column in parsed.columns], shared=shared, taken=rows)

    def _batch(self, file_index: int, data: np.ndarray, fields: Any,
               selected: np.ndarray) -> pa.RecordBatch:
        rejected = fields.reason[selected] > 0
        keep = selected[fields.reason == 0]
        starts, ends = fields.starts[keep], fields.ends[keep]
        arrays = build_columns(data, starts, ends, fields.quoted[keep], self.reader.encode)
        if rejected.any():
            self._count(arrays)
            position = np.full(len(rejected), -1, dtype=np.int64)
            position[~rejected] = np.arange(len(starts))
            index = pa.array(position, mask=rejected)
            arrays = [array.take(index) for array in arrays]
            return self._record_batch(file_index, rejected, arrays, counted=True)
        return self._record_batch(file_index, rejected, arrays)

    def _record_batch(self, file_index: int, rejected: np.ndarray, arrays: list[pa.Array],
                      counts: Sequence[np.ndarray | None] | None = None, counted: bool = False,
                      shared: BlockValues | None = None, taken: np.ndarray | None = None) -> pa.RecordBatch:
        """The batch to write; counts (per dictionary entry, per column) spare recounting;
        shared: the values of the block the rows were taken from (its records `taken`, all
        when None)."""
        if not counted:
            self._count(arrays, counts, shared, taken)
        self.selected += len(rejected)
        self.selected_rejected += int(rejected.sum())
        return pa.record_batch(
            [pa.array(np.full(len(rejected), file_index, dtype=np.int32)), pa.array(rejected),
             *arrays], schema=self.arrow_schema)

    def _count(self, arrays: list[pa.Array], known: Sequence[np.ndarray | None] | None = None,
               shared: BlockValues | None = None, taken: np.ndarray | None = None) -> None:
        """Missing/invalid counts of well-formed selected records, and statistics; shared and
        taken as for `_record_batch`."""
        columns = dict(zip(self.schema.names, arrays))
        rows = len(arrays[0])
        any_invalid = np.zeros(rows, dtype=np.bool_)
        coerced, counts = {}, {}
        for j, attribute in enumerate(self.schema.attributes):
            column = arrays[j]
            self.missing[attribute.name] += column.null_count
            if attribute.type is AttributeType.TEXT:
                continue
            count = known[j] if known is not None else None
            counts[attribute.name] = count if count is not None else entry_counts(column)
            if attribute.type is AttributeType.CATEGORICAL:
                continue   # any raw string is a valid category
            entries = (shared.coerced(attribute.name, attribute.type) if shared is not None
                       else coerce_column(column.dictionary, attribute.type))
            coerced[attribute.name] = entries
            flags = entries.invalid.to_numpy(zero_copy_only=False)
            if flags.any():
                self.invalid[attribute.name] += int(counts[attribute.name][flags].sum())
                any_invalid |= per_row(flags, column.indices, False)
        self.with_invalid += int(any_invalid.sum())
        if self.stats is not None and rows:
            self.stats.add(columns, coerced, counts, shared, taken)

    def partial(self) -> PartialIngest:
        """What this target's read found, to report or to merge with other partitions'."""
        reader = self.reader
        return PartialIngest(reader.records, reader.rejected.copy(), list(reader.shown),
                             dict(reader.blocks_by_path), self.selected, self.selected_rejected,
                             self.with_invalid, dict(self.missing), dict(self.invalid), self.stats)


@dataclass
class PartialIngest:
    """The counts and statistics of one target over part of the input (a partition), which
    merge with the parts after it (`merge`) into those of the whole input."""

    records: int
    rejected: np.ndarray             # rejected records by reason (REASONS)
    shown: list[_RejectedLine]       # the first rejected lines, in input order
    blocks_by_path: dict[str, int]
    selected: int
    selected_rejected: int
    with_invalid: int
    missing: dict[str, int]
    invalid: dict[str, int]
    statistics: StatisticsBuilder | None

    def copy(self) -> PartialIngest:
        """A copy that merging leaves this one unchanged in."""
        return replace(self, rejected=self.rejected.copy(), shown=list(self.shown),
                       blocks_by_path=dict(self.blocks_by_path), missing=dict(self.missing),
                       invalid=dict(self.invalid),
                       statistics=None if self.statistics is None else self.statistics.copy())

    def merge(self, later: PartialIngest) -> None:
        """Add the counts and statistics of the part of the input that follows this one."""
        self.records += later.records
        self.rejected += later.rejected
        self.shown = (self.shown + later.shown)[:REJECTED_SHOWN]
        for path, count in later.blocks_by_path.items():
            self.blocks_by_path[path] += count
        self.selected += later.selected
        self.selected_rejected += later.selected_rejected
        self.with_invalid += later.with_invalid
        for name in self.missing:
            self.missing[name] += later.missing[name]
            self.invalid[name] += later.invalid[name]
        if self.statistics is not None and later.statistics is not None:
            self.statistics.merge(later.statistics)


def _report(objects: Sequence[DataObject], schema: Schema, partial: PartialIngest) -> IngestReport:
    """The report of a target that read the whole input; DataError when the data fail it."""
    if partial.records == 0:
        raise DataError("The input files contain no records")
    valid_selected = partial.selected - partial.selected_rejected
    if valid_selected == 0:
        raise DataError("No valid record is selected: " + (
            f"all {partial.selected_rejected} selected records were rejected "
            f"({_reasons_text(partial.rejected)}). {_explained(partial.shown, schema.names)}"
            if partial.selected_rejected else "the DataRearrangement selects no record"))
    statistics = None
    if partial.statistics is not None:
        statistics = partial.statistics.finish(partial.missing, partial.invalid)
        target = schema.target
        if target is not None and statistics.target is not None and statistics.target.valid_count == 0:
            raise DataError(f"The target attribute '{target}' has no valid value "
                            "in the selected records")
    return IngestReport(
        files=[o.uri for o in objects], number_of_files=len(objects),
        data_size_in_bytes=sum(o.size for o in objects), records_read=partial.records,
        rejected_records=int(partial.rejected.sum()),
        rejected_by_reason={name: int(c) for name, c in zip(REASONS, partial.rejected)},
        selected_records=partial.selected, selected_rejected=partial.selected_rejected,
        records_with_invalid_values=partial.with_invalid,
        missing_counts=dict(partial.missing), invalid_counts=dict(partial.invalid),
        blocks_by_path=dict(partial.blocks_by_path), statistics=statistics)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
