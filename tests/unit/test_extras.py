"""Optional parts without their extra end in one line naming the extra (modules simulated missing)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from openaml.cli.main import main
from openaml.extras import DATABASE_DRIVERS, MissingExtraError, require_database_driver, require_extra
from openaml.storage import LocalObjectStore
from openaml.storage.databases import StagingError, stage_query

REPO = Path(__file__).resolve().parents[2]


def one_line_naming(message: str, extra: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert f"'{extra}' extra" in message
    assert f"pip install 'openaml[{extra}]'" in message
    assert f"in a checkout: .venv/bin/pip install -e '.[{extra}]'" in message  # pip on PATH is not the venv's


def test_require_extra_imports_a_present_module() -> None:
    assert require_extra("any", "json") is json


def test_require_extra_names_the_extra_of_a_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError) as raised:
        require_extra("postgres", "psycopg", "PostgreSQL")
    one_line_naming(str(raised.value), "postgres")
    assert str(raised.value).startswith("PostgreSQL needs")


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("postgresql+psycopg://user:secret@127.0.0.1:9/db", "psycopg", "postgres"),
    ("mysql+pymysql://user:secret@127.0.0.1:9/db", "pymysql", "mysql"),
])
def test_database_urls_name_their_extra(monkeypatch: pytest.MonkeyPatch, url: str, module: str,
                                        extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError) as raised:
        require_database_driver(url)
    one_line_naming(str(raised.value), extra)
    assert "secret" not in str(raised.value)


def test_a_driver_no_extra_installs_names_the_url_to_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    with pytest.raises(MissingExtraError) as raised:
        require_database_driver("mysql+mysqldb://h/db")
    assert "write mysql+pymysql://" in str(raised.value)
    one_line_naming(str(raised.value), "mysql")


def test_sqlite_and_unparsable_urls_need_no_extra() -> None:
    require_database_driver("sqlite:///data.db")
    require_database_driver("not a url")  # reported by SQLAlchemy where it is used


def test_every_extra_named_exists_in_pyproject() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for _, extra, module in DATABASE_DRIVERS.values():
        requirements = [re.split(r"[\[<>=]", r)[0].lower() for r in extras[extra]]
        assert module.lower() in requirements


def test_serve_with_postgresql_but_no_psycopg_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    result = CliRunner().invoke(main, [
        "serve", "--data-dir", str(tmp_path), "--port", "9",
        "--database-url", "postgresql+psycopg://openaml@127.0.0.1:9/openaml"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot start: PostgreSQL")
    one_line_naming(lines[0], "postgres")


def test_rds_mysql_staging_without_pymysql_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)
    store = LocalObjectStore(tmp_path)
    with pytest.raises(StagingError) as raised:
        stage_query("mysql+pymysql://orders.internal:3306/{database}", "orders", "admin", "pw",
                    "SELECT 1", store, "s3://staging/rds/", "ds-1")
    one_line_naming(str(raised.value), "mysql")
    assert store.list("s3://staging/") == []


def test_serve_on_dask_without_distributed_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = CliRunner().invoke(main, [
        "serve", "--data-dir", str(tmp_path), "--port", "9", "--executor", "dask",
        "--dask-scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot start: --executor dask needs the 'dask' extra")
    one_line_naming(lines[0], "dask")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("dask[distributed]") for r in extras["dask"])


def test_an_onnx_export_without_its_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """It named pip alone, which in a checkout is not the virtual environment's."""
    from openaml.ml import parse_parameters, train_model
    from openaml.ml.onnx_export import NotExportable, export_onnx
    from tests.unit.ml.conftest import make_batch, make_schema

    schema = make_schema([("x", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y")
    batch = make_batch({"x": [str(v) for v in range(20)], "y": [str(v % 2) for v in range(20)]})
    model = train_model("BINARY", schema, '{"outputs": ["x"]}', parse_parameters({}, "BINARY"), None,
                        lambda: iter([batch]))
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(NotExportable) as raised:
        export_onnx(model)
    one_line_naming(str(raised.value), "onnx")
