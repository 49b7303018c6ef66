"""Staging SQL query results as CSV objects, for Redshift and RDS datasources (data.md §10).

Which database a `ClusterIdentifier` (Redshift) or `InstanceIdentifier` (RDS) names is server
configuration, a TOML file of SQLAlchemy URL templates:

    # databases.toml
    [redshift.analytics-cluster]          # ClusterIdentifier
    url = "postgresql+psycopg://db.internal:5439/{database}?connect_timeout=10"

    [rds.orders-db]                       # InstanceIdentifier
    url = "mysql+pymysql://orders.internal:3306/{database}"

PostgreSQL and Redshift URLs need the `postgres` extra (psycopg), MySQL URLs the `mysql` extra
(PyMySQL); a query whose driver is missing fails with a message naming the extra to install.
`{database}` in the database part of the URL is replaced by the request's `DatabaseName`, and
the request's `Username`/`Password` replace any user and password in the URL. Passwords never
appear in messages (SQLAlchemy masks them in URLs; database messages are scrubbed too).

Staged CSV ([Choice] details): RFC 4180 quoting, LF line ends (the reader accepts LF and CR LF),
UTF-8, no header; a line end inside a value (LF or CR LF) is written as a space, as a record
cannot hold one (data.md §1: the reader would cut the record there); SQL NULL is an empty
field; booleans are `1`/`0` (the service's own binary form); integers and decimals in plain
notation, floats in shortest round-trip form (`NaN`, `Infinity` kept, and later judged invalid
numbers); dates and times ISO 8601, and as the database writes them where Python's types
cannot hold them (PostgreSQL's `infinity`, BC dates, year 10000, `24:00:00`); PostgreSQL's
intervals and JSON as it writes them; binary values as hex; other JSON values (MySQL's) as
compact JSON; anything else as `str()`.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import math
import re
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import URL, CursorResult, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from openaml.extras import MissingExtraError, require_database_driver
from openaml.ml.errors import InputError
from openaml.storage.objects import ObjectInfo, ObjectStore
from openaml.storage.uris import StorageError, folder_uri, join_uri

KINDS = ("redshift", "rds")
DATABASE_PLACEHOLDER = "{database}"
PART_BYTES = 100 * 1024 * 1024  # at most 100 MB per staged part (data.md §10.1)
FETCH_ROWS = 10_000
WATCH_SECONDS = 0.25  # between two looks at should_stop while a query runs
SCRUBBED_PART = 6  # characters of a password that are masked in a message, as the whole
_IDENTIFIER = re.compile(r"[a-z0-9-]{1,63}")
_PART_NAME = re.compile(r"part-\d{5}\.csv")
_AS_IS = frozenset({int, type(None)})
# the statements a query may begin with: they return rows (data.md §10 runs a SELECT)
ROW_STATEMENTS = frozenset({"select", "with", "values", "table"})
_DECLARED = re.compile(r'DECLARE "[^"]*" (?:NO SCROLL |SCROLL )?CURSOR (?:WITH(?:OUT)? HOLD )?FOR ')


class StagingError(InputError):
    """The query could not be staged; the message is the database's own where there is one."""


class NoRowsError(StagingError):
    """The query returned no rows: a datasource needs at least one record (data.md §7)."""


class QueryStopped(Exception):
    """The caller's should_stop answered True: the query was cancelled, nothing staged."""


class DatabaseConfigError(ValueError):
    """The database configuration file is malformed."""


@dataclass(frozen=True)
class DatabaseConfig:
    """URL templates by kind (`redshift`, `rds`) and identifier."""

    urls: dict[str, dict[str, str]] = field(default_factory=dict)

    def lookup(self, kind: str, identifier: str) -> str | None:
        """The URL template configured for a cluster or instance identifier, or None."""
        return self.urls.get(kind, {}).get(identifier)


def load_database_config(path: Path | None) -> DatabaseConfig:
    """Read the TOML configuration file; no file configured means no databases."""
    if path is None:
        return DatabaseConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise DatabaseConfigError(f"{path}: cannot read: {err.strerror}") from err
    return parse_database_config(text, str(path))


