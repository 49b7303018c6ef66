"""Resolved recipe variables: one attribute-level expression tree per output variable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openaml.ml.recipes.syntax import quote_name

# Value kinds of recipes.md §7 (S = token set produced by a text transformation).
TEXT, CATEGORICAL, BINARY, NUMERIC, TOKENS = "T", "C", "B", "N", "S"


@dataclass(frozen=True)
class Attr:
    """A raw schema attribute read with its training-schema type."""

    name: str
    kind: str
    canonical: str = field(init=False, repr=False, compare=False)  # the name as written

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical", quote_name(self.name))


@dataclass(frozen=True)
class Op:
    """A transformation: function name, its variable arguments and the optional integer n."""

    function: str
    args: tuple[Node, ...]
    kind: str
    n: int | None = None
    # made once from the arguments' own: recomputing it would walk the whole tree each time
    canonical: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = [a.canonical for a in self.args] + ([str(self.n)] if self.n is not None else [])
        object.__setattr__(self, "canonical", f"{self.function}({','.join(parts)})")


Node = Attr | Op


def node_to_json(node: Node) -> Any:
    if isinstance(node, Attr):
        return {"attr": node.name, "kind": node.kind}
    return {"fn": node.function, "kind": node.kind, "n": node.n,
            "args": [node_to_json(a) for a in node.args]}


def node_from_json(doc: Any) -> Node:
    if "attr" in doc:
        return Attr(doc["attr"], doc["kind"])
    return Op(doc["fn"], tuple(node_from_json(a) for a in doc["args"]), doc["kind"], doc["n"])


def attributes_of(node: Node) -> set[str]:
    """Names of the raw attributes a variable reads."""
    if isinstance(node, Attr):
        return {node.name}
    return set().union(*(attributes_of(a) for a in node.args))


def contains(node: Node, function: str) -> bool:
    if isinstance(node, Attr):
        return False
    return node.function == function or any(contains(a, function) for a in node.args)
