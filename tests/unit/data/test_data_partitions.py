"""Partitions of the input, read apart and merged, give what one read of the whole input gives:
the same records in the same order, the same splits, counts, rejected lines and statistics."""

from __future__ import annotations

import gzip
import io
import json
import math
import pickle
import random
from typing import Any

import pyarrow as pa
import pytest
from data_ingest_helpers import make_schema

from openaml.ml import number_sketch
from openaml.ml.data import DataError, DataObject, Target, ingest_many, parse_rearrangement, read_materialized
from openaml.ml.data.ingest import MAX_REJECTED, ingest_partition, merge_partitions
from openaml.ml.data.lines import MAX_RECORD_BYTES
from openaml.ml.data.partitions import count_range, number_partitions, plan_ranges

SCHEMA = {"n": "NUMERIC", "c": "CATEGORICAL", "b": "BINARY", "t": "TEXT", "y": "BINARY"}
SPLITS = [None, '{"splitting": {"percentBegin": 10, "percentEnd": 73}}',
          '{"splitting": {"percentBegin": 10, "percentEnd": 73, "complement": true}}',
          '{"splitting": {"percentBegin": 0, "percentEnd": 70, "strategy": "random", '
          '"strategyParams": {"randomSeed": "s"}}}']


def seekable_object(key: str, content: bytes, compress: bool = False) -> DataObject:
    stored = gzip.compress(content) if compress else content

    def open_at(offset: int, end: int | None) -> io.BytesIO:
        stream = io.BytesIO(stored)
        stream.seek(offset)
        return stream

    return DataObject(f"s3://bucket/{key}", key, len(stored), lambda: io.BytesIO(stored), open_at)


def messy_csv(rows: int, seed: int, header: bool = True, bom: bool = False) -> bytes:
    """Numbers (some invalid, some missing), categories, yes/no, text with quotes and commas,
    CR LF and LF ends, empty lines, lines with a wrong field count and one over-long line."""
    rng = random.Random(seed)
    lines = [b"n,c,b,t,y"] if header else []
    for i in range(rows):
        kind = rng.random()
        if kind < 0.02:
            lines.append(b"")
        elif kind < 0.04:
            lines.append(b"1,2")
        elif kind < 0.045:
            lines.append(b"9" * (MAX_RECORD_BYTES + 5))
        else:
            number = rng.choice([f"{rng.gauss(0, 100):.3f}", str(rng.randint(0, 9)), "", "x"])
            text = rng.choice(['"hello, world"', "a b c", "", ' "quoted" '])
            lines.append(",".join([number, rng.choice("pqrs"), rng.choice(["yes", "no", ""]), text,
                                   str(i % 2)]).encode())
    ends = [b"\r\n" if rng.random() < 0.3 else b"\n" for _ in lines]
    body = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    return (b"\xef\xbb\xbf" if bom else b"") + body


def read_whole(objects: list[DataObject], schema: Any, splits: list[str | None]) -> list[tuple[Any, pa.Table]]:
    sinks = [io.BytesIO() for _ in splits]
    targets = [Target(parse_rearrangement(s), True, sink) for s, sink in zip(splits, sinks, strict=True)]
    reports = ingest_many(objects, schema, targets)
    return [(r, _table([sink.getvalue()])) for r, sink in zip(reports, sinks, strict=True)]


def read_partitioned(objects: list[DataObject], schema: Any, splits: list[str | None],
                     partition_bytes: int) -> list[tuple[Any, pa.Table]]:
    ranges = plan_ranges(objects, partition_bytes)
    counts = [count_range(objects[r.file_index], r, schema.header) for r in ranges]
    partitions = number_partitions(ranges, counts)
    total = sum(c.records for c in counts)
    parts: list[list[bytes]] = [[] for _ in splits]
    partials: list[list[Any]] = [[] for _ in splits]
    for partition in partitions:
        sinks = [io.BytesIO() for _ in splits]
        targets = [Target(parse_rearrangement(s), True, sink) for s, sink in zip(splits, sinks, strict=True)]
        for k, partial in enumerate(ingest_partition(objects, partition, total, schema, targets)):
            partials[k].append(partial)
            parts[k].append(sinks[k].getvalue())
    return [(merge_partitions(objects, schema, partials[k]), _table(parts[k])) for k in range(len(splits))]


