"""Optional parts of OpenAML and the pip extras that install them.

An optional part imports its package through `require_extra`, so that a missing package ends
in one line naming the extra to install instead of an import traceback. A database URL names
its driver; `require_database_driver` checks that the driver a SQLAlchemy URL needs is there.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from openaml.ml.errors import install_hint

# SQLAlchemy dialect+driver -> (what it serves, the extra that installs it, the module it imports)
DATABASE_DRIVERS = {
    "postgresql+psycopg": ("PostgreSQL", "postgres", "psycopg"),
    "mysql+pymysql": ("MySQL", "mysql", "pymysql"),
}
SUPPORTED_DRIVERS = {name.partition("+")[0]: name for name in DATABASE_DRIVERS}


class MissingExtraError(ImportError):
    """An optional part is used without its extra installed; the message says what to install."""


def require_extra(extra: str, module: str, part: str | None = None) -> ModuleType:
    """Import `module`, which the pip extra `extra` installs; MissingExtraError if it is missing.

    `part` names what needs it in the message (default: the module)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{part or module} needs the '{extra}' extra, which is not installed "
            f"(no module {module!r}): {install_hint(extra)}"
        ) from None


def require_database_driver(url: str) -> None:
    """Check that the driver of a SQLAlchemy URL can be imported; MissingExtraError if not.

    A driver that an extra installs is named with its extra; for another missing driver (e.g.
    psycopg2, which `postgresql://` means) the message names the URL form to write instead.
    A malformed URL or an unknown dialect is left for SQLAlchemy to report where it is used.
    """
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError):
        return
    backend = parsed.get_backend_name()
    name = f"{backend}+{dialect.driver}"
    if name in DATABASE_DRIVERS:
        part, extra, module = DATABASE_DRIVERS[name]
        require_extra(extra, module, f"{part} ({name}://)")
        return
    try:
        dialect.import_dbapi()
    except ImportError as err:
        instead = SUPPORTED_DRIVERS.get(backend)
        advice = (f": write {instead}://... and install the '{DATABASE_DRIVERS[instead][1]}' extra, "
                  f"{install_hint(DATABASE_DRIVERS[instead][1])}" if instead else "")
        raise MissingExtraError(
            f"{parsed.drivername}:// URLs need the driver {dialect.driver}, which is not installed "
            f"({err}){advice}"
        ) from None
