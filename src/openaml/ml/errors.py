"""The one exception type for input that cannot be used, whose message is meant for the user."""

from __future__ import annotations


class InputError(ValueError):
    """What a user gave (data, schema, recipe, parameters, records, references) cannot be used;
    the message says why, in the user's terms. A job that raises it ends FAILED with that
    message; any other exception is a bug: the job ends FAILED with "Internal error" and its
    log keeps the traceback."""


def install_hint(extra: str) -> str:
    """The command that installs an extra, from a package index and in a checkout."""
    return f"pip install 'openaml[{extra}]' (in a checkout: .venv/bin/pip install -e '.[{extra}]')"
