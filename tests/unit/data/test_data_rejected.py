"""Rejected lines are explained: expected and found field counts, file line numbers, the header."""

from __future__ import annotations

import io

import pytest
from data_ingest_helpers import make_object, make_schema

from openaml.ml.data import DataError, ingest, parse_rearrangement
from openaml.ml.data.ingest import MAX_REJECTED, REJECTED_SHOWN
from openaml.ml.data.lines import MAX_RECORD_BYTES, iter_line_blocks

THREE = {"a": "NUMERIC", "b": "NUMERIC", "y": "BINARY"}


def run(content: bytes, header: bool = False, key: str = "data.csv") -> list[str]:
    """Ingest `content` against the three-attribute schema; the rejected-line descriptions."""
    shown: list[str] = []
    ingest([make_object(key, content)], make_schema(THREE, header=header), parse_rearrangement(None),
           False, io.BytesIO(), rejected=shown.append)
    return shown


def four_columns(rows: int) -> bytes:
    return b"a,b,c,y\n" + b"".join(b"%d,%d,%d,%d\n" % (i, i, i, i % 2) for i in range(rows))


def test_a_schema_with_fewer_attributes_than_columns_says_expected_and_found() -> None:
    with pytest.raises(DataError) as raised:
        run(four_columns(400), header=True)
    message = str(raised.value)
    assert "all 400 selected records were rejected (wrong field count: 400)" in message
    assert "Expected 3 fields (one per attribute of the schema: a, b, y), found 4 on line 2 of " \
           "s3://bucket/data.csv" in message
    assert "its header line has 4 fields: a,b,c,y" in message


def test_without_a_header_the_first_line_is_named_and_no_header_is_claimed() -> None:
    with pytest.raises(DataError) as raised:
        run(b"1,2\n3,4\n")
    assert "Expected 3 fields (one per attribute of the schema: a, b, y), found 2 on line 1 of" \
           in str(raised.value)
    assert "header" not in str(raised.value)


def test_too_many_rejections_are_explained_too() -> None:
    with pytest.raises(DataError) as raised:
        run(four_columns(MAX_REJECTED + 1), header=True)
    assert f"More than {MAX_REJECTED:,} records were rejected" in str(raised.value)
    assert "found 4 on line 2 of s3://bucket/data.csv" in str(raised.value)


def test_the_first_rejected_lines_are_described_with_file_line_numbers() -> None:
    long_line = b"9" * (MAX_RECORD_BYTES + 1)
    content = b"\r\n".join([b"a,b,y", b"1,2,1", b"", b"1,2", b'1,"2,1', b"", b"", long_line,
                            b"1,2,0,7", b"1,2,0", b"5", b"6"]) + b"\r\n"
    shown = run(content, header=True)
    assert shown == [
        "rejected line 4 of s3://bucket/data.csv (2 fields, expected 3): 1,2",
        'rejected line 5 of s3://bucket/data.csv (unterminated quoted value): 1,"2,1',
        f"rejected line 8 of s3://bucket/data.csv (longer than {MAX_RECORD_BYTES:,} bytes)",
        "rejected line 9 of s3://bucket/data.csv (4 fields, expected 3): 1,2,0,7",
        "rejected line 11 of s3://bucket/data.csv (1 field, expected 3): 5",
    ]
    assert len(shown) == REJECTED_SHOWN


def test_a_completed_datasource_still_describes_its_rejected_lines() -> None:
    shown = run(b"1,2,1\n1,2,1,\x07" + b"x" * 500 + b"\n3,4,0\n")
    assert len(shown) == 1
    assert shown[0].startswith("rejected line 2 of s3://bucket/data.csv (4 fields, expected 3): 1,2,1,\\x07xxx")
    assert shown[0].endswith("x...") and len(shown[0]) < 300


def test_every_line_keeps_its_file_line_number_across_blocks() -> None:
    lines = [b"h,h", b""] + [b"%d,%d" % (i, i) if i % 7 else b"" for i in range(1, 200)]
    content = b"\n".join(lines) + b"\n"
    numbered = [(block.line_number(k), block.text(k))
                for block in iter_line_blocks(io.BytesIO(content), True, block_bytes=64)
                for k in range(len(block))]
    expected = [(n, text) for n, text in enumerate(lines, 1) if text][1:]
    assert numbered == expected


@pytest.mark.parametrize(("mark", "name"), [(b";", "semicolons"), (b"\t", "tabs"), (b"|", "vertical bars")])
@pytest.mark.parametrize("header", [True, False])
def test_lines_separated_by_another_mark_are_said_to_be(mark: bytes, name: str, header: bool) -> None:
    """A spreadsheet's "CSV" of another locale (semicolons between fields, decimal commas) was
    rejected as holding 1 to 3 fields with no word on why: the message says what separates
    the lines. Tabs and vertical bars alike; with or without a header line."""
    rows = [b"1,5", b"2", b"1"], [b"3", b"4", b"0"]  # read with commas: 2 fields, 1
    content = (mark.join([b"a", b"b", b"y"]) + b"\n" if header else b"") + b"".join(mark.join(r) + b"\n" for r in rows)
    with pytest.raises(DataError) as raised:
        run(content, header=header)
    message = str(raised.value)
    holders = "The line and its header hold" if header else "The line holds"
    assert f"{holders} 2 {name}, which would make the schema's 3 fields: the file may be separated by {name}" \
        in message
    assert "a datasource reads comma-separated values" in message


@pytest.mark.parametrize("content", [
    b"a,b,y\n1;2,3,4,5\n6;7,8,9,0\n",  # too many fields by commas; semicolons inside values
    b"a;b;y\n1;2\n3;4\n",              # semicolons, but 2 fields by them, not the schema's 3
    b"a;b;y\n1;2;3;4\n5;6;7\n",         # not as many in every line
])
def test_no_other_mark_is_claimed_where_it_does_not_separate_the_lines(content: bytes) -> None:
    with pytest.raises(DataError) as raised:
        run(content, header=True)
    assert "may be separated by" not in str(raised.value)
