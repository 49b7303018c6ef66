import io
import json

from openaml.ml.schema import parse_schema
from openaml.ml.schema.guess import guess_schema


def _types(text):
    doc = json.loads(text)
    parse_schema(text)
    return doc, {a["attributeName"]: a["attributeType"] for a in doc["attributes"]}


def test_header_and_types():
    csv = b"age,label,ok,desc,city,flag\n30,1,yes,a very long text here,Paris,0\n40.5,2,No,another long text,Rome,1\n"
    doc, types = _types(guess_schema(io.BytesIO(csv), target="label", row_id="city"))
    assert doc["dataFileContainsHeader"] is True
    assert types == {"age": "NUMERIC", "label": "CATEGORICAL", "ok": "BINARY", "desc": "TEXT",
                     "city": "CATEGORICAL", "flag": "BINARY"}
    assert doc["targetAttributeName"] == "label" and doc["rowId"] == "city"


def test_no_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,a\n2,b\n3,c\n")
    doc, types = _types(guess_schema(path))
    assert doc["dataFileContainsHeader"] is False
    assert types == {"Var01": "NUMERIC", "Var02": "CATEGORICAL"}


def test_the_names_are_those_a_schema_takes():
    """A repeated header name gave a schema the service refused (declared more than once);
    so would a name past 64 characters, and a built-in group's name (recipes read the group)."""
    from openaml.ml.recipes.recipe import BUILTIN_GROUPS

    long = "x" * 70
    header = f"a,a,ALL_TEXT,{long},{long}\n"
    doc = json.loads(guess_schema(io.StringIO(header + "".join(f"{i},{i},{i},{i},{i}\n" for i in range(9)))))
    names = [a["attributeName"] for a in doc["attributes"]]
    assert names == ["a", "a_2", "ALL_TEXT_2", "x" * 64, "x" * 62 + "_2"]
    assert parse_schema(json.dumps(doc)).names == tuple(names) and not set(names) & set(BUILTIN_GROUPS)


def test_small_integers_are_categories_by_whole_words_of_their_names():
    """residents, humidity_level and width were categories: "id" and "type" were found inside
    other words."""
    names = ["residents", "humidity_level", "width", "user_id", "userId", "TYPE", "class_code", "price"]
    header = ",".join(names) + "\n"
    doc = json.loads(guess_schema(io.StringIO(header + "".join(",".join([str(i % 9)] * 8) + "\n" for i in range(40)))))
    types = {a["attributeName"]: a["attributeType"] for a in doc["attributes"]}
    assert types == {"residents": "NUMERIC", "humidity_level": "NUMERIC", "width": "NUMERIC", "user_id": "CATEGORICAL",
                     "userId": "CATEGORICAL", "TYPE": "CATEGORICAL", "class_code": "CATEGORICAL", "price": "NUMERIC"}


def test_lines_ended_by_a_lone_cr_are_named_not_guessed():
    """A classic Mac OS CSV (CR line ends) is one line for the service: the guess says so
    (it reported csv's 'new-line character seen in unquoted field')."""
    import pytest

    from openaml.ml.errors import InputError

    with pytest.raises(InputError, match="its lines end with a CR alone"):
        guess_schema(io.BytesIO(b"a,b,y\r1,2,0\r3,4,1\r"))
    assert json.loads(guess_schema(io.BytesIO(b"a,b,y\r\n1,2,0\r\n3,4,1\r\n")))["attributes"]


def test_a_header_over_a_pandas_index_is_a_header():
    """pandas' to_csv() writes its index first, under an empty name: the header was read as a
    record, the columns named Var01.. and the numbers guessed CATEGORICAL for the word above
    them (found by an outside test of the console)."""
    sample = b",customer_id,tenure,plan,churn\n0,c1,12,basic,no\n1,c2,30,pro,yes\n2,c3,5,basic,no\n"
    doc = json.loads(guess_schema(io.BytesIO(sample)))
    assert doc["dataFileContainsHeader"] is True
    assert [(a["attributeName"], a["attributeType"]) for a in doc["attributes"]] == [
        ("Var01", "NUMERIC"), ("customer_id", "CATEGORICAL"), ("tenure", "NUMERIC"), ("plan", "CATEGORICAL"),
        ("churn", "BINARY")]
    parse_schema(json.dumps(doc))
