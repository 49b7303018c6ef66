"""SQL staging: configuration, value formatting, CSV parts; SQLite always, PostgreSQL when set."""

from __future__ import annotations

import socket
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from openaml.storage import LocalObjectStore
from openaml.storage.databases import (
    DatabaseConfigError,
    NoRowsError,
    QueryStopped,
    StagingError,
    connection_url,
    format_value,
    load_database_config,
    parse_database_config,
    stage_query,
    staged_parts,
    staging_folder,
)

CONFIG = """
[redshift.analytics-1]
url = "postgresql+psycopg://admin:configpw@db.internal:5439/{database}?connect_timeout=10"

[rds.orders]
url = "mysql+pymysql://orders.internal:3306/{database}"
"""


def test_config_lookup(tmp_path: Path) -> None:
    path = tmp_path / "databases.toml"
    path.write_text(CONFIG)
    config = load_database_config(path)
    assert config.lookup("redshift", "analytics-1") == (
        "postgresql+psycopg://admin:configpw@db.internal:5439/{database}?connect_timeout=10"
    )
    assert config.lookup("rds", "orders") == "mysql+pymysql://orders.internal:3306/{database}"
    assert config.lookup("rds", "analytics-1") is None
    assert config.lookup("redshift", "nope") is None
    assert load_database_config(None).lookup("redshift", "analytics-1") is None


@pytest.mark.parametrize(
    ("text_", "problem"),
    [
        ("[mysql.x]\nurl = 'sqlite://'", "unknown section"),
        ("[redshift.Upper]\nurl = 'sqlite://'", "identifiers"),
        ("[redshift.x]\nhost = 'h'", "'url'"),
        ("[redshift.x]\nurl = 'sqlite://'\nextra = 1", "'url'"),
        ("[redshift.x]\nurl = 'not a url'", "invalid SQLAlchemy URL"),
        ("[redshift.x\nurl = 'sqlite://'", "databases.toml"),
    ],
)
def test_bad_config_is_reported(text_: str, problem: str) -> None:
    with pytest.raises(DatabaseConfigError, match=problem):
        parse_database_config(text_, "databases.toml")


def test_connection_url_fills_database_and_request_credentials() -> None:
    template = "postgresql+psycopg://admin:configpw@db.internal:5439/{database}?connect_timeout=10"
    url = connection_url(template, "sales", "alice", "s3cret-pw")
    assert (url.username, url.password, url.database) == ("alice", "s3cret-pw", "sales")
    assert url.query == {"connect_timeout": "10"}
    assert "s3cret-pw" not in str(url) and "s3cret-pw" not in repr(url)
    fixed = connection_url("postgresql+psycopg://h/fixed", "sales", "alice", "pw")
    assert fixed.database == "fixed"
    for bad in ["", ".", "..", "a/b", "a\\b", "a\x00b"]:
        with pytest.raises(StagingError, match="invalid database name"):
            connection_url(template, bad, "alice", "pw")


def test_staging_folder_has_exactly_one_slash() -> None:
    assert staging_folder("s3://b/stage", "ds-1") == "s3://b/stage/ds-1/"
    assert staging_folder("s3://b/stage/", "ds-1") == "s3://b/stage/ds-1/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "1"),
        (False, "0"),
        (-42, "-42"),
        (12345678901234567890, "12345678901234567890"),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (2.5e20, "2.5e+20"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (Decimal("1.50"), "1.50"),
        (Decimal("1E+2"), "100"),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
        (time(7, 8, 9), "07:08:09"),
        (b"\x00\xff", "00ff"),
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        ("text", "text"),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """A SQLite file `sales.db` with a few awkward values; returns the URL template."""
    connection = sqlite3.connect(tmp_path / "sales.db")
    connection.execute("CREATE TABLE t (id INTEGER, name TEXT, amount REAL, note TEXT)")
    connection.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        [(1, "plain", 1.5, None), (2, "with, comma", None, 'say "hi"'), (3, None, -0.25, "100%")],
    )
    connection.commit()
    connection.close()
    return f"sqlite:///{tmp_path}/{{database}}.db"


