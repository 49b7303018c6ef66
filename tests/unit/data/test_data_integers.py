"""The compiled path for blocks of int16 fields, and the compiled line count, against the
general ways they stand in for."""

import io
from dataclasses import replace

import numpy as np
import pytest
from data_ingest_helpers import make_object, make_schema, run_ingest, same_records
from test_data_plain import _columns, _rounded

from openaml.ml.data import FAST_PATHS, GENERAL_PATH, ParseOptions, lines
from openaml.ml.data.integers import parse_int16_block
from openaml.ml.data.lines import count_lines, iter_line_blocks

SCHEMA = make_schema({"y": "CATEGORICAL", "a": "NUMERIC", "b": "CATEGORICAL", "c": "BINARY"}, target="y")


def _block(text: bytes):
    block, = iter_line_blocks(io.BytesIO(text), False)
    return block


def test_canonical_int16_fields_parse_column_by_column():
    values = parse_int16_block(_block(b"0,-32768,32767,5\r\n-1,10,200,0\n"), 4)
    assert values is not None and values.dtype == np.int16
    assert values.tolist() == [[0, -1], [-32768, 10], [32767, 200], [5, 0]]


@pytest.mark.parametrize("line", [
    b"-0,1,2", b"05,1,2", b"+5,1,2", b"32768,1,2", b"-32769,1,2", b"1,,2", b"1,2", b"1,2,3,4",
    b"1,2,3,", b" 1,2,3", b"1,2,3 ", b'"1",2,3', b"1,2\r,3", b"1.0,2,3", b"-,2,3", b"1,2,3a",
    b"99999999999999999999,1,2",
])
def test_any_other_field_leaves_the_block_to_the_other_paths(line):
    assert parse_int16_block(_block(b"1,2,3\n" + line + b"\n4,5,6\n"), 3) is None


def _integer_lines(rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    matrix = rng.integers(-40, 300, (rows, 4))
    matrix[:, 0] = rng.integers(0, 10, rows)
    matrix[:, 3] = rng.integers(0, 2, rows)
    matrix[7, 1], matrix[9, 1] = -32768, 32767
    return b"".join(b",".join(b"%d" % v for v in row) + (b"\r\n" if i % 5 == 0 else b"\n")
                    for i, row in enumerate(matrix))


@pytest.mark.parametrize("split", [None, '{"splitting": {"percentBegin": 10, "percentEnd": 65}}'])
def test_integer_plain_and_general_paths_agree(split):
    data = _integer_lines(700, 2)
    # small blocks; one in the middle has a field that is not an int16, so that block and
    # the later ones take the Arrow path
    middle = data.index(b"\n", len(data) // 2) + 1
    data = data[:middle] + b"0" + data[middle:]
    small_blocks = ParseOptions(block_bytes=1500)
    report_a, table_a = run_ingest([make_object("f.csv", data)], SCHEMA, split, stats=True, parsing=small_blocks)
    paths = report_a.blocks_by_path
    # int16 until the block that is not, then plain: it is not tried again
    assert paths["int16"] and paths["plain"] > 1 and paths["int16"] + paths["plain"] == sum(paths.values())
    report_b, table_b = run_ingest([make_object("f.csv", data)], SCHEMA, split, stats=True,
                                   parsing=replace(small_blocks, int16=False))
    assert report_b.blocks_by_path["int16"] == 0
    report_c, table_c = run_ingest([make_object("f.csv", data)], SCHEMA, split, stats=True,
                                   parsing=replace(GENERAL_PATH, block_bytes=1500))
    assert report_c.blocks_by_path["general"] == sum(paths.values())
    assert _columns(table_a) == _columns(table_b) == _columns(table_c)
    assert (_rounded(same_records(report_a.to_dict())) == _rounded(same_records(report_b.to_dict()))
            == _rounded(same_records(report_c.to_dict())))


def test_a_text_attribute_keeps_the_integer_path_off():
    schema = make_schema({"y": "CATEGORICAL", "t": "TEXT"})
    report, table = run_ingest([make_object("f.csv", b"1,2\n3,4\n")], schema)
    assert table.column("t").to_pylist() == ["2", "4"] and report.blocks_by_path["int16"] == 0


@pytest.mark.parametrize("seed", range(40))
def test_line_count_matches_the_lines_found(monkeypatch, seed):
    monkeypatch.setattr(lines, "MAX_RECORD_BYTES", 6)     # over-long lines count once too
    rng = np.random.default_rng(seed)
    pieces = [b"a", b"\r", b"\n", b",", b"\r\n", b"\n\n"]
    data = b"".join(pieces[i] for i in rng.integers(0, len(pieces), rng.integers(0, 80)))
    if seed % 4 == 0:
        data = b"\xef\xbb\xbf" + data
    for header in (False, True):
        for block_bytes in (1, 2, 5, 64):
            found = sum(len(b) for b in iter_line_blocks(io.BytesIO(data), header, block_bytes))
            *_, counted = [0, *count_lines(io.BytesIO(data), header, block_bytes)]
            assert counted == found, (data, header, block_bytes)


def test_the_arrow_path_reads_the_int16_minimum_as_an_integer():
    """Both fast paths see -32768 as an int16: the same ascending dictionary (and the same
    order of sums in the statistics) whichever of them reads the block."""
    content = [make_object("f.csv", b"5\n-32768\n7\n-2\n")]
    for parsing, path in ((FAST_PATHS, "int16"), (ParseOptions(int16=False), "plain")):
        report, table = run_ingest(content, make_schema({"a": "NUMERIC"}), parsing=parsing)
        assert report.blocks_by_path[path] == 1
        assert table.column("a").chunk(0).dictionary.to_pylist() == ["-32768", "-2", "5", "7"]


def test_a_block_too_short_for_the_schema_allocates_nothing(monkeypatch):
    """Lines of one integer against a 785-attribute schema (the wrong file for it) are refused
    before values are allocated for every field of every line (12.5 GB for a 16 MB block)."""
    import openaml.ml.data.integers as integers

    block = next(iter_line_blocks(io.BytesIO(b"1\n" * 5000), False))
    parse_int16_block(block, 2)  # compiled before np is watched
    shapes = []

    class Watched:
        def __getattr__(self, name):
            return getattr(np, name)

        def empty(self, shape, dtype=float):
            shapes.append(shape)
            return np.empty(shape, dtype)

    monkeypatch.setattr(integers, "np", Watched())
    assert parse_int16_block(block, 785) is None and shapes == []
    assert parse_int16_block(block, 1) is not None and shapes == [(1, 5000)]
