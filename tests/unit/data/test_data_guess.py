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
