"""Recipe documents (recipes.md §1-§7): parse, resolve names, type-check, expand groups.

A recipe is small text that can stand for a huge expansion (`cartesian(a, a)` of an assignment
`a = cartesian(ALL_CATEGORICAL, ALL_CATEGORICAL)`), so every size is bounded before anything is
built: the document's length and nesting, the nesting of calls in an expression, the number of
variables every group, assignment and expression expands to and the length of their canonical
names (both computed from the arguments' before the variables are made), and the variables
made in all. A name's length bounds its variable's depth, and so every recursive walk over it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from openaml.ml.documents import load_object
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, NUMERIC, TEXT, TOKENS, Attr, Node, Op
from openaml.ml.recipes.syntax import Call, Expr, Integer, Name, RecipeError, excerpt, parse_expression
from openaml.ml.schema import AttributeType, Schema

MAX_RECIPE_LENGTH = 131_071
MAX_DOCUMENT_NESTING = 32  # JSON arrays and objects inside each other
MAX_OUTPUT_VARIABLES = 10_000  # also the most any group, assignment or expression expands to
MAX_EXPANDED_VARIABLES = 50_000  # handled by all groups, assignments and expressions together
# of a variable's canonical name: a three-way cartesian of cleaned 64-character attributes takes
# about 300 (256 refused it); an assignment chain of lowercase() reaches it 90 deep
MAX_NAME_LENGTH = 1_024
# the names of the variables handled, all together, each set counted at its longest name: the
# most the earlier limits let through (50,000 variables of 256 characters), so none is refused now
MAX_EXPANDED_CHARACTERS = 12_800_000
BUILTIN_GROUPS = ("ALL_TEXT", "ALL_NUMERIC", "ALL_CATEGORICAL", "ALL_BINARY", "ALL_INPUTS")
_KIND = {AttributeType.TEXT: TEXT, AttributeType.CATEGORICAL: CATEGORICAL,
         AttributeType.BINARY: BINARY, AttributeType.NUMERIC: NUMERIC}
_KIND_NAMES = {TEXT: "TEXT", CATEGORICAL: "CATEGORICAL", BINARY: "BINARY", NUMERIC: "NUMERIC",
               TOKENS: "token set"}
# function -> (accepted argument kinds, integer range or None)
_UNARY: dict[str, tuple[set[str], tuple[int, int] | None]] = {
    "ngram": ({TEXT}, (2, 10)),
    "osb": ({TEXT}, (2, 10)),
    "lowercase": ({TEXT, CATEGORICAL, TOKENS}, None),
    "no_punct": ({TEXT, CATEGORICAL, TOKENS}, None),
    "quantile_bin": ({NUMERIC}, (5, 1000)),
    "normalize": ({NUMERIC}, None),
}
_CARTESIAN_KINDS = {TEXT, CATEGORICAL, TOKENS, BINARY}
# JSON strings (an unterminated one runs to the end) and brackets: a linear scan
_JSON_NESTING_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: the output variables in order, de-duplicated by canonical name."""

    text: str
    outputs: tuple[Node, ...]


@dataclass(frozen=True)
class _Variables:
    """What a group, assignment or expression expands to: its variables and the length of
    their longest canonical name."""

    nodes: tuple[Node, ...]
    name_length: int

    @classmethod
    def made(cls, nodes: tuple[Node, ...]) -> _Variables:
        """The variables of nodes that exist already (a group's, an attribute)."""
        return cls(nodes, max((len(n.canonical) for n in nodes), default=0))


