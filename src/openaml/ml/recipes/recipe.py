"""Recipe documents (recipes.md §1-§7): parse, resolve names, type-check, expand groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openaml.ml.documents import load_object
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, NUMERIC, TEXT, TOKENS, Attr, Node, Op
from openaml.ml.recipes.syntax import Call, Expr, Integer, Name, RecipeError, parse_expression
from openaml.ml.schema import AttributeType, Schema

MAX_RECIPE_LENGTH = 131_071
MAX_OUTPUT_VARIABLES = 10_000
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


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: the output variables in order, de-duplicated by canonical name."""

    text: str
    outputs: tuple[Node, ...]


def parse_recipe(text: str, schema: Schema) -> Recipe:
    """Parse a recipe JSON string and check it against the training schema."""
    if len(text) > MAX_RECIPE_LENGTH:
        raise RecipeError(f"The recipe is longer than {MAX_RECIPE_LENGTH} characters")
    doc = load_object(text, "The recipe", RecipeError)
    groups = _section(doc, "groups")
    assignments = _section(doc, "assignments")
    outputs = doc.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise RecipeError("The recipe must have a non-empty 'outputs' array")
    resolver = _Resolver(schema)
    resolver.declared = set(groups) | set(assignments)
    for name, value in groups.items():
        resolver.define_group(name, value)
    for name, value in assignments.items():
        resolver.define_assignment(name, value)
    nodes: dict[str, Node] = {}
    for position, entry in enumerate(outputs):
        if not isinstance(entry, str):
            raise RecipeError(f"outputs[{position}] must be a string")
        where = f"outputs[{position}] {entry!r}"
        for node in resolver.output(entry, where):
            nodes.setdefault(node.canonical, node)
        if len(nodes) > MAX_OUTPUT_VARIABLES:
            raise RecipeError(
                f"The recipe produces more than {MAX_OUTPUT_VARIABLES} output variables")
    if not nodes:
        raise RecipeError("The recipe's outputs contain no usable input variable")
    return Recipe(text=text, outputs=tuple(nodes.values()))


def _section(doc: dict[str, Any], key: str) -> dict[str, str]:
    value = doc.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RecipeError(f"'{key}' must be an object mapping names to expression strings")
    return value


class _Resolver:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.inputs = {a.name: Attr(a.name, _KIND[a.type]) for a in schema.input_attributes}
        self.groups: dict[str, list[Attr]] = {
            "ALL_TEXT": [a for a in self.inputs.values() if a.kind == TEXT],
            "ALL_NUMERIC": [a for a in self.inputs.values() if a.kind == NUMERIC],
            "ALL_CATEGORICAL": [a for a in self.inputs.values() if a.kind == CATEGORICAL],
            "ALL_BINARY": [a for a in self.inputs.values() if a.kind == BINARY],
            "ALL_INPUTS": list(self.inputs.values()),
        }
        self.assignments: dict[str, list[Node]] = {}
        self.declared: set[str] = set()

    def _check_new_name(self, name: str, section: str) -> None:
        where = f"{section} name {name!r}"
        if not 1 <= len(name) <= 64 or not name[0].isalpha():
            raise RecipeError(f"{where}: names must have 1-64 characters and start with a letter")
        if name in BUILTIN_GROUPS or self.schema.type_of(name) is not None:
            raise RecipeError(f"{where} clashes with a schema attribute or built-in group")
        if name in self.groups or name in self.assignments:
            raise RecipeError(f"{where} is defined more than once")

    def define_group(self, name: str, text: str) -> None:
        self._check_new_name(name, "groups")
        where = f"groups[{name!r}] {text!r}"
        expr = _parse(text, where)
        if not isinstance(expr, Call) or expr.function not in ("group", "group_remove"):
            raise RecipeError(f"{where}: a group must be group(...) or group_remove(...)")
        if not expr.args or not all(isinstance(a, Name) for a in expr.args):
            raise RecipeError(f"{where}: group arguments must be attribute or group names")
        members: list[Attr] = []
        names = [a.text for a in expr.args if isinstance(a, Name)]
        if expr.function == "group":
            for arg in names:
                members += self._group_member(arg, where)
        else:
            if len(names) < 2:
                raise RecipeError(f"{where}: group_remove needs a group and attributes to remove")
            removed = {m.name for arg in names[1:] for m in self._group_member(arg, where)}
            members = [m for m in self._group_member(names[0], where) if m.name not in removed]
        keep = {m.name for m in members}
        self.groups[name] = [a for a in self.inputs.values() if a.name in keep]

    def _group_member(self, name: str, where: str) -> list[Attr]:
        if name == "ALL_INPUTS":
            raise RecipeError(f"{where}: ALL_INPUTS cannot be used inside a group")
        if name in self.groups:
            return self.groups[name]
        return [n for n in self._attribute(name, where) if isinstance(n, Attr)]

    def _attribute(self, name: str, where: str) -> list[Node]:
        if name in self.inputs:
            return [self.inputs[name]]
        if self.schema.type_of(name) is not None:
            return []  # target, rowId, rowWeight or excluded: silently dropped
        if name in self.declared:
            raise RecipeError(f"{where}: {name!r} is used before it is defined "
                              "(forward references and cycles are not allowed)")
        raise RecipeError(f"{where}: unknown name {name!r}")

    def define_assignment(self, name: str, text: str) -> None:
        self._check_new_name(name, "assignments")
        where = f"assignments[{name!r}] {text!r}"
        self.assignments[name] = self._resolve(_parse(text, where), where)

    def output(self, text: str, where: str) -> list[Node]:
        expr = _parse(text, where)
        if isinstance(expr, Name) and expr.text == "ALL_INPUTS":
            return list(self.groups["ALL_INPUTS"])
        return self._resolve(expr, where)

    def _resolve(self, expr: Expr, where: str) -> list[Node]:
        if isinstance(expr, Integer):
            raise RecipeError(f"{where}: unexpected integer {expr.value}")
        if isinstance(expr, Name):
            name = expr.text
            if name in self.assignments:
                return self.assignments[name]
            if name == "ALL_INPUTS":
                raise RecipeError(f"{where}: ALL_INPUTS may only be a whole outputs entry")
            if name in self.groups:
                return list(self.groups[name])
            return self._attribute(name, where)
        return self._call(expr, where)

    def _call(self, expr: Call, where: str) -> list[Node]:
        fn = expr.function
        if fn == "cartesian":
            if len(expr.args) != 2 or any(isinstance(a, Integer) for a in expr.args):
                raise RecipeError(f"{where}: cartesian takes exactly two variables")
            left = self._resolve(expr.args[0], where)
            right = self._resolve(expr.args[1], where)
            for node in left + right:
                _check_kind(fn, node, _CARTESIAN_KINDS, where)
            return [Op(fn, (x, y), TOKENS) for x in left for y in right]
        if fn not in _UNARY:
            raise RecipeError(f"{where}: unknown function {fn!r}")
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
        members = self._resolve(expr.args[0], where)
        out: list[Node] = []
        for node in members:
            _check_kind(fn, node, kinds, where)
            out.append(Op(fn, (node,), _result_kind(fn, node.kind), n))
        return out


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
