"""JSON documents given as strings (schemas, recipes, DataRearrangement)."""

from __future__ import annotations

import json
from typing import Any


def load_object(text: str, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The JSON object in `text`; otherwise `error` saying that `what` is not valid JSON or
    not a JSON object."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # "[[[[..." deeper than the interpreter's stack
        raise error(f"{what} nests arrays or objects too deeply") from None
    if not isinstance(doc, dict):
        raise error(f"{what} must be a JSON object")
    return doc
