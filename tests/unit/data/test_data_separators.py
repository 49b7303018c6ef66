"""other_separator: which mark other than the comma separates a file's lines, if one does."""

from __future__ import annotations

import pytest

from openaml.ml.data.separators import comma_fields, other_separator


@pytest.mark.parametrize(("lines", "fields", "found"), [
    (["a;b;c", "1;2;3"], None, ("semicolons", 2)),
    (["a;b;c", "1,5;2,25;3", "4;5,5;6"], None, ("semicolons", 2)),       # decimal commas
    (["a;b;c", "1,5;2,25;3"], 3, ("semicolons", 2)),
    (["a;b;c", "1,5;2,25;3"], 4, None),                                  # not the schema's fields
    (["a\tb", "1,5\t2"], None, ("tabs", 1)),
    (["a|b|c|d"], None, ("vertical bars", 3)),                           # a header alone
    (["a,b,c", "1;2,3,4", "5;6,7,8"], None, None),                       # commas separate
    (["a,b", "1,2"], 2, None),                                          # a comma file
    (["name;with;semicolons,b", "x,y"], None, None),                     # not in every line
    (["a;b", '"x;y";2', "z;3"], None, ("semicolons", 1)),                # quoted values aside
    (['a,b', '"x;y",2', '"z;w",3'], None, None),
    (["a;b", "1;2;3"], None, None),
    (["", ""], None, None),
    ([], None, None),
])
def test_other_separator(lines: list[str], fields: int | None, found: tuple[str, int] | None) -> None:
    assert other_separator(lines, fields) == found


def test_comma_fields_skip_quoted_commas() -> None:
    assert comma_fields('a,"b,c",d') == 3 and comma_fields("") == 1 and comma_fields('"x,y"') == 1
