"""Guessing a data schema from a CSV sample (the console's and CLI's `guess-schema`).

Rules, per column over the first `sample_rows` records (empty values ignored):

* header: the first line is a header when none of its fields is empty or a number, and
  either some column's later values are all numbers or none of its names occurs again in
  its column. Its names are made ones a schema takes (`_attribute_names`); without one,
  columns are named Var01, Var02, ...
* BINARY: every value is one of the ten binary words (0/1, y/n, yes/no, t/f, true/false,
  any case), and a column of digits holds both 0 and 1.
* NUMERIC: every value is a number; except integer columns with at most 10 distinct values
  that are all in 0..99 and a word of the column's name says it is a label (class, label,
  target, digit, category, type, kind, id, code) or the column is the target: those are
  CATEGORICAL.
* TEXT: values have more than 2 white-space separated words on average.
* CATEGORICAL: anything else.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from openaml.ml.data.lines import LoneReturnLineEnds, lone_return_line_ends
from openaml.ml.data.separators import sample_advice
from openaml.ml.errors import InputError
from openaml.ml.recipes.recipe import BUILTIN_GROUPS
from openaml.ml.schema.model import MAX_NAME_LENGTH
from openaml.ml.schema.values import NUMBER_PATTERN

NUMBER = re.compile(NUMBER_PATTERN)
BINARY_WORDS = {"0", "1", "n", "no", "f", "false", "y", "yes", "t", "true"}
# words of a column name (not parts of words: "width", "residents") that make small integers categories
LABEL_WORDS = {"class", "label", "target", "digit", "category", "type", "kind", "id", "code"}
MAX_SCHEMA_LENGTH = 131_071  # characters of DataSpec.DataSchema (the API's service model)


@dataclass(frozen=True)
class Guess:
    """A guessed schema's JSON, and what in the sample the service would reject or read otherwise."""

    schema: str
    warnings: tuple[str, ...] = ()


def guess_schema(stream_or_path: str | Path | BinaryIO | TextIO, target: str | None = None,
                 row_id: str | None = None, sample_rows: int = 10_000) -> str:
    """Schema JSON guessed from a CSV sample: pretty-printed (two-space indentation), or
    compact where that would pass the API's MAX_SCHEMA_LENGTH."""
    return guess(stream_or_path, target, row_id, sample_rows).schema


def guess(stream_or_path: str | Path | BinaryIO | TextIO, target: str | None = None,
          row_id: str | None = None, sample_rows: int = 10_000) -> Guess:
    """guess_schema, with warnings on the sample's records that the service would reject."""
    if target is not None and target == row_id:
        raise InputError(f"'{target}' cannot be both the target and the row id")
    if isinstance(stream_or_path, (str, Path)):
        _check_compression(Path(stream_or_path))
    rows, text = _sample(stream_or_path, sample_rows + 1)
    if not rows:
        raise InputError("The CSV sample is empty")
    advice = sample_advice(text)
    warnings = _record_warnings(rows) + ((advice + ".",) if advice else ())
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    header = _has_header(rows)
    names = _attribute_names([n.strip() for n in rows[0]] if header else [""] * width)
    body = rows[1:] if header else rows[:sample_rows]
    attributes = [{"attributeName": name, "attributeType": _guess_type(
        [r[i].strip() for r in body if r[i].strip()], name, name == target)}
        for i, name in enumerate(names)]
    for role, value in (("target", target), ("row_id", row_id)):
        if value is not None and value not in names:
            raise InputError(f"{role} '{value}' is not a column of the CSV sample")
    doc = {"version": "1.0", "rowId": row_id, "rowWeight": None, "targetAttributeName": target,
           "dataFormat": "CSV", "dataFileContainsHeader": header, "attributes": attributes,
           "excludedAttributeNames": []}
    pretty = json.dumps(doc, indent=2, separators=(",", " : "))
    # wide data (some 1,650 columns and more): compact JSON, which fits up to some 2,500
    schema = pretty if len(pretty) <= MAX_SCHEMA_LENGTH else json.dumps(doc, separators=(",", ":"))
    return Guess(schema, warnings)