def parse_recipe(text: str, schema: Schema) -> Recipe:
    """Parse a recipe JSON string and check it against the training schema."""
    if len(text) > MAX_RECIPE_LENGTH:
        raise RecipeError(f"The recipe is longer than {MAX_RECIPE_LENGTH} characters")
    check_document_nesting(text)
    doc = load_object(text, "The recipe", RecipeError)
    groups = _section(doc, "groups")
    assignments = _section(doc, "assignments")
    outputs = doc.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise RecipeError("The recipe must have a non-empty 'outputs' array")
    resolver = _Resolver(schema, set(groups), set(assignments))
    for name, value in groups.items():
        resolver.define_group(name, value)
    for name, value in assignments.items():
        resolver.define_assignment(name, value)
    nodes: dict[str, Node] = {}
    for position, entry in enumerate(outputs):
        if not isinstance(entry, str):
            raise RecipeError(f"outputs[{position}] must be a string")
        where = f"outputs[{position}] {excerpt(entry)}"
        for node in resolver.output(entry, where):
            nodes.setdefault(node.canonical, node)
        if len(nodes) > MAX_OUTPUT_VARIABLES:
            raise RecipeError(
                f"The recipe produces more than {MAX_OUTPUT_VARIABLES} output variables")
    if not nodes:
        raise RecipeError("The recipe's outputs contain no usable input variable")
    return Recipe(text=text, outputs=tuple(nodes.values()))


def check_document_nesting(text: str) -> None:
    """Refuse JSON whose arrays and objects nest deeper than MAX_DOCUMENT_NESTING, before a
    parser recurses into them (brackets inside strings do not count)."""
    depth = 0
    for match in _JSON_NESTING_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DOCUMENT_NESTING:
                raise RecipeError(
                    f"The recipe nests JSON arrays or objects more than {MAX_DOCUMENT_NESTING} deep")
        elif token in ("]", "}"):
            depth -= 1


def _section(doc: dict[str, Any], key: str) -> dict[str, str]:
    value = doc.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RecipeError(f"'{key}' must be an object mapping names to expression strings")
    return value


