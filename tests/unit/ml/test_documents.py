"""ml/documents.load_json: a JSON document given as a string is read whole and faithfully, or
refused with the caller's error saying why; never another exception (an HTTP 500)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from openaml.ml.documents import load_json, load_object


class Refused(ValueError):
    pass


@pytest.mark.parametrize("text, words", [
    ('{"a": 1, "a": 2}', 'names "a" twice in one object'),
    ('{"a": {"b": 1, "b": 1}}', 'names "b" twice'),  # even with the same value
    ('{"a": ' + "1" * 5000 + "}", "number too long or too large"),
    ('{"a": "\\ud800"}', "half a UTF-16 pair"),
    ('{"\\udc00": 1}', "half a UTF-16 pair"),
    ('[[[["\\udc00"]]]]', "half a UTF-16 pair"),
    ('{"a": "x\\u0000"}', "U\\+0000"),
    ('[{"\\u0000": 1}]', "U\\+0000"),
    ("[" * 100_000, "too deeply"),
    ("{", "not valid JSON"),
])
def test_documents_that_cannot_be_read_faithfully_are_refused(text: str, words: str) -> None:
    with pytest.raises(Refused, match=words):
        load_json(text, "The document", Refused)


@pytest.mark.parametrize("number", ["1e99999999999999999999", "-1e99999999999999999999"])
def test_exact_numbers_past_decimals_exponents_are_refused(number: str) -> None:
    with pytest.raises(Refused, match="too long or too large"):
        load_json(f'{{"a": {number}}}', "The document", Refused, exact=True)


def test_exact_documents_read_decimals_as_written() -> None:
    assert load_object('{"p": 33.33333333333333333333, "n": 7}', "d", Refused, exact=True) == {
        "p": Decimal("33.33333333333333333333"), "n": 7}
    assert load_object('{"p": 33.3}', "d", Refused) == {"p": 33.3}


def test_the_text_check_takes_any_depth_the_parser_takes() -> None:
    """It recursed, and refused (or crashed on) documents a third as deep as the parser reads."""
    depth = 900
    assert load_json("[" * depth + '"\u00e9"' + "]" * depth, "d", Refused) is not None


def test_a_stored_document_is_read_as_an_earlier_version_took_it() -> None:
    """Requests' documents refuse U+0000 now; those an earlier version took and kept (a stored
    schema, a model's artifact) are still read, as they were."""
    from openaml.ml.schema import parse_schema

    assert load_json('{"a": "x\\u0000"}', "The document", Refused, stored=True) == {"a": "x\x00"}
    schema = ('{"version": "1.0", "targetAttributeName": "y", "dataFormat": "CSV", "attributes": ['
              '{"attributeName": "c\\u0000", "attributeType": "CATEGORICAL"}, {"attributeName": "y", '
              '"attributeType": "BINARY"}]}')
    assert parse_schema(schema, stored=True).names[0] == "c\x00"
    with pytest.raises(ValueError, match="U\\+0000"):
        parse_schema(schema)