def _check_compression(path: Path) -> None:
    """InputError where the file's content and name disagree on gzip: the service reads a file
    as gzip by its `.gz` name alone, whatever the content (a guess by content would mislead)."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    named = path.name.endswith(".gz")  # as the service decides, case included
    if gzipped and not named:
        raise InputError("the file is gzip-compressed but its name does not end in .gz: the service "
                         "would read it as plain text and reject its records; name it *.gz")
    if named and not gzipped:
        raise InputError("its name ends in .gz but the file is not gzip-compressed: the service would fail "
                         "to decompress it; compress it with gzip or drop the .gz")


def _record_warnings(rows: list[list[str]]) -> tuple[str, ...]:
    """Sentences on sampled records the service rejects: a value spanning lines (the service
    reads one record per line) and a field count other than the widest record's."""
    warnings = []
    spanning = sum(1 for row in rows if any("\n" in v or "\r" in v for v in row))
    if spanning:
        warnings.append(f"{spanning} sampled record(s) have a quoted value spanning lines: the service reads "
                        "one record per line and rejects these")
    widths = sorted({len(row) for row in rows})
    if len(widths) > 1:
        short = sum(1 for row in rows if len(row) < widths[-1])
        warnings.append(f"the sampled records have {', '.join(map(str, widths))} fields; the schema has "
                        f"{widths[-1]} attributes, and the service rejects the {short} record(s) with fewer fields")
    return tuple(warnings)


def _sample(source: str | Path | BinaryIO | TextIO, limit: int) -> tuple[list[list[str]], str]:
    """Up to `limit` records of the sample, and its text."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return _sample(handle, limit)
    raw = source.read(64 << 20)
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(64 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"The sample starts as gzip but cannot be decompressed: {exc}") from None
    if lone_return_line_ends(data):  # as the service reads files
        raise InputError(f"The CSV sample cannot be read: {LoneReturnLineEnds()}")
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text)):
            if row:
                rows.append(row)
                if len(rows) >= limit:
                    break
    except csv.Error as exc:  # a value over csv's field limit: a quote never closed, most often
        raise InputError(f"The CSV sample cannot be read after {len(rows)} records: {exc}") from None
    return rows, text


def _has_header(rows: list[list[str]]) -> bool:
    first = [v.strip() for v in rows[0]]
    rest = rows[1:]
    if _index_header(first, rest):
        return True
    if any(not v or NUMBER.match(v) for v in first):
        return False
    if not rest:
        return True
    for i in range(len(first)):
        values = [r[i].strip() for r in rest if r[i].strip()]
        if values and all(NUMBER.match(v) for v in values):
            return True
    return len(set(first)) == len(first) and all(
        name not in {r[i].strip() for r in rest} for i, name in enumerate(first))


def _index_header(first: list[str], rest: list[list[str]]) -> bool:
    """The header of a CSV that pandas wrote with its index: an empty first name over whole
    numbers, names (no number) in the other columns. It was read as a record, the columns
    named Var01.. and every number column guessed CATEGORICAL for the word on top of it."""
    names = first[1:]
    return (len(first) > 1 and not first[0] and all(v and not NUMBER.match(v) for v in names)
            and bool(rest) and all(r[0].strip().isdigit() for r in rest))


def _guess_type(values: list[str], name: str, is_target: bool) -> str:
    if not values:
        return "CATEGORICAL"
    lowered = {v.lower() for v in values}
    if lowered <= BINARY_WORDS and (not lowered <= {"0", "1"} or lowered == {"0", "1"}):
        return "BINARY"
    if all(NUMBER.match(v) for v in values):
        if _looks_like_label(values, name, is_target):
            return "CATEGORICAL"
        return "NUMERIC"
    if sum(len(v.split()) for v in values) / len(values) > 2:
        return "TEXT"
    return "CATEGORICAL"


def _attribute_names(header: list[str]) -> list[str]:
    """A name per column that a schema takes: the header's, or VarNN for an empty one; cut
    to MAX_NAME_LENGTH, and made unique (a, a_2) and apart from the recipes' built-in groups
    (ALL_TEXT_2): a header repeating a name gave a schema the service refused."""
    names: list[str] = []
    for i, given in enumerate(header):
        name = base = (given or f"Var{i + 1:02d}")[:MAX_NAME_LENGTH]
        copy = 1
        while name in names or name in BUILTIN_GROUPS:
            copy += 1
            name = base[:MAX_NAME_LENGTH - len(f"_{copy}")] + f"_{copy}"
        names.append(name)
    return names


def _looks_like_label(values: list[str], name: str, is_target: bool) -> bool:
    distinct = set(values)
    small_integers = len(distinct) <= 10 and all(v.isdigit() and int(v) < 100 for v in distinct)
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", name)  # snake_case, camelCase, UPPER
    return small_integers and (is_target or any(w.lower() in LABEL_WORDS for w in words))
