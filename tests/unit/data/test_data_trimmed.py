"""The fast path for blocks with white space and quotes (trimmed.py) must give exactly what the
general path gives: the same columns, rejected records and statistics."""


import pytest
from data_ingest_helpers import make_object, make_schema, run_ingest, same_records
from hypothesis import example, given, settings
from hypothesis import strategies as st

from openaml.ml.data import FAST_PATHS, GENERAL_PATH, DataError, ParseOptions

SCHEMA = make_schema({"n": "NUMERIC", "c": "CATEGORICAL", "t": "TEXT", "b": "BINARY"})

plain_word = st.sampled_from(["1", "-2.5", "abc", "Yes", "no", "é", "x y", "0", "-0", ""])
white = st.sampled_from(["", " ", "  ", "\t", "\x0b", "\x0c", " \t"])
# quoted values as Arrow and the rules both read them, and quotes they read differently
quoted = st.sampled_from(['"a, b"', '""', '" "', '"say ""hi"""', '""""', '"x"', '" 7 "'])
odd = st.sampled_from(['a"b', ' "q"', '"q" ', '"open', '"a"b', '"'])
good = st.one_of(st.tuples(white, plain_word, white).map("".join), quoted)
field = st.one_of(good, st.tuples(white, quoted).map("".join), odd)
# mostly blocks Arrow may read (4 fields, quotes where it reads them), some it may not
line = st.one_of(st.lists(good, min_size=4, max_size=4),
                 st.lists(field, min_size=3, max_size=5)).map(",".join)


def _columns(table):
    return {name: table.column(name).to_pylist() for name in table.column_names}


def _outcome(content: bytes, parsing: ParseOptions):
    """(columns, report) of an ingest, or the message of the DataError that failed it."""
    try:
        report, table = run_ingest([make_object("f.csv", content)], SCHEMA, stats=True, parsing=parsing)
    except DataError as exc:
        return str(exc), {}
    return _columns(table), report.to_dict()


def _ingest_both(content: bytes, parsing: ParseOptions = FAST_PATHS):
    """The outcomes of the fast paths and of the general one, and the paths the fast ones took."""
    (fast, report), (general, general_report) = _outcome(content, parsing), _outcome(content, GENERAL_PATH)
    return (fast, same_records(report)), (general, same_records(general_report)), report.get("blocksByPath")


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(line, min_size=1, max_size=6))
def test_trimmed_and_general_paths_agree(lines):
    content = ("\n".join(lines) + "\n").encode()
    fast, general, _ = _ingest_both(content)
    assert fast == general


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_text_with_spaces_and_quoted_commas_takes_the_fast_path(block_bytes):
    rows = [f'{i}, c{i % 3} ,"late, again {i}",{"yes" if i % 2 else "no"}' for i in range(50)]
    rows[7] = '7,,  ,'                          # missing values, white space only
    rows[9] = '9,"say ""hi""",t,\t Yes\x0b'   # a doubled quote inside a quoted value; tabs
    content = ("\n".join(rows) + "\r\n").encode()
    fast, general, paths = _ingest_both(content, ParseOptions(block_bytes=block_bytes))
    assert paths["trimmed"] and fast == general
    columns, _ = fast
    assert columns["t"][:2] == ["late, again 0", "late, again 1"] and columns["c"][9] == 'say "hi"'
    assert columns["t"][7] is None and columns["c"][7] is None and columns["n"][0] == "0"
    assert columns["b"][9] == "Yes"


def test_a_byte_order_mark_inside_the_data_stays_in_the_value():
    """Arrow drops a BOM at the start of the bytes it parses; a block whose first line starts
    with one (after a header, or a second BOM) takes the general path, which keeps it."""
    schema = make_schema({"t": "TEXT", "n": "NUMERIC"}, header=True)
    content = "h1,h2\n\ufeffx y,1\nz,2\n".encode()
    fast = run_ingest([make_object("f.csv", content)], schema)[1]
    general = run_ingest([make_object("f.csv", content)], schema, parsing=GENERAL_PATH)[1]
    assert fast.column("t").to_pylist() == general.column("t").to_pylist() == ["\ufeffx y", "z"]


def test_strings_made_by_the_general_path_end_in_zero_bytes():
    """Arrow's utf8_split_whitespace reads a few bytes past the last string: the general path's
    string buffers end in zero padding, so a TEXT value ending in a multi-byte space (U+00A0)
    splits the same way every time (it depended on leftover heap bytes)."""
    import numpy as np

    from openaml.ml.data.fields import _gather, _key_dictionary

    data = np.frombuffer("ab \u00a0".encode(), np.uint8)
    column = _gather(data, np.array([0]), np.array([len(data)]), np.array([False]))
    keys = _key_dictionary(np.array([0x6261], np.uint64), np.array([False])).dictionary
    for array in (column, keys):
        offsets = np.frombuffer(array.buffers()[1], np.int32)
        tail = bytes(array.buffers()[2])[offsets[len(array)]:]
        assert len(tail) >= 8 and set(tail) == {0}


