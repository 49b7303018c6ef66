import dataclasses
import io
import json

import pytest

from openaml.ml.data import DataObject, ingest, parse_rearrangement
from openaml.ml.data.statistics_document import DatasetStatistics
from openaml.ml.recipes import MAX_OUTPUT_VARIABLES, RecipeError, default_recipe, parse_recipe

from .conftest import make_schema

SCHEMA = make_schema(
    [("age", "NUMERIC"), ("hours-per-week", "NUMERIC"), ("job", "CATEGORICAL"),
     ("country", "CATEGORICAL"), ("title", "TEXT"), ("subject", "TEXT"), ("body", "TEXT"),
     ("b", "BINARY"), ("id", "CATEGORICAL"), ("y", "BINARY")],
    targetAttributeName="y", rowId="id")


def names(recipe: dict) -> list[str]:
    return [n.canonical for n in parse_recipe(json.dumps(recipe), SCHEMA).outputs]


def test_all_inputs_excludes_target_and_row_id():
    assert names({"outputs": ["ALL_INPUTS"]}) == [
        "age", "hours-per-week", "job", "country", "title", "subject", "body", "b"]


def test_worked_example_d():
    recipe = {
        "groups": {"LONGTEXT": "group_remove(ALL_TEXT, title, subject)",
                   "SPECIALTEXT": "group(title, subject)", "BINCAT": "group(ALL_CATEGORICAL, ALL_BINARY)"},
        "assignments": {"age_binned": "quantile_bin(age,30)", "cg": "cartesian(country, job)"},
        "outputs": ["lowercase(no_punct(LONGTEXT))", "ngram(lowercase(no_punct(SPECIALTEXT)),3)",
                    "quantile_bin(hours-per-week, 10)", "hours-per-week // raw",
                    "cartesian(age_binned, quantile_bin(hours-per-week,10))", "cg", "BINCAT", "y"],
    }
    assert names(recipe) == [
        "lowercase(no_punct(body))", "ngram(lowercase(no_punct(title)),3)",
        "ngram(lowercase(no_punct(subject)),3)", "quantile_bin(hours-per-week,10)", "hours-per-week",
        "cartesian(quantile_bin(age,30),quantile_bin(hours-per-week,10))", "cartesian(country,job)",
        "job", "country", "b"]


def test_every_transform_and_quoting():
    out = names({"outputs": ["osb('title', 4)", "normalize(age)", "lowercase(job)",
                             "no_punct(job)", "cartesian(title, b)", "ngram(title,2)", "age", "age"]})
    assert out == ["osb(title,4)", "normalize(age)", "lowercase(job)", "no_punct(job)",
                   "cartesian(title,b)", "ngram(title,2)", "age"]


@pytest.mark.parametrize("recipe, fragment", [
    ({"outputs": []}, "outputs"),
    ({}, "outputs"),
    ({"outputs": ["ngram(title, 11)"]}, "from 2 to 10"),
    ({"outputs": ["ngram(title, 1)"]}, "from 2 to 10"),
    ({"outputs": ["osb(title)"]}, "takes 2"),
    ({"outputs": ["quantile_bin(job, 10)"]}, "quantile_bin cannot take job"),
    ({"outputs": ["quantile_bin(age, 4)"]}, "from 5 to 1000"),
    ({"outputs": ["quantile_bin(age, 1001)"]}, "from 5 to 1000"),
    ({"outputs": ["osb(age, 3)"]}, "osb cannot take age"),
    ({"outputs": ["normalize(job)"]}, "normalize cannot take"),
    ({"outputs": ["lowercase(age)"]}, "lowercase cannot take"),
    ({"outputs": ["cartesian(age, job)"]}, "cartesian cannot take age"),
    ({"outputs": ["cartesian(job)"]}, "exactly two"),
    ({"outputs": ["ngram(ngram(title,2),2)"]}, "ngram cannot take"),
    ({"outputs": ["frobnicate(job)"]}, "unknown function"),
    ({"outputs": ["nosuch"]}, "unknown name 'nosuch'"),
    ({"outputs": ["lowercase(ALL_INPUTS)"]}, "ALL_INPUTS"),
    ({"groups": {"G": "group(ALL_INPUTS)"}, "outputs": ["G"]}, "ALL_INPUTS"),
    ({"groups": {"G": "lowercase(job)"}, "outputs": ["G"]}, "group(...)"),
    ({"groups": {"age": "group(job)"}, "outputs": ["age"]}, "clashes"),
    ({"groups": {"ALL_TEXT": "group(job)"}, "outputs": ["job"]}, "clashes"),
    ({"groups": {"1G": "group(job)"}, "outputs": ["job"]}, "start with a letter"),
    ({"assignments": {"a": "lowercase(b2)", "b2": "lowercase(job)"}, "outputs": ["a"]}, "before it is defined"),
    ({"outputs": ["y"]}, "no usable"),
    ({"outputs": ["lowercase(job"]}, "missing ')'"),
    ({"outputs": ["'unterminated"]}, "unterminated"),
    ({"outputs": [3]}, "must be a string"),
])
def test_errors_name_the_offending_part(recipe, fragment):
    with pytest.raises(RecipeError, match=None) as err:
        parse_recipe(json.dumps(recipe), SCHEMA)
    assert fragment in str(err.value)