def test_sqlite_staging_writes_headerless_rfc4180(sqlite_db: str, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    uris = stage_query(
        sqlite_db,
        "sales",
        "u",
        "password1",
        "SELECT * FROM t ORDER BY id",
        store,
        "s3://staging/runs",
        "ds-1",
    )
    assert uris == ["s3://staging/runs/ds-1/part-00000.csv"]
    assert (
        store.read_bytes(uris[0]) == b'1,plain,1.5,\n2,"with, comma",,"say ""hi"""\n3,,-0.25,100%\n'
    )


def test_sqlite_staging_splits_parts_and_removes_stale_ones(sqlite_db: str, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    for i in range(5):
        store.write_bytes(f"s3://staging/ds-1/part-{i:05d}.csv", b"stale\n")
    store.write_bytes("s3://staging/ds-1/notes.txt", b"kept")
    query = "SELECT id, name FROM t ORDER BY id"
    # Lines are 8, 16 and 3 bytes: with 20 bytes a part, rows 1 and 3 cannot share with row 2.
    uris = stage_query(
        sqlite_db,
        "sales",
        "u",
        "password1",
        query,
        store,
        "s3://staging/",
        "ds-1",
        max_part_bytes=20,
    )
    assert uris == [f"s3://staging/ds-1/part-{i:05d}.csv" for i in range(2)]
    assert [store.read_bytes(u) for u in uris] == [b"1,plain\n", b'2,"with, comma"\n3,\n']
    assert [i.key for i in store.list("s3://staging/ds-1/")] == [
        "ds-1/notes.txt",
        "ds-1/part-00000.csv",
        "ds-1/part-00001.csv",
    ]


def test_sqlite_empty_result_is_said_so_and_stages_nothing(sqlite_db: str, tmp_path: Path) -> None:
    """It staged one empty part, and the datasource then FAILED saying that the data location
    was empty, as if the staging had gone wrong."""
    store = LocalObjectStore(tmp_path / "s3")
    store.write_bytes("s3://staging/x/ds-2/part-00003.csv", b"stale\n")
    with pytest.raises(NoRowsError, match="the query returned no rows"):
        stage_query(sqlite_db, "sales", "u", "password1", "SELECT * FROM t WHERE id > 99", store,
                    "s3://staging/x", "ds-2")
    assert store.list("s3://staging/x/") == []


def test_sqlite_line_ends_in_values_are_spaces(tmp_path: Path) -> None:
    """A record may not hold a line end (data.md §1): a staged value with one was a quoted
    field over several lines, which the reader cut into invalid records, and a line of it that
    read as a record of its own was taken (a record the query never returned)."""
    connection = sqlite3.connect(tmp_path / "lines.db")
    connection.execute("CREATE TABLE t (id INTEGER, note TEXT, label INTEGER)")
    connection.executemany("INSERT INTO t VALUES (?, ?, ?)", [
        (1, "a\n77,injected,1\nb", 0), (2, "cr\r\nlf", 0), (3, "lone\rcr", 1), (4, "plain", 1)])
    connection.commit()
    connection.close()
    store = LocalObjectStore(tmp_path / "s3")
    uris = stage_query(f"sqlite:///{tmp_path}/{{database}}.db", "lines", "u", "password1",
                       "SELECT * FROM t ORDER BY id", store, "s3://staging/", "ds-lines")
    assert store.read_bytes(uris[0]) == (b'1,"a 77,injected,1 b",0\n2,cr lf,0\n3,lone\rcr,1\n'
                                         b"4,plain,1\n")


def test_only_a_folders_own_parts_are_staged_parts(tmp_path: Path) -> None:
    """Objects put in a datasource's staging folder, and another datasource's parts staged in
    a folder under it, were read as its query's rows."""
    store = LocalObjectStore(tmp_path / "s3")
    for key in ("outer/part-00000.csv", "outer/part-00001.csv", "outer/notes.txt", "outer/inner/part-00000.csv",
                "outer/part-1.csv", "outer-2/part-00000.csv"):
        store.write_bytes(f"s3://staging/{key}", b"x\n")
    assert [o.key for o in staged_parts(store, "s3://staging/outer/")] == ["outer/part-00000.csv",
                                                                          "outer/part-00001.csv"]
    assert staged_parts(store, "s3://nobucket/outer/") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT * FROM t WHERE", "incomplete input"),
        ("SELECT * FROM missing_table", "no such table: missing_table"),
        ("SELEC * FROM t", "only a query that returns rows .* this one begins with 'SELEC'"),
        ("CREATE TABLE x (a INTEGER)", "only a query that returns rows .* this one begins with 'CREATE'"),
        ("/* c */ -- note\n DELETE FROM t", "this one begins with 'DELETE'"),
        ("( ( INSERT INTO t VALUES (1)))", "this one begins with 'INSERT'"),
    ],
)
def test_sqlite_errors_carry_the_database_message(
    sqlite_db: str, tmp_path: Path, query: str, message: str
) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    with pytest.raises(StagingError, match=message):
        stage_query(sqlite_db, "sales", "u", "password1", query, store, "s3://staging/", "ds-3")


def test_unknown_driver_is_a_staging_error(tmp_path: Path) -> None:
    with pytest.raises(StagingError):
        stage_query(
            "nosuchdb://h/{database}",
            "d",
            "u",
            "password1",
            "SELECT 1",
            LocalObjectStore(tmp_path),
            "s3://staging/",
            "ds-4",
        )