def _outcomes_of_a_split(content: bytes, begin: int, end: int, strategy: str, parsing: ParseOptions):
    """(columns, report) of a training and an evaluation datasource written from one read."""
    import io
    import json

    import pyarrow as pa

    from openaml.ml.data import parse_rearrangement, read_materialized
    from openaml.ml.data.ingest import Target, ingest_many

    sinks = [io.BytesIO(), io.BytesIO()]
    splits = [json.dumps({"splitting": {"percentBegin": begin, "percentEnd": end, "complement": c,
                                        "strategy": strategy, "strategyParams": {"randomSeed": "s"}}})
              for c in (False, True)]
    reports = ingest_many([make_object("f.csv", content)], SCHEMA,
                          [Target(parse_rearrangement(text), True, sink) for text, sink in zip(splits, sinks)],
                          parsing=parsing)
    out = []
    for report, sink in zip(reports, sinks):
        if isinstance(report, DataError):
            out.append(str(report))
            continue
        sink.seek(0)
        out.append((_columns(pa.Table.from_batches(list(read_materialized(sink)))),
                    same_records(report.to_dict())))
    return out


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.lists(good, min_size=4, max_size=4).map(",".join), min_size=1, max_size=40),
       begin=st.integers(0, 60), width=st.integers(1, 40), strategy=st.sampled_from(["random", "sequential"]))
@example(  # the mean and variance were summed in dictionary order: 13.74 against 13.740000000000004
    lines=['1,1,1,""', '1,"a, b",1,1', '-2.5,"a, b","a, b",1', 'abc,"a, b","a, b","a, b"',
           '-2.5,1  ,"a, b","a, b"', 'abc,1,1,1', '"a, b","a, b","a, b","a, b"',
           '" 7 ",1,"a, b","a, b"', '1,"a, b","a, b","a, b"', '-2.5,"a, b","a, b","a, b"',
           '-2.5,1,"a, b","a, b"', '1,1,1,"a, b"'],
    begin=0, width=75, strategy="sequential")
def test_datasources_of_one_read_count_their_own_records(lines, begin, width, strategy):
    """Two splits of one read share each parsed block's coerced values and ordered numbers
    (block_values.py): their counts and statistics are those the general path, which shares
    nothing, gives."""
    content = ("\n".join(lines) + "\n").encode()
    fast = _outcomes_of_a_split(content, begin, begin + width, strategy, FAST_PATHS)
    general = _outcomes_of_a_split(content, begin, begin + width, strategy, GENERAL_PATH)
    assert repr(fast) == repr(general)  # tells -0.0 from 0.0, which == does not


def test_signed_zeros_give_the_same_statistics_on_every_path():
    """-0 and 0 are one number: whichever path reads a block, and in whatever order equal
    values are merged, the statistics show 0.0 (== would not tell -0.0 from 0.0: compared as
    JSON text)."""
    import json

    import numpy as np

    schema = make_schema({"n": "NUMERIC", "c": "CATEGORICAL"})
    rng = np.random.default_rng(0)
    for _ in range(40):
        values = rng.choice(["0", "-0", "0.0", "-0.0", "x", "NaN", "1", "-1", "2"], rng.integers(2, 40))
        content = "".join(f"{v},a\n" for v in values).encode()
        fast = run_ingest([make_object("f.csv", content)], schema, stats=True)[0]
        general = run_ingest([make_object("f.csv", content)], schema, stats=True, parsing=GENERAL_PATH)[0]
        shown = [report.statistics.to_json()["attributes"]["n"] for report in (fast, general)]
        assert json.dumps(shown[0]) == json.dumps(shown[1])
        if shown[0]["count"]:
            assert "-0.0" not in json.dumps([shown[0]["sketch"], shown[0]["min"], shown[0]["median"]])


def test_a_block_without_quotes_and_a_line_of_another_field_count_is_read_as_the_rules_say():
    """Without quotes the fast path leaves the field count to Arrow's parser, which refuses
    such a block: the general path reads it, and rejects those lines alone."""
    rows = [f"{i}, c{i % 3} ,note {i},yes" for i in range(20)]
    rows[5], rows[8] = "5, c ,t", "8,c,t,yes,extra"
    fast, general, paths = _ingest_both(("\n".join(rows) + "\n").encode())
    assert fast == general and paths["general"] == 1
    columns, report = fast
    assert len(columns["n"]) == 20 and report["rejectedRecords"] == 2


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.tuples(white, st.sampled_from(["", "a", "b c", "é"]), white)
                                 .map("".join)), max_size=12),
       skip=st.integers(0, 3))
def test_stripping_skips_only_columns_with_nothing_to_strip(values, skip):
    """A string column comes back as it is only when no value is empty or has white space at
    an end (also a slice of one, whose validity bits start inside a byte)."""
    import pyarrow as pa

    from openaml.ml.data.trimmed import _stripped
    from openaml.ml.schema import WHITE_SPACE

    column = pa.array(values, pa.string()).slice(skip)
    expected = [None if v is None or not v.strip(WHITE_SPACE) else v.strip(WHITE_SPACE)
                for v in column.to_pylist()]
    got = _stripped(column)
    assert got.to_pylist() == expected
    assert (got is column) == (expected == column.to_pylist())
