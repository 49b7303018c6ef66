"""Recipes are small texts that can stand for huge expansions: every size is bounded before
anything is built, and deep nesting is refused with a RecipeError (InvalidInputException at
CreateMLModel), never a RecursionError."""

import json
import tracemalloc
from collections.abc import Callable

import pytest

from openaml.ml.recipes import RecipeError, parse_recipe
from openaml.ml.recipes.recipe import (
    MAX_DOCUMENT_NESTING,
    MAX_EXPANDED_CHARACTERS,
    MAX_EXPANDED_VARIABLES,
    MAX_NAME_LENGTH,
)
from openaml.ml.recipes.syntax import MAX_NESTING
from openaml.ml.schema import Schema

from .conftest import make_schema

BOMB = {"assignments": {"a": "cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL)", "b": "cartesian(a, a)"},
        "outputs": ["b"]}


def categorical_schema(n: int) -> Schema:
    return make_schema([(f"c{i}", "CATEGORICAL") for i in range(n)]
                       + [("n0", "NUMERIC"), ("t0", "TEXT"), ("y", "BINARY")],
                       targetAttributeName="y")


def peak_bytes(call: Callable[[], object]) -> int:
    """The most memory Python allocated while `call` ran."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def refused(recipe: dict | str, schema: Schema, memory: int = 4 * 2**20) -> str:
    """The RecipeError's message, checking that refusing took less than `memory` bytes
    (4 MiB: nothing was expanded)."""
    text = recipe if isinstance(recipe, str) else json.dumps(recipe)
    errors: list[RecipeError] = []

    def parse() -> None:
        try:
            parse_recipe(text, schema)
        except RecipeError as exc:
            errors.append(exc)

    assert peak_bytes(parse) < memory
    assert errors, "the recipe was accepted"
    return str(errors[0])


@pytest.mark.parametrize("attributes, where, count", [
    (32, "assignments['b']", 1024 * 1024),  # the old code built a: 1024, then b: a million
    (785, "assignments['a']", 785 * 785),  # MNIST's width: the old code exhausted the host
])
def test_cartesian_bomb_is_refused_before_expansion(attributes: int, where: str, count: int) -> None:
    message = refused(BOMB, categorical_schema(attributes))
    assert message.startswith(where) and f"expands to {count} variables" in message


@pytest.mark.parametrize("recipe", [
    # an intermediate expression, though what wraps it would be smaller
    {"outputs": ["lowercase(cartesian(cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL), c0))"]},
    # an assignment no output uses
    {"assignments": {"unused": "cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL)"}, "outputs": ["c0"]},
])
def test_every_node_is_bounded(recipe: dict) -> None:
    assert "expands to 616225 variables" in refused(recipe, categorical_schema(785))


@pytest.mark.parametrize("recipe", [
    # the same 10,000 variables handed on over and over: outputs de-duplicate, work did not
    {"assignments": {"a": "cartesian(G, G)"}, "outputs": ["a"] * 10},
    {"outputs": ["cartesian(G, G)"] * 10},
    # assignments of 10,000 variables each, none too big alone
    {"assignments": {f"a{i}": "cartesian(G, G)" for i in range(10)}, "outputs": ["c0"]},
])
def test_the_whole_expansion_is_bounded(recipe: dict) -> None:
    recipe = {"groups": {"G": "group(" + ",".join(f"c{i}" for i in range(100)) + ")"}, **recipe}
    # up to MAX_EXPANDED_VARIABLES variables were made (a few MiB), no more
    assert f"more than {MAX_EXPANDED_VARIABLES} variables in all" in refused(
        recipe, categorical_schema(785), memory=32 * 2**20)


def test_group_definitions_are_bounded() -> None:
    recipe = {"groups": {"G": "group(" + ",".join(["ALL_CATEGORICAL"] * 100) + ")"},
              "outputs": ["G"]}
    assert "in all" in refused(recipe, categorical_schema(785))


def test_modest_cartesians_still_work() -> None:
    schema = categorical_schema(32)
    doc = {"assignments": {"a": "cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL)",
                           "deep": "cartesian(cartesian(lowercase(no_punct(t0)), c1), "
                                   "quantile_bin(n0, 10))"},
           "outputs": ["a", "deep", "cartesian(a, c0)"]}
    outputs = [n.canonical for n in parse_recipe(json.dumps(doc), schema).outputs]
    assert len(outputs) == 32 * 32 + 1 + 32 * 32
    assert outputs[1024] == "cartesian(cartesian(lowercase(no_punct(t0)),c1),quantile_bin(n0,10))"
    assert outputs[-1] == "cartesian(cartesian(c31,c31),c0)"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 600, 10_000])
def test_deeply_nested_calls_are_refused(depth: int) -> None:
    recipe = {"outputs": ["lowercase(" * depth + "t0" + ")" * depth]}
    assert f"nested more than {MAX_NESTING} deep" in refused(recipe, categorical_schema(2))


def test_nesting_up_to_the_limit_parses() -> None:
    expression = "no_punct(" * (MAX_NESTING - 1) + "cartesian(c0, c1)" + ")" * (MAX_NESTING - 1)
    [node] = parse_recipe(json.dumps({"outputs": [expression]}), categorical_schema(2)).outputs
    assert node.canonical == expression.replace(" ", "")


def test_chained_assignments_are_bounded_by_name_length() -> None:
    # 1,000 assignments each wrapping the last: no expression is deep, the variable is
    assignments = {"a0": "lowercase(t0)"}
    assignments.update({f"a{i}": f"lowercase(a{i - 1})" for i in range(1, 1000)})
    message = refused({"assignments": assignments, "outputs": ["a999"]}, categorical_schema(2))
    assert f"at most {MAX_NAME_LENGTH} are allowed" in message


@pytest.mark.parametrize("depth", [MAX_DOCUMENT_NESTING, 600, 20_000])
@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"k":', "}")])
def test_deeply_nested_json_is_refused(depth: int, opening: str, closing: str) -> None:
    # `depth` inside the top-level object
    text = '{"outputs": ["c0"], "notes": ' + opening * depth + "1" + closing * depth + "}"
    assert f"more than {MAX_DOCUMENT_NESTING} deep" in refused(text, categorical_schema(2))


def test_json_nesting_up_to_the_limit_parses() -> None:
    depth = MAX_DOCUMENT_NESTING - 1
    text = '{"outputs": ["c0"], "notes": ' + "[" * depth + "1" + "]" * depth + "}"
    assert [n.canonical for n in parse_recipe(text, categorical_schema(2)).outputs] == ["c0"]


def test_brackets_inside_json_strings_do_not_count() -> None:
    note = '[{"\\"' * 40  # brackets, an escaped quote, inside one string
    text = json.dumps({"notes": [note, "]]}}" * 40], "outputs": ["c0"]})
    assert [n.canonical for n in parse_recipe(text, categorical_schema(2)).outputs] == ["c0"]


@pytest.mark.parametrize("argument", ["\u00b2", "\u0661\u0660", "9" * 5000, "1" + "0" * 9])
def test_integers_that_are_not_small_ascii_numbers(argument: str) -> None:
    # int() raised a plain ValueError for "²" and for 5,000 digits (not a RecipeError), and
    # read Arabic-Indic "١٠" as 10
    with pytest.raises(RecipeError):
        parse_recipe(json.dumps({"outputs": [f"quantile_bin(n0, {argument})"]}), categorical_schema(2))


@pytest.mark.parametrize("entry", ["x" * 100_000, "lowercase(" + "y" * 100_000 + ")",
                                   "c0 " + "z" * 100_000, "9" + "w" * 100_000])
def test_errors_quote_a_short_excerpt(entry: str) -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe(json.dumps({"outputs": [entry]}), categorical_schema(2))
    assert len(str(err.value)) < 500


def test_interactions_of_long_attribute_names_fit() -> None:
    """A three-way cartesian of cleaned 64-character attributes was refused by
    a 256-character limit that Amazon ML does not have (its name here has 275)."""
    a, b, c = ("a" * 63 + "x", "b" * 63 + "x", "c" * 63 + "x")
    schema = make_schema([(a, "TEXT"), (b, "CATEGORICAL"), (c, "NUMERIC"), ("y", "BINARY")],
                         targetAttributeName="y")
    expression = f"cartesian(cartesian(no_punct(lowercase({a})),no_punct(lowercase({b}))),quantile_bin({c},10))"
    [node] = parse_recipe(json.dumps({"outputs": [expression]}), schema).outputs
    assert node.canonical == expression and 256 < len(expression) < MAX_NAME_LENGTH


def test_the_names_made_are_bounded_in_all() -> None:
    """Long names times many variables: each within its limits, their characters together not."""
    names = [f"c{i:02d}" + "x" * 60 for i in range(100)]
    schema = make_schema([(n, "CATEGORICAL") for n in names] + [("y", "BINARY")], targetAttributeName="y")
    group = "group(" + ",".join(names) + ")"
    wrapped = "no_punct(lowercase(" * 6 + "G" + "))" * 6  # names of 190 characters
    recipe = {"groups": {"G": group},  # 4 x 10,000 pairs of 392 characters: 15.7 million
              "assignments": {"w": wrapped, **{f"p{i}": "cartesian(w, w)" for i in range(4)}}, "outputs": ["G"]}
    assert f"more than {MAX_EXPANDED_CHARACTERS} characters of names in all" in refused(
        recipe, schema, memory=64 * 2**20)


def test_a_group_of_an_assignment_says_what_is_wrong() -> None:
    recipe = {"assignments": {"a": "lowercase(t0)"}, "groups": {"A": "group(a)"}, "outputs": ["A"]}
    message = refused(recipe, categorical_schema(2))
    assert "'a' is an assignment; a group holds attributes and groups only" in message
    assert "before it is defined" not in message
    forward = {"groups": {"A": "group(B)", "B": "group(c0)"}, "outputs": ["A"]}
    assert "'B' is used before it is defined" in refused(forward, categorical_schema(2))


@pytest.mark.parametrize("text, fragment", [
    ('{"outputs": ["c0"], "outputs": ["c1"]}', 'names "outputs" twice in one object'),
    ('{"groups": {"G": "group(c0)", "G": "group(c1)"}, "outputs": ["G"]}', 'names "G" twice'),
    ('{"outputs": ["c0"], "x": 1' + "0" * 5000 + "}", "a number too long or too large to read"),
    ('{"outputs": ["c0", "\\udc00"]}', "half a UTF-16 pair"),
])
def test_recipe_documents_that_cannot_be_read_faithfully_are_refused(text: str, fragment: str) -> None:
    assert fragment in refused(text, categorical_schema(2))
