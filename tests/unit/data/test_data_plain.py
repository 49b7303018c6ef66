"""The fast path for plain blocks must give exactly what the general path gives."""

import io
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from data_ingest_helpers import make_object, make_schema, run_ingest, same_records

from openaml.ml.data import GENERAL_PATH, ParseOptions, ingest, parse_rearrangement, read_materialized


def _columns(table):
    return {name: table.column(name).to_pylist() for name in table.column_names}


def _rounded(doc):
    """Floats to 9 digits: dictionaries in another order sum in another order."""
    if isinstance(doc, dict):
        return {k: _rounded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_rounded(v) for v in doc]
    return float(f"{doc:.9g}") if isinstance(doc, float) else doc


def _random_lines(rows: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    small = rng.integers(-300, 300, rows).astype(str)
    small[[3, 5]] = ["32767", "-32767"]                          # the ends of int16
    large = rng.integers(0, 10**6, rows).astype(str)            # beyond int16: strings
    words = np.array(["a", "bb", "c1", "7x"])[rng.integers(0, 4, rows)]
    floats = rng.normal(size=rows).round(2).astype(str)
    out = []
    for i in range(rows):
        row = [small[i], large[i], words[i], floats[i], str(i % 2)]
        if i % 7 == 0:
            row[i % 5] = ""                                     # missing values
        out.append(row)
    return out


SCHEMA = make_schema({"s": "CATEGORICAL", "l": "NUMERIC", "w": "CATEGORICAL", "f": "NUMERIC",
                      "y": "BINARY"}, target="y")


def test_plain_and_general_paths_agree():
    lines = _random_lines(600, 1)
    plain = "\n".join(",".join(r) for r in lines).encode()
    # small blocks: the probe sees only the first lines; later blocks switch columns to strings
    small_blocks = ParseOptions(block_bytes=2000)
    splits = (None, '{"splitting": {"percentBegin": 10, "percentEnd": 65}}')
    fast = [run_ingest([make_object("f.csv", plain)], SCHEMA, split, stats=True, parsing=small_blocks)
            for split in splits]
    assert all(report.blocks_by_path["plain"] > 1 for report, _ in fast)
    for split, (report_a, table_a) in zip(splits, fast):
        report_b, table_b = run_ingest([make_object("f.csv", plain)], SCHEMA, split, stats=True,
                                       parsing=replace(GENERAL_PATH, block_bytes=2000))
        assert report_b.blocks_by_path == {"int16": 0, "plain": 0, "trimmed": 0,
                                           "general": report_a.blocks_by_path["plain"]}
        assert _columns(table_a) == _columns(table_b)
        assert _rounded(same_records(report_a.to_dict())) == _rounded(same_records(report_b.to_dict()))
    expected = [r[0] or None for r in lines]
    _, table = run_ingest([make_object("f.csv", plain)], SCHEMA)
    assert table.column("s").to_pylist() == expected


def test_non_canonical_integers_keep_their_raw_text():
    schema = make_schema({"a": "CATEGORICAL", "b": "NUMERIC"})
    content = b"1,2\n05,3\n-0,4\n0x1F,5\n0x7FFF,6\n-7,\n"
    report, table = run_ingest([make_object("f.csv", content)], schema, stats=True)
    assert table.column("a").to_pylist() == ["1", "05", "-0", "0x1F", "0x7FFF", "-7"]
    assert table.column("b").to_pylist() == ["2", "3", "4", "5", "6", None]
    counts = report.statistics.to_json()["attributes"]["a"]["valueCounts"]
    assert counts == {v: 1 for v in ["1", "05", "-0", "0x1F", "0x7FFF", "-7"]}


def test_plain_block_with_a_bad_line_rejects_it_in_place():
    schema = make_schema({"a": "CATEGORICAL", "b": "NUMERIC"})
    report, table = run_ingest([make_object("f.csv", b"1,2\n3\n4,5,6\n7,8\r\n")], schema)
    assert table.column("__rejected").to_pylist() == [False, True, True, False]
    assert table.column("a").to_pylist() == ["1", None, None, "7"]
    assert report.rejected_by_reason["wrong_field_count"] == 2


def test_read_materialized_batches_columns_and_parquet(tmp_path):
    schema = make_schema({"a": "CATEGORICAL", "b": "TEXT"})
    content = b"".join(b"%d,w%d\n" % (i % 3, i) for i in range(10))
    _, table = run_ingest([make_object("f.csv", content)], schema)
    sink = io.BytesIO()
    ingest([make_object("f.csv", content)], schema, parse_rearrangement(None), False, sink)
    path = tmp_path / "data.bin"
    path.write_bytes(sink.getvalue())
    batches = list(read_materialized(path, columns=["b"], batch_size=4))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert pa.Table.from_batches(batches).column("b").to_pylist() == [f"w{i}" for i in range(10)]
    legacy = tmp_path / "data.parquet"        # copies written before the IPC format still read
    pq.write_table(table, legacy)
    again = pa.Table.from_batches(list(read_materialized(str(legacy), batch_size=3)))
    assert again.column("a").to_pylist() == table.column("a").to_pylist()
    compressed = tmp_path / "data.lz4"         # and so do copies written with LZ4 buffers
    with open(compressed, "wb") as out, pa.ipc.new_stream(
            out, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    again = pa.Table.from_batches(list(read_materialized(compressed)))
    assert again.column("b").to_pylist() == [f"w{i}" for i in range(10)]


def test_integer_encoding_of_chunked_columns():
    """Columns in several chunks get ascending dictionaries and counts of all their chunks."""
    from openaml.ml.data.plain import _encode_integers

    rows = 5000
    table = pa.table({f"c{c}": pa.chunked_array([(np.arange(rows, dtype=np.int16) % 7) - c, np.zeros(10, np.int16)])
                      for c in range(8)})
    encoded, counts, canonical = _encode_integers(table, list(range(8)))
    assert encoded[0].dictionary.to_pylist() == [str(v) for v in range(7)]
    assert counts[0].tolist() == [715 + 10, 715, 714, 714, 714, 714, 714]
    assert encoded[3].dictionary.to_pylist() == [str(v) for v in range(-3, 4)]
    assert encoded[3].indices.to_pylist()[:4] == [0, 1, 2, 3] and encoded[3][-1].as_py() == "0"
    assert canonical == sum(len(str(v)) for c in range(8) for v in [*((np.arange(rows) % 7) - c), *[0] * 10])
