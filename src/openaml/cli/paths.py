"""The command line's path parameters."""

from __future__ import annotations

from typing import Any

import click


class NonEmptyPath(click.Path):
    """click.Path that refuses an empty value, which click would read as the current folder
    (`--data-dir ""` put a server's database and objects there)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty: give a path, or leave the option out for its default", param, ctx)
        return super().convert(value, param, ctx)