# ---------------------------------------------------------------- PostgreSQL (real server)


@dataclass(frozen=True)
class Postgres:
    template: str  # URL template with {database}
    database: str
    user: str
    password: str
    schema: str  # holds table t


@pytest.fixture(scope="module")
def postgres(postgres_url: str) -> Iterator[Postgres]:
    """A table of typed values in a throw-away schema of the test server."""
    url = make_url(postgres_url)
    engine = create_engine(url)
    schema = f"staging_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(
            text(
                f"CREATE TABLE {schema}.t (id int, name text, flag boolean, price numeric(8,2),"
                " ratio float8, day date, at timestamp)"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO {schema}.t VALUES"
                " (1, 'a, \"b\"', true, 12.50, 0.1, '2024-02-29', '2024-02-29 13:14:15'),"
                " (2, NULL, false, NULL, NULL, NULL, NULL),"
                " (3, '100%', NULL, -3.00, 1e-7, '1999-12-31', '1999-12-31 23:59:59.5')"
            )
        )
    template = url.set(database="DATABASE").render_as_string(hide_password=False)
    yield Postgres(
        template.replace("/DATABASE", "/{database}"),
        url.database or "postgres",
        url.username or "postgres",
        url.password or "",
        schema,
    )
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def _stage(
    pg: Postgres,
    query: str,
    store: LocalObjectStore,
    datasource_id: str,
    max_part_bytes: int = 100 * 1024 * 1024,
) -> list[str]:
    return stage_query(
        pg.template,
        pg.database,
        pg.user,
        pg.password,
        query,
        store,
        "s3://staging/pg",
        datasource_id,
        max_part_bytes,
    )


def test_postgres_staging_formats_typed_values(postgres: Postgres, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    query = f"SELECT * FROM {postgres.schema}.t WHERE name LIKE '%' OR name IS NULL ORDER BY id"
    uris = _stage(postgres, query, store, "ds-pg")
    assert uris == ["s3://staging/pg/ds-pg/part-00000.csv"]
    assert store.read_bytes(uris[0]).decode() == (
        '1,"a, ""b""",1,12.50,0.1,2024-02-29,2024-02-29T13:14:15\n'
        "2,,0,,,,\n"
        "3,100%,,-3.00,1e-07,1999-12-31,1999-12-31T23:59:59.500000\n"
    )


def test_postgres_values_python_cannot_hold_are_staged_as_the_database_writes_them(
        postgres: Postgres, tmp_path: Path) -> None:
    """One `infinity` timestamp failed the whole datasource ("timestamp too large (after year
    10K)", blamed on the query); intervals went through timedelta (months lost) and JSON
    through doubles. Values Python holds keep their ISO forms."""
    store = LocalObjectStore(tmp_path / "s3")
    query = ("SELECT 'infinity'::timestamp, '-infinity'::timestamptz, 'infinity'::date, '0044-03-15 BC'::date, "
             "'10000-01-01'::timestamp, '24:00:00'::time, '2024-01-02 03:04:05'::timestamp, '2024-01-02'::date, "
             "'1 mon'::interval - '30 days'::interval, '178000000 years'::interval, "
             "'{\"n\": 12345678901234567890.123456789}'::jsonb, '{\"a\":1, \"a\":2}'::json, '\"s\"'::json, "
             "'null'::json, NULL::json")
    uris = _stage(postgres, query, store, "ds-types")
    assert store.read_bytes(uris[0]).decode() == (
        "infinity,-infinity,infinity,0044-03-15 BC,10000-01-01 00:00:00,24:00:00,2024-01-02T03:04:05,2024-01-02,"
        '1 mon -30 days,178000000 years,"{""n"": 12345678901234567890.123456789}","{""a"":1, ""a"":2}",'
        '"""s""",null,\n')


def test_postgres_streams_many_rows_into_parts(postgres: Postgres, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "s3")
    query = "SELECT g, g * 2, 'row ' || g FROM generate_series(1, 30000) AS g"
    uris = _stage(postgres, query, store, "ds-many", max_part_bytes=200_000)
    # Oracle: pack the expected lines greedily into parts of at most 200,000 bytes.
    parts: list[bytes] = [b""]
    for g in range(1, 30001):
        line = f"{g},{2 * g},row {g}\n".encode()
        if len(parts[-1]) + len(line) > 200_000:
            parts.append(b"")
        parts[-1] += line
    assert len(parts) > 2
    assert uris == [f"s3://staging/pg/ds-many/part-{i:05d}.csv" for i in range(len(parts))]
    assert [store.read_bytes(uri) for uri in uris] == parts


def test_postgres_sql_error_message(postgres: Postgres, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    with pytest.raises(StagingError, match='relation "no_such_table" does not exist'):
        _stage(postgres, "SELECT * FROM no_such_table", store, "ds-err")
    with pytest.raises(StagingError, match="division by zero"):
        _stage(postgres, "SELECT 1/0", store, "ds-err")


def test_postgres_messages_quote_the_query_as_written(postgres: Postgres, tmp_path: Path) -> None:
    """The rows are streamed through a cursor: the message quoted `DECLARE "c_7f40..." CURSOR
    FOR SELECT ...`, text the user never wrote, its caret under that; statements that return
    no rows were all "syntax error at or near ..." (DECLARE takes none of them)."""
    store = LocalObjectStore(tmp_path)
    with pytest.raises(StagingError) as found:
        _stage(postgres, "SELECT nope", store, "ds-err")
    assert str(found.value) == 'column "nope" does not exist\nLINE 1: SELECT nope\n               ^'
    for statement in ("INSERT INTO t VALUES (1)", "SHOW work_mem", "  (  DELETE FROM t RETURNING *)"):
        with pytest.raises(StagingError, match="only a query that returns rows"):
            _stage(postgres, statement, store, "ds-err")
    assert _stage(postgres, "  -- rows\n(VALUES (1))", store, "ds-ok") == ["s3://staging/pg/ds-ok/part-00000.csv"]
    assert _stage(postgres, "( (SELECT 1))", store, "ds-ok") == ["s3://staging/pg/ds-ok/part-00000.csv"]


def test_postgres_bad_password(postgres: Postgres, postgres_url: str, tmp_path: Path) -> None:
    template, database = postgres.template, postgres.database
    role = f"openaml_test_{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password'"))
    try:
        stage_query(
            template,
            database,
            role,
            "right-password",
            "SELECT 1",
            LocalObjectStore(tmp_path),
            "s3://staging/",
            "ds-pw",
        )
        try:
            stage_query(
                template,
                database,
                role,
                "wrong-password",
                "SELECT 1",
                LocalObjectStore(tmp_path),
                "s3://staging/",
                "ds-pw",
            )
        except StagingError as err:
            assert f'password authentication failed for user "{role}"' in str(err)
            assert "wrong-password" not in str(err)
        else:
            pytest.skip("the server trusts every connection from 127.0.0.1 (pg_hba 'trust')")
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP ROLE {role}"))
        engine.dispose()


