"""Bounded parsing of what people send the console: form bodies and the record pasted into the
prediction form. Each parser has a size (and, for JSON, a depth) limit and fails with
InvalidInputException and a message, never with a RecursionError or a 500.
"""

from __future__ import annotations

import csv
import io
import urllib.parse
from collections.abc import Mapping

import orjson

from openaml.errors import InvalidInputException

MAX_FORM_BYTES = 1 << 20
MAX_FORM_FIELDS = 1000  # the prediction form has at most FORM_FIELDS attribute inputs
SHOWN_CHARS = 80


def parse_form(body: bytes) -> dict[str, str]:
    """An urlencoded form body (the last value of a repeated field wins)."""
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                                       max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise InvalidInputException(f"The form has more than {MAX_FORM_FIELDS} fields") from None
    return dict(pairs)


def record_from_form(form: Mapping[str, str], names: list[str]) -> dict[str, str]:
    """The record of the prediction form: a pasted JSON object of attribute names to values, a
    pasted CSV line (the input values in schema order), or one form field per attribute; not
    both a pasted record and fields (which of them was meant cannot be told)."""
    pasted = (form.get("pasted") or "").strip()
    if pasted and any(form.get(f"attr:{name}") for name in names):
        raise InvalidInputException("Fill in the attributes' fields or paste a record, not both: "
                                    "empty the one not meant to be scored")
    if pasted.startswith("{"):
        return _json_record(pasted)
    if pasted:
        return _csv_record(pasted, names)
    return {name: form[f"attr:{name}"] for name in names if form.get(f"attr:{name}")}


def _json_record(text: str) -> dict[str, str]:
    """orjson, as the API itself parses JSON: it refuses nesting deeper than 1024 levels."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputException(f"The pasted JSON is not valid: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInputException("Paste a JSON object of attribute names to values")
    record = {}
    for name, value in document.items():
        if isinstance(value, dict | list):
            raise InvalidInputException(
                f"The value of '{shortened(name)}' is a JSON {'object' if isinstance(value, dict) else 'array'}; "
                "a record holds one string, number or boolean per attribute")
        record[name] = "" if value is None else str(value)
    return record


def _csv_record(text: str, names: list[str]) -> dict[str, str]:
    """One CSV record, which a quoted value may carry over several lines (it was cut at the
    first); csv's own field size limit (128 KiB) bounds each value."""
    try:
        records = [values for values in csv.reader(io.StringIO(text)) if values]
    except csv.Error as exc:
        raise InvalidInputException(f"The pasted record is not valid CSV: {exc}") from None
    if len(records) != 1:
        raise InvalidInputException(
            f"The pasted text holds {len(records)} CSV records; paste one (the input values in schema order)")
    values = records[0]
    if len(values) != len(names):
        raise InvalidInputException(
            f"The pasted record has {len(values)} values; the model expects {len(names)} "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})")
    return dict(zip(names, values, strict=True))


def shortened(text: str) -> str:
    """`text` as a message repeats it: its first SHOWN_CHARS characters, then "..." if longer."""
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."
