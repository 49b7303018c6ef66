"""Lines that look separated by another mark than the comma, for advice in messages.

A datasource reads comma-separated values (data.md). Spreadsheets in many locales save "CSV"
with semicolons between the fields and commas in the numbers (1,5;2,25): read with commas,
such lines have one field, or as many as their decimal commas make, so the guessed schema or
the rejection alone does not tell what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
SAMPLED_LINES = 20  # whole lines of a sample's start that sample_advice reads


def sample_advice(text: str) -> str | None:
    """Advice where the first SAMPLED_LINES whole lines of a sample look separated by another
    mark than the comma (other_separator), as a sentence; None where they do not."""
    pieces = text.split("\n", SAMPLED_LINES)
    if len(pieces) > SAMPLED_LINES:
        pieces.pop()  # the rest of the sample
    found = other_separator([line.removesuffix("\r") for line in pieces if line.strip()])
    if found is None:
        return None
    mark, count = found
    return (f"Every sampled line holds {mark}, {count} in each, while the commas do not split the lines alike: "
            f"the file may be separated by {mark} (with decimal commas, perhaps), and a datasource reads "
            "comma-separated values. Save it as CSV with commas between the fields and points in the numbers")


def other_separator(lines: Sequence[str], fields: int | None = None) -> tuple[str, int] | None:
    """(name, count) of the mark other than the comma that separates `lines` (a sample, or a
    rejected line with its file's header): every line holds it `count` times, once at least
    (`fields` - 1 times where the field count is known), quoted values aside, while commas do
    not split the lines alike into several fields. None where no mark does so: a comma-separated file whose
    values hold semicolons splits alike by its commas."""
    if not lines:
        return None
    by_commas = {comma_fields(line) for line in lines}
    if len(by_commas) == 1 and min(by_commas) > 1 and fields in (None, min(by_commas)):
        return None  # the commas separate them
    for mark, name in OTHER_SEPARATORS.items():
        counts = {_outside_quotes(line, mark) for line in lines}
        count = counts.pop()
        if not counts and count > 0 and fields in (None, count + 1):
            return name, count
    return None


def comma_fields(line: str) -> int:
    """Fields of a line read with commas as separators: commas outside quotes, plus one."""
    return 1 + _outside_quotes(line, ",")


def _outside_quotes(line: str, mark: str) -> int:
    """How often `mark` occurs in the line outside quoted values."""
    return sum(part.count(mark) for part in line.split('"')[::2])