def test_postgres_unknown_host_and_closed_port(tmp_path: Path) -> None:
    with pytest.raises(StagingError, match=r"no-such-host\.invalid"):
        stage_query(
            "postgresql+psycopg://no-such-host.invalid:5432/{database}",
            "db",
            "u",
            "password1",
            "SELECT 1",
            LocalObjectStore(tmp_path),
            "s3://staging/",
            "ds-h",
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StagingError, match="Connection refused"):
        stage_query(
            f"postgresql+psycopg://127.0.0.1:{port}/{{database}}",
            "db",
            "u",
            "password1",
            "SELECT 1",
            LocalObjectStore(tmp_path),
            "s3://staging/",
            "ds-h",
        )


def test_a_password_is_masked_in_messages_also_in_part() -> None:
    """A database quoting a long query cuts its line: a password in the query showed but for
    its last characters ("SELECT 'MlUserPassw0r..."), past the whole-password masking."""
    from openaml.storage.databases import _scrub

    password = "MlUserPassw0rd!"
    message = ('invalid input syntax for type integer: "MlUserPassw0rd!"\n'
               "LINE 1: ...ECT 1 FROM (SELECT 'MlUserPassw0r...\n                             ^")
    scrubbed = _scrub(message, password)
    assert not any(password[i:i + 6] in scrubbed for i in range(len(password) - 5)), scrubbed
    assert scrubbed.startswith("invalid input syntax for type integer") and "LINE 1: ...ECT 1" in scrubbed
    assert _scrub("nothing of it here: pass", password) == "nothing of it here: pass"


def test_a_running_query_is_cancelled_once_asked_to_stop(postgres: Postgres, tmp_path: Path) -> None:
    """A deleted datasource's query ran to its end (tens of seconds of a worker and a database
    session): it is cancelled, and nothing is staged."""
    import time as clock

    store = LocalObjectStore(tmp_path / "s3")
    asked = clock.monotonic()
    with pytest.raises(QueryStopped):
        stage_query(postgres.template, postgres.database, postgres.user, postgres.password,
                    "SELECT 1 FROM pg_sleep(30)", store, "s3://staging/pg", "ds-stopped",
                    should_stop=lambda: clock.monotonic() > asked + 0.5)
    assert clock.monotonic() - asked < 5
    assert store.list("s3://staging/pg/") == []
