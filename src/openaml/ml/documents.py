"""JSON documents given as strings (schemas, recipes, DataRearrangement, class weights)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class _Refused(Exception):
    """What makes a parsed document unusable, said by the hooks while it is read."""


def load_json(text: str, what: str, error: type[ValueError], exact: bool = False, stored: bool = False) -> Any:
    """The JSON value in `text`; otherwise `error` saying why `what` cannot be read: not valid
    JSON, nested too deeply, a name given twice in one object (one of the two would be lost
    silently), a number of more digits than Python converts (4,300), a string escape of half
    a UTF-16 pair (\\ud800: no text can hold it, so the jobs that write it would fail), or of
    U+0000 (\\u0000, which no request string may hold either: PostgreSQL's text cannot).
    With `exact`, decimal numbers are read as Decimal, not as the nearest double; `stored`: a
    document kept by an earlier version, which took U+0000, is read as it was."""
    try:
        doc = json.loads(text, object_pairs_hook=_unique, parse_float=Decimal if exact else None)
    except _Refused as exc:
        raise error(f"{what} {exc}") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # "[[[[..." deeper than the interpreter's stack
        raise error(f"{what} nests arrays or objects too deeply") from None
    except (ValueError, ArithmeticError):  # int() past 4,300 digits; Decimal past its exponents
        raise error(f"{what} holds a number too long or too large to read (over 4,300 digits, or an "
                    "exponent past a billion)") from None
    problem = _text_problem(doc, nul_allowed=stored)
    if problem is not None:
        raise error(f"{what} {problem}")
    return doc


def load_object(text: str, what: str, error: type[ValueError], exact: bool = False,
                stored: bool = False) -> dict[str, Any]:
    """`load_json` of a JSON object; otherwise `error` saying that `what` is not one."""
    doc = load_json(text, what, error, exact, stored)
    if not isinstance(doc, dict):
        raise error(f"{what} must be a JSON object")
    return doc


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of these (name, value) pairs, each name once."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _Refused(f"names {json.dumps(name)} twice in one object")
        found[name] = value
    return found


def _text_problem(value: Any, nul_allowed: bool = False) -> str | None:
    """Why a string in `value` (keys too) is no text that names or values may hold (UTF-8
    cannot encode it, or it holds U+0000), or None; by a loop, not recursion (the document may
    nest as deep as the parser lets it)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not nul_allowed and "\x00" in item:
                return "holds the character U+0000 (\\u0000), which no name or value may hold"
            if not (item.isascii() or _encodes(item)):
                return "holds a string escape of half a UTF-16 pair (such as \\ud800), which is no character"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