class _Resolver:
    """Names to variables for one recipe whose sections declare `group_names` and
    `assignment_names` (groups are defined before any assignment)."""

    def __init__(self, schema: Schema, group_names: set[str], assignment_names: set[str]) -> None:
        self.schema = schema
        self.inputs = {a.name: Attr(a.name, _KIND[a.type]) for a in schema.input_attributes}
        self.groups: dict[str, tuple[Attr, ...]] = {
            "ALL_TEXT": tuple(a for a in self.inputs.values() if a.kind == TEXT),
            "ALL_NUMERIC": tuple(a for a in self.inputs.values() if a.kind == NUMERIC),
            "ALL_CATEGORICAL": tuple(a for a in self.inputs.values() if a.kind == CATEGORICAL),
            "ALL_BINARY": tuple(a for a in self.inputs.values() if a.kind == BINARY),
            "ALL_INPUTS": tuple(self.inputs.values()),
        }
        self.assignments: dict[str, _Variables] = {}
        self.declared = group_names | assignment_names  # a use before its definition is refused
        self.assignment_names = assignment_names
        self.expanded = 0  # variables handled so far, bounded by MAX_EXPANDED_VARIABLES
        self.characters = 0  # their names' characters, bounded by MAX_EXPANDED_CHARACTERS

    def _expand(self, count: int, name_length: int, where: str) -> None:
        """Account for `count` variables whose names have up to `name_length` characters,
        before they are made (or handed on); refuse what passes a limit."""
        if count > MAX_OUTPUT_VARIABLES:
            raise RecipeError(f"{where} expands to {count} variables; a group, assignment or "
                              f"expression may expand to at most {MAX_OUTPUT_VARIABLES}")
        if name_length > MAX_NAME_LENGTH:
            raise RecipeError(f"{where} makes a variable whose canonical name has {name_length} "
                              f"characters; at most {MAX_NAME_LENGTH} are allowed")
        self._charge(count, where)
        self.characters += count * name_length
        if self.characters > MAX_EXPANDED_CHARACTERS:
            raise RecipeError(f"{where}: the recipe's variables have more than {MAX_EXPANDED_CHARACTERS} "
                              "characters of names in all (groups, assignments and outputs together)")

    def _charge(self, count: int, where: str) -> None:
        """Account for `count` variables handled, towards MAX_EXPANDED_VARIABLES."""
        self.expanded += count
        if self.expanded > MAX_EXPANDED_VARIABLES:
            raise RecipeError(f"{where}: the recipe expands to more than {MAX_EXPANDED_VARIABLES} "
                              "variables in all (groups, assignments and outputs together)")

    def _check_new_name(self, name: str, section: str) -> None:
        where = f"{section} name {excerpt(name)}"
        if not 1 <= len(name) <= 64 or not name[0].isalpha():
            raise RecipeError(f"{where}: names must have 1-64 characters and start with a letter")
        if name in BUILTIN_GROUPS or self.schema.type_of(name) is not None:
            raise RecipeError(f"{where} clashes with a schema attribute or built-in group")
        if name in self.groups or name in self.assignments:
            raise RecipeError(f"{where} is defined more than once")

    def define_group(self, name: str, text: str) -> None:
        self._check_new_name(name, "groups")
        where = f"groups[{name!r}] {excerpt(text)}"
        expr = _parse(text, where)
        if not isinstance(expr, Call) or expr.function not in ("group", "group_remove"):
            raise RecipeError(f"{where}: a group must be group(...) or group_remove(...)")
        if not expr.args or not all(isinstance(a, Name) for a in expr.args):
            raise RecipeError(f"{where}: group arguments must be attribute or group names")
        parts = [self._group_member(a.text, where) for a in expr.args if isinstance(a, Name)]
        self._charge(sum(map(len, parts)), where)
        if expr.function == "group":
            keep = {m.name for part in parts for m in part}
        else:
            if len(parts) < 2:
                raise RecipeError(f"{where}: group_remove needs a group and attributes to remove")
            removed = {m.name for part in parts[1:] for m in part}
            keep = {m.name for m in parts[0]} - removed
        self._expand(len(keep), 0, where)  # attributes: their names are the schema's
        self.groups[name] = tuple(a for a in self.inputs.values() if a.name in keep)

    def _group_member(self, name: str, where: str) -> tuple[Attr, ...]:
        if name == "ALL_INPUTS":
            raise RecipeError(f"{where}: ALL_INPUTS cannot be used inside a group")
        if name in self.groups:
            return self.groups[name]
        if name in self.assignment_names:
            raise RecipeError(f"{where}: {excerpt(name)} is an assignment; a group holds attributes and "
                              "groups only (transform the group in an assignment or output instead)")
        return tuple(n for n in self._attribute(name, where) if isinstance(n, Attr))

    def _attribute(self, name: str, where: str) -> tuple[Attr, ...]:
        if name in self.inputs:
            return (self.inputs[name],)
        if self.schema.type_of(name) is not None:
            return ()  # target, rowId, rowWeight or excluded: silently dropped
        if name in self.declared:
            raise RecipeError(f"{where}: {excerpt(name)} is used before it is defined "
                              "(forward references and cycles are not allowed)")
        raise RecipeError(f"{where}: unknown name {excerpt(name)}")

    def define_assignment(self, name: str, text: str) -> None:
        self._check_new_name(name, "assignments")
        where = f"assignments[{name!r}] {excerpt(text)}"
        self.assignments[name] = self._resolve(_parse(text, where), where)

    def output(self, text: str, where: str) -> tuple[Node, ...]:
        expr = _parse(text, where)
        if isinstance(expr, Name) and expr.text == "ALL_INPUTS":
            found = _Variables.made(self.groups["ALL_INPUTS"])
            self._expand(len(found.nodes), found.name_length, where)
            return found.nodes
        return self._resolve(expr, where).nodes

    def _resolve(self, expr: Expr, where: str) -> _Variables:
        """The variables of `expr`; recursion as deep as its calls (bounded by the parser)."""
        if isinstance(expr, Integer):
            raise RecipeError(f"{where}: unexpected integer {expr.value}")
        if isinstance(expr, Call):
            return self._call(expr, where)
        name = expr.text
        if name in self.assignments:
            found = self.assignments[name]
        elif name == "ALL_INPUTS":
            raise RecipeError(f"{where}: ALL_INPUTS may only be a whole outputs entry")
        elif name in self.groups:
            found = _Variables.made(self.groups[name])
        else:
            found = _Variables.made(self._attribute(name, where))
        self._expand(len(found.nodes), found.name_length, where)
        return found

    def _check_dropped(self, fn: str, args: Sequence[Expr], kinds: set[str], where: str) -> None:
        """The type check of an argument naming the target (or rowId, rowWeight, an excluded
        attribute): it is dropped (§6) only once the call is possible (§7); quantile_bin of a
        BINARY target was dropped silently where the same of a BINARY input is refused."""
        for arg in args:
            if (isinstance(arg, Name) and arg.text not in self.inputs and arg.text not in self.groups
                    and arg.text not in self.assignments and (found := self.schema.type_of(arg.text)) is not None):
                _check_kind(fn, Attr(arg.text, _KIND[found]), kinds, where)

    def _call(self, expr: Call, where: str) -> _Variables:
        fn = expr.function
        if fn == "cartesian":
            if len(expr.args) != 2 or any(isinstance(a, Integer) for a in expr.args):
                raise RecipeError(f"{where}: cartesian takes exactly two variables")
            self._check_dropped(fn, expr.args, _CARTESIAN_KINDS, where)
            left = self._resolve(expr.args[0], where)
            right = self._resolve(expr.args[1], where)
            for node in chain(left.nodes, right.nodes):
                _check_kind(fn, node, _CARTESIAN_KINDS, where)
            length = len("cartesian(,)") + left.name_length + right.name_length
            self._expand(len(left.nodes) * len(right.nodes), length, where)
            return _Variables(tuple(Op(fn, (x, y), TOKENS) for x in left.nodes for y in right.nodes),
                              length)
        if fn not in _UNARY:
            raise RecipeError(f"{where}: unknown function {excerpt(fn)}")
        kinds, int_range = _UNARY[fn]
        want = 2 if int_range else 1
        if len(expr.args) != want:
            raise RecipeError(f"{where}: {fn} takes {want} argument{'s' if want > 1 else ''}")
        if isinstance(expr.args[0], Integer):
            raise RecipeError(f"{where}: the first argument of {fn} must be a variable")
        n = None
        if int_range:
            arg = expr.args[1]
            if not isinstance(arg, Integer) or not int_range[0] <= arg.value <= int_range[1]:
                raise RecipeError(
                    f"{where}: the second argument of {fn} must be an integer from "
                    f"{int_range[0]} to {int_range[1]}")
            n = arg.value
        self._check_dropped(fn, expr.args[:1], kinds, where)
        members = self._resolve(expr.args[0], where)
        for node in members.nodes:
            _check_kind(fn, node, kinds, where)
        length = len(fn) + len("()") + members.name_length + (len(f",{n}") if n is not None else 0)
        self._expand(len(members.nodes), length, where)
        return _Variables(tuple(Op(fn, (node,), _result_kind(fn, node.kind), n)
                                for node in members.nodes), length)


def _check_kind(fn: str, node: Node, kinds: set[str], where: str) -> None:
    if node.kind not in kinds:
        allowed = ", ".join(sorted(_KIND_NAMES[k] for k in kinds))
        raise RecipeError(f"{where}: {fn} cannot take {node.canonical} "
                          f"({_KIND_NAMES[node.kind]}); it accepts {allowed}")


def _result_kind(fn: str, kind: str) -> str:
    return {"ngram": TOKENS, "osb": TOKENS, "quantile_bin": CATEGORICAL,
            "normalize": NUMERIC}.get(fn, kind)


def _parse(text: str, where: str) -> Expr:
    try:
        return parse_expression(text)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