def test_not_json_and_unknown_keys():
    with pytest.raises(RecipeError):
        parse_recipe("{", SCHEMA)
    assert names({"dependencies": {}, "outputs": ["job"]}) == ["job"]


def test_output_variable_limit():
    attrs = [(f"t{i}", "TEXT") for i in range(101)] + [(f"c{i}", "CATEGORICAL") for i in range(100)]
    schema = make_schema(attrs)
    ok = {"outputs": ["cartesian(ALL_TEXT, ALL_CATEGORICAL)"]}
    with pytest.raises(RecipeError, match=str(MAX_OUTPUT_VARIABLES)):
        parse_recipe(json.dumps(ok), schema)
    small = {"outputs": ["cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL)"]}
    assert len(parse_recipe(json.dumps(small), schema).outputs) == 10_000


def _ingested_statistics(rows: int) -> DatasetStatistics:
    """The statistics an ingest of SCHEMA's CSV writes: age with 600 distinct values,
    hours-per-week with 3, one value of each in a few records missing or invalid."""
    lines = [f"{i % 600},{[1, 2, 3][i % 3]},j{i % 4},c,t,s,b,{i % 2},{i},{(i // 2) % 2}"
             for i in range(rows)]
    lines += [",1,j,c,t,s,b,0,x,0", "oops,2,j,c,t,s,b,1,z,1"]
    data = ("\n".join(lines) + "\n").encode()
    source = DataObject("s3://b/d.csv", "d.csv", len(data), lambda: io.BytesIO(data))
    report = ingest([source], SCHEMA, parse_rearrangement(None), True, io.BytesIO())
    assert report.statistics is not None
    return DatasetStatistics.from_json(json.loads(json.dumps(report.statistics.to_json())))


@pytest.mark.parametrize(("rows", "age_bins"), [(60_000, 50), (12_000, 10), (300, 5)])
def test_default_recipe_from_the_statistics_of_an_ingest(rows, age_bins):
    """n is the largest bin count <= the distinct values and <= max(5, valid values / 1,000);
    a binned attribute is also kept as a number, and one with fewer than 5 distinct values
    only as a number. (The recipe once read keys the statistics never had, and no NUMERIC
    attribute was ever binned.)"""
    text = default_recipe(SCHEMA, _ingested_statistics(rows))
    assert text == (
        f'{{\n  "groups" : {{\n    "NUMERIC_VARS_QB_{age_bins}" : "group(\'age\')"\n  }},\n'
        '  "assignments" : { },\n  "outputs" : [ "ALL_BINARY", "ALL_CATEGORICAL", '
        f'"quantile_bin(NUMERIC_VARS_QB_{age_bins},{age_bins})", "\'age\'", "\'hours-per-week\'", '
        '"lowercase(ALL_TEXT)" ]\n}')
    assert [n.canonical for n in parse_recipe(text, SCHEMA).outputs][:2] == ["b", "job"]


def test_default_recipe_with_more_distinct_values_than_kept_exactly():
    """Past EXACT_DISTINCT distinct values the sketch's values are cut and distinctCount is null:
    such an attribute still gets the most bins its record count allows."""
    statistics = _ingested_statistics(30)
    age = statistics.attributes["age"]
    many = dataclasses.replace(age, count=2_000_000,
                               values=dataclasses.replace(age.values, distinct=None))
    statistics = dataclasses.replace(statistics, attributes={**statistics.attributes, "age": many})
    assert '"quantile_bin(NUMERIC_VARS_QB_500,500)"' in default_recipe(SCHEMA, statistics)


def test_default_recipe_names_its_groups_apart_from_the_attributes():
    """A group named as an attribute is refused (§2), so an attribute named as a default group
    failed every training without a recipe, on a recipe the user never wrote."""
    name = "NUMERIC_VARS_QB_5"
    schema = make_schema([(name, "NUMERIC"), ("NUMERIC_VARS_QB_5_", "NUMERIC"), ("y", "BINARY")], target="y")
    rows = [f"{i % 7},{i % 9},{i % 2}" for i in range(40)]
    data = ("\n".join(rows) + "\n").encode()
    source = DataObject("s3://b/d.csv", "d.csv", len(data), lambda: io.BytesIO(data))
    report = ingest([source], schema, parse_rearrangement(None), True, io.BytesIO())
    text = default_recipe(schema, report.statistics)
    recipe = parse_recipe(text, schema)
    assert '"NUMERIC_VARS_QB_5__" : "group(' in text
    assert {n.canonical for n in recipe.outputs} >= {f"quantile_bin({name},5)", "quantile_bin(NUMERIC_VARS_QB_5_,5)"}


@pytest.mark.parametrize("output, words", [
    ("quantile_bin(y,10)", "quantile_bin"), ("ngram(y,2)", "ngram"), ("lowercase(id)", None),
    ("cartesian(y, job)", None), ("quantile_bin(b,10)", "quantile_bin"),
])
def test_a_transformation_of_the_target_is_checked_before_it_is_dropped(output: str, words: str | None) -> None:
    """References to the target (or rowId) are dropped (recipes.md §6) once the call is
    possible (§7): quantile_bin of the BINARY target was dropped silently where the same of a
    BINARY input (b) is refused."""
    recipe = {"outputs": [output, "age"]}
    if words is None:
        assert names(recipe)[-1] == "age"
    else:
        with pytest.raises(RecipeError, match=words):
            names(recipe)
