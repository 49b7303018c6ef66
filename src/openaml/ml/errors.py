"""The one exception type for input that cannot be used, whose message is meant for the user."""

from __future__ import annotations


class InputError(ValueError):
    """What a user gave (data, schema, recipe, parameters, records, references) cannot be used;
    the message says why, in the user's terms. A job that raises it ends FAILED with that
    message; any other exception is a bug: the job ends FAILED with "Internal error" and its
    log keeps the traceback."""