def _table(streams: list[bytes]) -> pa.Table:
    batches = [b for stream in streams for b in read_materialized(io.BytesIO(stream))]
    return pa.Table.from_batches(batches).cast(pa.schema([
        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for f in batches[0].schema]))


def assert_same_statistics(ours: dict[str, Any], whole: dict[str, Any]) -> None:
    """Equal, except means, variances and correlations (sums in another grouping) to 1e-12."""
    assert ours.keys() == whole.keys()
    for key, value in whole.items():
        if isinstance(value, dict):
            assert_same_statistics(ours[key], value)
        elif key in ("mean", "variance", "stddev", "correlationToTarget") and value is not None:
            assert math.isclose(ours[key], value, rel_tol=1e-12, abs_tol=1e-12), key
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("partition_bytes", [1, 97, 1000, 1 << 20])
def test_partitions_read_apart_give_the_records_counts_and_statistics_of_one_read(
        partition_bytes: int, cut: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """cut: with sketches past their exact limit (number_sketch), which depend on the values alone."""
    if cut:
        monkeypatch.setattr(number_sketch, "EXACT_DISTINCT", 30)
        monkeypatch.setattr(number_sketch, "SKETCH_POINTS", 10)
    schema = make_schema(SCHEMA, header=True, target="y")
    objects = [seekable_object("a.csv", messy_csv(400, 1, bom=True)),
               seekable_object("b.csv.gz", messy_csv(300, 2), compress=True),
               seekable_object("c.csv", messy_csv(500, 3))]
    whole = read_whole(objects, schema, SPLITS)
    parted = read_partitioned(objects, schema, SPLITS, partition_bytes)
    for (report, table), (whole_report, whole_table) in zip(parted, whole, strict=True):
        assert table.equals(whole_table)
        ours, expected = report.to_dict(), whole_report.to_dict()
        statistics = expected.pop("statistics")
        assert_same_statistics(ours.pop("statistics"), statistics)
        ours.pop("blocksByPath"), expected.pop("blocksByPath")
        assert ours == expected
        sketches = [a["sketch"] for a in statistics["attributes"].values() if "sketch" in a]
        assert any("mantissaBits" in s for s in sketches) == cut


def test_ranges_start_at_line_starts_and_cover_every_byte_once() -> None:
    content = messy_csv(200, 4)
    obj = seekable_object("a.csv", content)
    ranges = plan_ranges([obj], 50)
    assert len(ranges) > 10
    assert ranges[0].start == 0 and ranges[-1].end is None
    for before, after in zip(ranges, ranges[1:]):
        assert before.end == after.start and content[after.start - 1:after.start] == b"\n"


def test_a_compressed_or_unseekable_file_is_one_range() -> None:
    content = messy_csv(100, 5)
    gz = seekable_object("a.csv.gz", content, compress=True)
    plain = DataObject("s3://bucket/b.csv", "b.csv", len(content), lambda: io.BytesIO(content))
    assert [(r.start, r.end) for r in plan_ranges([gz, plain], 10)] == [(0, None), (0, None)]


def test_rejected_lines_are_shown_from_the_first_partitions_with_their_line_numbers() -> None:
    schema = make_schema(SCHEMA, header=True, target="y")
    content = b"n,c,b,t,y\n" + b"1,p,yes,a,1\n" * 50 + b"\n1,2\n" + b"1,p,yes,a,0\n" * 50 + b"3\n"
    objects = [seekable_object("a.csv", content)]
    (report, _), = read_partitioned(objects, schema, [None], 40)
    assert report.rejected_records == 2
    whole_shown: list[str] = []
    ingest_many(objects, schema, [Target(parse_rearrangement(None), False, io.BytesIO())],
                rejected=whole_shown.append)
    assert whole_shown == ["rejected line 53 of s3://bucket/a.csv (2 fields, expected 5): 1,2",
                           "rejected line 104 of s3://bucket/a.csv (1 field, expected 5): 3"]


def test_too_many_rejected_records_over_all_partitions_fail_the_datasource() -> None:
    schema = make_schema({"a": "NUMERIC", "b": "NUMERIC"}, header=True)
    content = b"a,b\n" + b"1\n" * (MAX_REJECTED // 2 + 1) + b"1,2\n" + b"1\n" * (MAX_REJECTED // 2 + 1)
    objects = [seekable_object("a.csv", content)]
    (report, _), = read_partitioned(objects, schema, [None], len(content) // 2)
    assert isinstance(report, DataError)
    message = str(report)
    assert f"More than {MAX_REJECTED:,} records were rejected (wrong field count: {MAX_REJECTED + 2})" in message
    assert "found 1 on line 2 of s3://bucket/a.csv; its header line has 2 fields: a,b" in message


def test_a_partition_past_the_header_names_the_header_in_its_messages() -> None:
    schema = make_schema({"a": "NUMERIC", "b": "NUMERIC"}, header=True)
    content = b"a,b\n" + b"1,2\n" * 100 + b"7\n"
    objects = [seekable_object("a.csv", content)]
    ranges = plan_ranges(objects, 200)
    partitions = number_partitions(ranges, [count_range(objects[0], r, True) for r in ranges])
    last = partitions[-1]
    assert last.range.start > 0
    partial, = ingest_partition(objects, last, 101, schema, [Target(parse_rearrangement(None), False, io.BytesIO())])
    assert partial.shown[0].header == b"a,b" and partial.shown[0].line == 102


def test_merging_leaves_the_partitions_results_unchanged() -> None:
    schema = make_schema(SCHEMA, header=True, target="y")
    objects = [seekable_object("a.csv", messy_csv(300, 6))]
    ranges = plan_ranges(objects, 500)
    partitions = number_partitions(ranges, [count_range(objects[0], r, True) for r in ranges])
    total = sum(p.records for p in partitions)
    partials = [ingest_partition(objects, p, total, schema, [Target(parse_rearrangement(None), True, io.BytesIO())])[0]
                for p in partitions]
    first, again = (merge_partitions(objects, schema, partials) for _ in range(2))
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(again.to_dict(), sort_keys=True)
    assert first.records_read == total


def test_a_partitions_result_holds_none_of_its_blocks_buffers() -> None:
    """What a partition task sends to the merge is its statistics, not its data: count tables
    taken from a block's dictionaries (which share the block's buffers on the integer path)
    would otherwise pickle the whole block with them."""
    rng = random.Random(7)
    schema = make_schema({f"p{k}": "CATEGORICAL" for k in range(40)})
    content = "".join(",".join(str(rng.randint(0, 9)) for _ in range(40)) + "\n" for _ in range(5000)).encode()
    objects = [seekable_object("a.csv", content)]
    ranges = plan_ranges(objects, len(content) // 2)
    partition = number_partitions(ranges, [count_range(objects[0], r, False) for r in ranges])[0]
    sink = io.BytesIO()
    partial, = ingest_partition(objects, partition, 5000, schema, [Target(parse_rearrangement(None), True, sink)])
    assert partial.blocks_by_path["int16"] == 1
    assert len(pickle.dumps(partial)) < len(content) / 20


@pytest.mark.parametrize("partition_bytes", [1, 2, 3, 5, 8])
def test_a_header_after_empty_lines_stays_in_the_first_partition(partition_bytes: int) -> None:
    schema = make_schema({"a": "NUMERIC", "b": "NUMERIC"}, header=True)
    for content in (b"\n\r\n\na,b\n1,2\n3,4\n5,6\n", b"\xef\xbb\xbf\r\n\na,b\r\n1,2\r\n3,4\n"):
        objects = [seekable_object("a.csv", content)]
        (report, table), = read_partitioned(objects, schema, [None], partition_bytes)
        (whole_report, whole_table), = read_whole(objects, schema, [None])
        assert table.equals(whole_table) and report.records_read == whole_report.records_read
        assert report.to_dict()["invalidCounts"] == whole_report.to_dict()["invalidCounts"] == {"a": 0, "b": 0}