def parse_database_config(text: str, source: str = "database configuration") -> DatabaseConfig:
    """Parse and check the TOML text: `[KIND.IDENTIFIER] url = "..."` tables only."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise DatabaseConfigError(f"{source}: {err}") from err
    urls: dict[str, dict[str, str]] = {}
    for kind, entries in document.items():
        if kind not in KINDS or not isinstance(entries, dict):
            raise DatabaseConfigError(f"{source}: unknown section [{kind}] (expected {KINDS})")
        for identifier, entry in entries.items():
            where = f"{source}: [{kind}.{identifier}]"
            if not _IDENTIFIER.fullmatch(identifier):
                raise DatabaseConfigError(f"{where}: identifiers are 1-63 of [a-z0-9-]")
            if (
                not isinstance(entry, dict)
                or set(entry) != {"url"}
                or not isinstance(entry["url"], str)
            ):
                raise DatabaseConfigError(f"{where}: expected exactly one string key 'url'")
            try:
                make_url(entry["url"].replace(DATABASE_PLACEHOLDER, "database"))
            except ArgumentError as err:
                raise DatabaseConfigError(f"{where}: invalid SQLAlchemy URL: {err}") from err
            urls.setdefault(kind, {})[identifier] = entry["url"]
    return DatabaseConfig(urls)


def connection_url(template: str, database: str, username: str, password: str) -> URL:
    """The template with `{database}` filled in and the request's credentials set (except for
    SQLite, which has no users)."""
    if not database or database in (".", "..") or any(c in database for c in "/\\\x00"):
        raise StagingError(f"invalid database name {database!r}")
    try:
        url = make_url(template)
    except ArgumentError as err:
        raise StagingError(f"invalid database URL in the server configuration: {err}") from err
    if url.database:
        url = url.set(database=url.database.replace(DATABASE_PLACEHOLDER, database))
    if url.get_backend_name() == "sqlite":  # a file has no users; SQLite rejects credentials
        return url
    return url.set(username=username, password=password)


def staging_folder(staging_uri: str, datasource_id: str) -> str:
    """`<S3StagingLocation>/<DataSourceId>/` with exactly one `/` before the ID."""
    return folder_uri(staging_uri, datasource_id)


def stage_query(
    url: str,
    database: str,
    username: str,
    password: str,
    query: str,
    store: ObjectStore,
    staging_uri: str,
    datasource_id: str,
    max_part_bytes: int = PART_BYTES,
    should_stop: Callable[[], bool] | None = None,
) -> list[str]:
    """Run `query` and write its rows as header-less CSV parts; return the part URIs.

    Rows are streamed (server-side cursor where the driver has one, `fetchmany`), so memory
    stays bounded. Parts are `part-00000.csv`, `part-00001.csv`, ... of at most
    `max_part_bytes` each (a single larger row gets a part of its own). Parts left by an
    earlier run of the same datasource are removed, and so is an empty result's part.
    Raises StagingError with the database's message for connection, authentication and SQL
    errors, or naming the extra to install when the URL's driver is missing; NoRowsError for
    an empty result; StorageError when a part cannot be written. `should_stop` is asked while
    the query runs and between fetches: once it answers True, the query is cancelled where the
    driver can (PostgreSQL), and QueryStopped raised.
    """
    folder = staging_folder(staging_uri, datasource_id)
    statement = _first_word(query)
    if statement not in ROW_STATEMENTS:
        raise StagingError(f"only a query that returns rows ({', '.join(sorted(ROW_STATEMENTS)).upper()}) can be "
                           f"staged; this one begins with {statement.upper()[:40] or 'nothing'!r}")
    try:
        require_database_driver(url)
    except MissingExtraError as err:
        raise StagingError(str(err)) from None
    engine = None
    watch = _Watch(should_stop)
    try:
        engine = create_engine(
            connection_url(url, database, username, password), poolclass=NullPool
        )
        with engine.connect() as connection, watch.watching(connection.connection.driver_connection):
            _faithful_types(connection.connection.driver_connection)
            result = connection.execution_options(
                stream_results=True, max_row_buffer=FETCH_ROWS, no_parameters=True
            ).exec_driver_sql(query)
            if not result.returns_rows:
                raise StagingError("the query returned no rows (is it a SELECT statement?)")
            uris, rows = _write_parts(result, store, folder, max_part_bytes, watch.stopped)
    except DBAPIError as err:
        if watch.stopped():
            raise QueryStopped from None
        raise StagingError(_scrub(_unwrapped(str(err.orig).strip()), password)) from None
    except SQLAlchemyError as err:
        raise StagingError(_scrub(str(err), password)) from None
    finally:
        if engine is not None:
            engine.dispose()
    for stale in staged_parts(store, folder):
        if stale.uri not in uris:
            store.delete(stale.uri)
    if not rows:  # its one empty part goes too
        store.delete(uris[0])
        raise NoRowsError("the query returned no rows")
    return uris


def staged_parts(store: ObjectStore, folder: str) -> list[ObjectInfo]:
    """The parts staged in `folder` (`part-NNNNN.csv` right in it), by name: other objects put
    there, or another datasource's staged in a folder under it, are not its query's rows."""
    try:
        found = store.list(folder)
    except StorageError:
        return []
    return sorted((o for o in found if _PART_NAME.fullmatch(name := o.key.rpartition("/")[2])
                   and o.uri == join_uri(folder, name)), key=lambda o: o.key)


def _write_parts(
    result: CursorResult[Any], store: ObjectStore, folder: str, max_part_bytes: int,
    stopped: Callable[[], bool],
) -> tuple[list[str], int]:
    """The parts written, and the rows; QueryStopped once `stopped()` says so."""
    line = _LastLine()
    rows_to_csv = csv.writer(line, lineterminator="\n")
    uris = [join_uri(folder, "part-00000.csv")]
    part = store.open_write(uris[0])
    size = written = 0
    try:
        while rows := result.fetchmany(FETCH_ROWS):
            if stopped():
                raise QueryStopped
            chunk: list[bytes] = []
            written += len(rows)
            for row in rows:
                # csv writes int and None (as an empty field) itself; the rest is formatted,
                # and no field holds a line end
                rows_to_csv.writerow([value if type(value) in _AS_IS else _one_line(format_value(value))
                                      for value in row])
                data = line.text.encode("utf-8")
                if size and size + len(data) > max_part_bytes:
                    part.write(b"".join(chunk))
                    part.close()
                    chunk, size = [], 0
                    uris.append(join_uri(folder, f"part-{len(uris):05d}.csv"))
                    part = store.open_write(uris[-1])
                chunk.append(data)
                size += len(data)
            part.write(b"".join(chunk))
    except BaseException as err:
        part.__exit__(type(err), err, err.__traceback__)
        raise
    part.close()
    return uris, written


class _Watch:
    """While `watching` a connection, asks `should_stop` every WATCH_SECONDS on a thread of its
    own, and once it answers True cancels the statement running there (a query of many seconds
    held its job's worker and database session to its end after the datasource was deleted).
    psycopg's connections can be cancelled from another thread; PyMySQL's cannot (their
    fetches stop)."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self.should_stop = should_stop
        self._stopped = threading.Event()

    def stopped(self) -> bool:
        return self._stopped.is_set()

    @contextlib.contextmanager
    def watching(self, driver: Any) -> Iterator[None]:
        closed = threading.Event()
        if self.should_stop is not None:
            threading.Thread(target=self._watch, args=(self.should_stop, driver, closed), name="openaml-query-watch",
                             daemon=True).start()
        try:
            yield
        finally:
            closed.set()

    def _watch(self, should_stop: Callable[[], bool], driver: Any, closed: threading.Event) -> None:
        while not closed.wait(WATCH_SECONDS):
            if should_stop():
                self._stopped.set()
                cancel = getattr(driver, "cancel_safe", None) or getattr(driver, "cancel", None)
                if cancel is not None and not closed.is_set():
                    with contextlib.suppress(Exception):  # the query may have ended meanwhile
                        cancel()
                return


def _first_word(query: str) -> str:
    """The query's first word, lower case, past white space, comments and opening parentheses."""
    rest, before = query, None
    while rest != before:
        before, rest = rest, rest.lstrip().lstrip("(")
        if rest.startswith("--"):
            rest = rest.partition("\n")[2]
        elif rest.startswith("/*"):
            rest = rest.partition("*/")[2]
    found = re.match(r"[A-Za-z_]+", rest)
    return found.group(0).lower() if found else ""


def _unwrapped(message: str) -> str:
    """A PostgreSQL message about the query without the cursor the rows are streamed through:
    its quoted line said `DECLARE "c_7f40..." CURSOR FOR SELEC 1`, text the user never wrote,
    with the caret under it moved accordingly."""
    lines = message.split("\n")
    for i, line in enumerate(lines):
        found = _DECLARED.search(line)
        if found is None:
            continue
        lines[i] = line[:found.start()] + line[found.end():]
        caret = lines[i + 1] if i + 1 < len(lines) else ""
        if caret.strip() == "^" and caret.index("^") >= found.end():  # under the query's text
            lines[i + 1] = caret[:found.start()] + caret[found.end():]
        break
    return "\n".join(lines)


def _faithful_types(driver: Any) -> None:
    """On a PostgreSQL connection (psycopg), read as the database writes them the values that
    Python's types hold in part or not at all: dates and times out of Python's range (one
    `infinity` failed a whole datasource, the message blaming the query), intervals (a
    timedelta lost the months: `1 mon -30 days` read `0:00:00`) and JSON (its numbers went
    through doubles: 12345678901234567890.123 read 1.2345678901234567e+19)."""
    try:
        import psycopg
        from psycopg.types import datetime as times
        from psycopg.types.string import TextLoader
    except ImportError:  # no PostgreSQL driver: not a PostgreSQL connection
        return
    if not isinstance(driver, psycopg.Connection):
        return
    for name, loader in (("date", times.DateLoader), ("time", times.TimeLoader), ("timetz", times.TimetzLoader),
                         ("timestamp", times.TimestampLoader), ("timestamptz", times.TimestamptzLoader)):
        driver.adapters.register_loader(name, _or_text(loader))
    for name in ("interval", "json", "jsonb"):
        driver.adapters.register_loader(name, TextLoader)


@functools.cache
def _or_text(loader: type[Any]) -> type[Any]:
    """`loader`, giving the database's text where its Python type cannot hold the value."""
    import psycopg

    class OrText(loader):
        def load(self, data: Any) -> Any:
            try:
                return super().load(data)
            except (psycopg.DataError, ValueError, OverflowError):
                return bytes(data).decode("utf-8")

    return OrText


def _one_line(text: str) -> str:
    """The value with each line end (LF, CR LF) as a space: a record may not hold one."""
    return text.replace("\r\n", " ").replace("\n", " ") if "\n" in text else text


class _LastLine:
    """A file-like target for csv.writer that keeps the one line just written."""

    text = ""

    def write(self, text: str) -> int:
        self.text = text
        return len(text)


def format_value(value: object) -> str:
    """One SQL value as CSV field text (see the module docstring for the choices)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def _scrub(message: str, password: str) -> str:
    """The message without the password, nor any part of it of SCRUBBED_PART characters or
    more (a database cuts long lines of a query it quotes: a password in the query showed
    but for its last characters)."""
    if not password:
        return message
    shortest = min(len(password), SCRUBBED_PART)
    for length in range(len(password), shortest - 1, -1):
        for start in range(len(password) - length + 1):
            part = password[start:start + length]
            if part in message:
                message = message.replace(part, "********")
    return message
