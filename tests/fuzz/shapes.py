"""Hypothesis strategies for request bodies, derived by walking each operation's input shape.

A body starts as a valid-ish value of the input shape (known ids, URIs and documents of the fuzz
world where a shape names one), then may be mutated at 1-3 places: a member replaced by a hostile
value (wrong JSON type, huge string or list, deep nesting, NUL and lone surrogates, numbers out of
range), deleted, set to null, or joined by an extra member. Bodies are also sent as broken JSON,
empty and as JSON that is not an object. `Raw` carries JSON text that Python values cannot
express (1e400, 600-deep nesting, a lone surrogate escape)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """A JSON fragment sent as written."""

    text: str


WEIRD_IDS = (".", "..", "...", ".tmp-x", ".tmp", "a..b", "-", "_", "..a", "a.", "-.-")
DEEP = (64, 256, 600, 1000, 1100, 5000, 100_000)
DEEP_IN_LISTS = (64, 600, 1100)  # in a list of up to 1001 copies: up to 4.4 MB
HUGE_LENGTHS = (1025, 4097, 65_537, 300_000)
HUGE_COUNTS = (101, 1001, 50_000)
SPECIAL_TEXTS = (
    "", " ", "\x00", "a\x00b", "\ud800", "\udfff", "x\ud800y", "\U0001f600", "\u202e", "\ufeff",
    "\n", "\r\n", "\t", "%00", "%", "_", "'", '"', "\\", "../../etc/passwd", "..", ".", "/",
    "'; DROP TABLE entities; --", "${jndi:ldap://x}", "{{7*7}}", "<script>", "null", "NaN",
    "\u0130", "\u00df", "ǅ", "\u3000", "\x7f", "\x85", "\u2028",
)
NUMBERS = (
    Raw("1e400"), Raw("-1e400"), Raw("1e-400"), Raw("NaN"), Raw("Infinity"), Raw("-0"),
    Raw("1.5e308"), Raw("123456789012345678901234567890.5"), -1e19, 1e19, 10**30, -(10**30),
    2**63, -(2**63) - 1, 2**63 - 1, 2**31, -(2**31) - 1, 2**31 - 1, 0, -1, 0.1, 1e-320, 1e308,
)


@dataclass(frozen=True, repr=False)
class World:
    """What the fuzzed server holds, so that valid-ish values reach existing entities."""

    base_url: str
    ids: tuple[str, ...]
    uris: tuple[str, ...]
    schema: str
    recipe: str
    rearrangement: str
    features: tuple[str, ...]

    def __repr__(self) -> str:  # shown in Hypothesis's failing examples
        return f"World({self.base_url}, ids={self.ids})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def dumps(value: Any, ascii_only: bool = True) -> bytes:
    """JSON text of a value that may hold Raw fragments (also as keys)."""
    def encode(item: Any) -> str:
        if isinstance(item, Raw):
            return item.text
        if isinstance(item, dict):
            return "{" + ",".join(f"{encode(k)}:{encode(v)}" for k, v in item.items()) + "}"
        if isinstance(item, list):
            return "[" + ",".join(encode(v) for v in item) + "]"
        return json.dumps(item, ensure_ascii=ascii_only)
    return encode(value).encode("utf-8", "surrogatepass")


def deep(kind: str, depth: int) -> Raw:
    """A value nested `depth` levels: lists, objects, or both alternating."""
    if kind == "list":
        return Raw("[" * depth + "1" + "]" * depth)
    if kind == "object":
        return Raw('{"a":' * depth + "1" + "}" * depth)
    pairs = depth // 2
    return Raw('[{"a":' * pairs + "1" + "}]" * pairs)


def texts() -> st.SearchStrategy[str]:
    """Short strings heavy on the unusual: controls, surrogates, RTL marks, injections."""
    odd = st.characters(categories=["Cc", "Cs", "Cf", "Lo", "So", "Zs", "Mn", "Zl", "Zp"])
    return st.one_of(st.sampled_from(SPECIAL_TEXTS), st.text(odd, max_size=12), st.text(max_size=12))


def hostile() -> st.SearchStrategy[Any]:
    """A value that no member of the model accepts, or accepts only at its limits. Sizes are
    bounded by construction: one value is at most a few MB of JSON."""
    small = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                      texts(), st.builds(list), st.builds(dict))
    kinds = st.sampled_from(["list", "object", "mixed"])
    nested = st.builds(deep, kinds, st.sampled_from(DEEP))
    shallow = st.builds(deep, kinds, st.sampled_from(DEEP_IN_LISTS))
    return st.one_of(
        small,
        st.sampled_from(NUMBERS),
        st.lists(small, max_size=3),
        st.dictionaries(texts(), small, max_size=3),
        st.builds(lambda c, n: c * n, st.sampled_from(["a", "\x00", "é", "\U0001f600", "\ud800", " ", "\\"]),
                  st.sampled_from(HUGE_LENGTHS)),
        st.builds(lambda v, n: [v] * n, small, st.sampled_from(HUGE_COUNTS)),
        st.builds(lambda v, n: [v] * n, shallow, st.sampled_from(HUGE_COUNTS[:2])),
        st.builds(lambda v, n: {f"k{i}": v for i in range(n)}, small, st.sampled_from(HUGE_COUNTS)),
        nested,
    )


def tokens() -> st.SearchStrategy[str]:
    """NextToken values: base64 of JSON holding lists, dicts, huge ints, plus plain junk."""
    parts = st.one_of(st.sampled_from(NUMBERS), texts(), st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    documents = st.one_of(st.lists(parts, min_size=0, max_size=6), parts)
    encoded = st.builds(lambda doc, url: (base64.urlsafe_b64encode if url else base64.b64encode)(
        dumps(doc)).decode(), documents, st.booleans())
    return st.one_of(encoded, texts(), st.sampled_from(["=", "====", "a", "YQ", "!!", "ZZZZ" * 10_000]))


def _entity_ids(world: World) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(world.ids), st.sampled_from(WEIRD_IDS),
                     st.from_regex(r"[a-zA-Z0-9_.-]{1,64}", fullmatch=True))


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


def _documents(valid: str) -> st.SearchStrategy[str]:
    """A valid JSON document of the world, or junk: text, JSON of another shape."""
    junk = st.recursive(st.one_of(st.none(), st.integers(), texts()), _containers, max_leaves=6)
    return st.one_of(st.just(valid), texts(), junk.map(lambda v: dumps(v).decode("utf-8", "surrogatepass")))


def _comparator_values() -> st.SearchStrategy[str]:
    times = st.sampled_from(["1e400", "-1e400", "1e19", "-1e19", str(10**30), "nan", "inf", "-inf", "1e-400",
                             "0", "1700000000", "1700000000.5", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00",
                             "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", " 5 ", "1_000"])
    return st.one_of(times, texts(), st.sampled_from(["PENDING", "COMPLETED", "DELETED", "BINARY", "fuzz"]))


OVERRIDES_BY_SHAPE: dict[str, Callable[[World], st.SearchStrategy[Any]]] = {
    "EntityId": _entity_ids,
    "S3Url": lambda w: st.one_of(st.sampled_from(w.uris), st.from_regex(r"s3://fuzz(/[a-z0-9./_-]{0,20})?",
                                                                         fullmatch=True)),
    "DataSchema": lambda w: _documents(w.schema),
    "Recipe": lambda w: _documents(w.recipe),
    "DataRearrangement": lambda w: _documents(w.rearrangement),
    "VipURL": lambda w: st.just(w.base_url),
    "ComparatorValue": lambda w: _comparator_values(),
    "TrainingParameters": lambda w: st.dictionaries(
        st.sampled_from(["sgd.maxPasses", "sgd.shuffleType", "sgd.l1RegularizationAmount",
                         "sgd.l2RegularizationAmount", "sgd.maxMLModelSizeInBytes", "other"]),
        st.one_of(st.sampled_from(["1", "2", "auto", "none", "1e-4", "1E400", "-1", "1e19", str(10**30), "nan"]),
                  texts()), max_size=4),
    "Record": lambda w: st.dictionaries(st.one_of(st.sampled_from(w.features), texts()),
                                        st.one_of(st.sampled_from(["1", "0.5", "red", "good", "1e400", "nan"]),
                                                  texts()), max_size=6),
}
OVERRIDES_BY_MEMBER: dict[str, Callable[[World], st.SearchStrategy[Any]]] = {
    "NextToken": lambda w: tokens(),
}


def _tag_text(shape: Shape) -> st.SearchStrategy[str]:
    lo, hi = shape.metadata.get("min", 0), min(shape.metadata.get("max", 64), 64)
    alphabet = st.characters(categories=["L", "Z", "N"], include_characters="_.:/=+-@")
    return st.text(alphabet, min_size=lo, max_size=hi)


def valid_value(shape: Shape, world: World, member: str = "") -> st.SearchStrategy[Any]:
    """A value the model accepts (mostly), or the fuzz world's own where the shape names one."""
    if member in OVERRIDES_BY_MEMBER:
        return OVERRIDES_BY_MEMBER[member](world)
    if shape.name in OVERRIDES_BY_SHAPE:
        return OVERRIDES_BY_SHAPE[shape.name](world)
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        members = {name: valid_value(m, world, name) for name, m in shape.members.items()}
        required = set(shape.required_members) | ({"Key"} if shape.name == "Tag" else set())
        return st.fixed_dictionaries({k: v for k, v in members.items() if k in required},
                                     optional={k: v for k, v in members.items() if k not in required})
    if isinstance(shape, ListShape):
        return st.lists(valid_value(shape.member, world), max_size=min(shape.metadata.get("max", 4), 4))
    if isinstance(shape, MapShape):
        return st.dictionaries(valid_value(shape.key, world), valid_value(shape.value, world), max_size=4)
    if kind == "string":
        if shape.enum:
            return st.sampled_from(list(shape.enum))
        pattern = shape.metadata.get("pattern")
        if pattern is not None and r"\p{" in pattern:
            return _tag_text(shape)
        lo, hi = shape.metadata.get("min", 0), min(shape.metadata.get("max", 64), 64)
        if pattern is not None:
            return st.from_regex(pattern, fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
        return st.text(min_size=lo, max_size=max(lo, hi))
    if kind in ("integer", "long"):
        return st.integers(shape.metadata.get("min", -(2**31)), shape.metadata.get("max", 2**31 - 1))
    if kind in ("float", "double"):
        return st.one_of(st.floats(0, 1), st.floats(allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    raise ValueError(f"no strategy for shape {shape.name} ({kind})")


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of the containers and members of a value (huge lists and maps are not entered)."""
    found = [path]
    if isinstance(value, dict | list) and len(value) <= 20:
        for key, item in (value.items() if isinstance(value, dict) else enumerate(value)):
            found += _places(item, (*path, key))
    return found


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """A valid-ish value changed at 1-3 places (replaced, deleted, null, extra member)."""
    value = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_places(value)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "null", "extra"]))
        if not path:
            if action == "replace":
                value = draw(hostile())
            elif isinstance(value, dict):
                value[draw(texts())] = draw(hostile())
            continue
        parent, last = _at(value, path[:-1]), path[-1]
        if action == "replace":
            parent[last] = draw(hostile())
        elif action == "null":
            parent[last] = None
        elif action == "delete":
            del parent[last]
        else:
            target = parent[last]
            if isinstance(target, dict):
                target[draw(st.one_of(texts(), st.just(Raw('"\\ud800"'))))] = draw(hostile())
            elif isinstance(target, list):
                target.append(draw(hostile()))
            else:
                parent[last] = [target, draw(hostile())]
    return value


BROKEN_BODIES = (
    b"", b" ", b"\n", b"null", b"[]", b"[{}]", b"1", b"-1e400", b'"x"', b"true", b"{}{}", b"{} x",
    b'{"a":1,}', b"{'a':1}", b"\x00", b"{\x00}", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"{", b"}",
    b'{"a":', b'{"a"}', b"NaN", b"[" * 600 + b"]" * 600, b'{"a":' * 600 + b"1" + b"}" * 600,
    b'{"\\ud800":1}', b'{"a":"\\ud800"}', b'{"a":"\\u0000"}', b'{"a":"\\x"}', b"\x80\x81", b"{}" + b" " * 10_000,
)


@st.composite
def broken(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> bytes:
    """Valid-ish JSON cut short, with a byte replaced, or followed by garbage."""
    text = dumps(draw(base))
    how = draw(st.sampled_from(["cut", "byte", "tail"]))
    at = draw(st.integers(0, max(0, len(text) - 1)))
    if how == "cut":
        return text[:at]
    if how == "byte":
        return text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1:]
    return text + draw(st.sampled_from([b",", b"}", b"]", b"x", b"\x00", b'{"a":1}']))


@functools.cache
def bodies(operation: OperationModel, world: World) -> st.SearchStrategy[bytes]:
    """Request bodies for an operation: valid-ish, mutated, broken, or not an object at all."""
    base = valid_value(operation.input_shape, world) if operation.input_shape else st.just({})
    as_json = st.builds(dumps, st.one_of(base, mutated(base)), st.booleans())
    return st.one_of(as_json, as_json, as_json, broken(base), st.sampled_from(BROKEN_BODIES))
