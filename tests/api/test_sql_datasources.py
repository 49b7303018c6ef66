"""CreateDataSourceFromRDS / CreateDataSourceFromRedshift against a real PostgreSQL server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from botocore.exceptions import ClientError

from openaml.app import Application
from openaml.ml.data import read_materialized
from openaml.server.embedded import running_server
from openaml.store import EntityKind
from tests.api.conftest import error_code, make_client, wait_for

POSTGRES_URL = os.environ.get("OPENAML_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="OPENAML_TEST_POSTGRES_URL is not set "
    "(scripts/test.sh starts a PostgreSQL server and sets it)")

SCHEMA = (
    '{"version":"1.0","targetAttributeName":"label","dataFormat":"CSV",'
    '"dataFileContainsHeader":false,"attributes":['
    '{"attributeName":"x","attributeType":"NUMERIC"},'
    '{"attributeName":"word","attributeType":"CATEGORICAL"},'
    '{"attributeName":"label","attributeType":"BINARY"}]}'
)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"sales{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL or "", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine = sqlalchemy.create_engine((POSTGRES_URL or "").rsplit("/", 1)[0] + f"/{name}")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE obs (x float, word text, label boolean)"))
        conn.execute(sqlalchemy.text(
            "INSERT INTO obs SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'w, ' || (i % 4) END, "
            "i % 2 = 0 FROM generate_series(1, 250) AS i"))
    engine.dispose()
    yield name
    admin.dispose()


@pytest.fixture(scope="module")
def sql_server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[Application]:
    folder = tmp_path_factory.mktemp("sql")
    base = (POSTGRES_URL or "").rsplit("/", 1)[0]
    config = folder / "databases.toml"
    config.write_text(f'[redshift.warehouse]\nurl = "{base}/{{database}}"\n\n'
                      f'[rds.orders-db]\nurl = "{base}/{{database}}"\n')
    with running_server(data_dir=folder / "data", databases_file=config) as app:
        yield app


def credentials() -> dict[str, str]:
    url = sqlalchemy.make_url(POSTGRES_URL or "")
    return {"Username": url.username or "postgres", "Password": url.password or "not-needed"}


def test_redshift_datasource_stages_and_ingests(sql_server: Application, database: str) -> None:
    ml = make_client(sql_server.settings.base_url)
    ml.create_data_source_from_redshift(
        DataSourceId="rs-1", RoleARN="arn:aws:iam::000000000000:role/ml", ComputeStatistics=True,
        DataSpec={"DatabaseInformation": {"DatabaseName": database, "ClusterIdentifier": "warehouse"},
                  "SelectSqlQuery": "SELECT x, word, label FROM obs ORDER BY x",
                  "DatabaseCredentials": credentials(),
                  "S3StagingLocation": "s3://staging/redshift/",
                  "DataSchema": SCHEMA})
    done = wait_for(lambda: ml.get_data_source(DataSourceId="rs-1", Verbose=True))
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert done["DataLocationS3"] == "s3://staging/redshift/rs-1/"
    assert done["RedshiftMetadata"]["SelectSqlQuery"].startswith("SELECT x")
    assert done["RedshiftMetadata"]["RedshiftDatabase"]["ClusterIdentifier"] == "warehouse"
    assert done["RoleARN"].endswith("role/ml")
    assert "SelectSqlQuery" not in ml.get_data_source(DataSourceId="rs-1")["RedshiftMetadata"]
    staged = sql_server.context.objects.read_bytes("s3://staging/redshift/rs-1/part-00000.csv")
    lines = staged.decode().splitlines()
    assert len(lines) == 250
    assert lines[0] == '1.0,"w, 1",0'
    assert lines[2] == "3.0,,0"


def test_rds_datasource_and_errors(sql_server: Application, database: str) -> None:
    ml = make_client(sql_server.settings.base_url)
    spec: dict[str, Any] = {
        "DatabaseInformation": {"InstanceIdentifier": "orders-db", "DatabaseName": database},
        "SelectSqlQuery": "SELECT x, word, label FROM obs",
        "DatabaseCredentials": credentials(),
        "S3StagingLocation": "s3://staging/rds",
        "ResourceRole": "DataPipelineDefaultResourceRole", "ServiceRole": "DataPipelineDefaultRole",
        "SubnetId": "subnet-1", "SecurityGroupIds": ["sg-1"], "DataSchema": SCHEMA,
    }
    ml.create_data_source_from_rds(DataSourceId="rds-1", RDSData=spec, RoleARN="arn:aws:iam::0:role/r")
    done = wait_for(lambda: ml.get_data_source(DataSourceId="rds-1", Verbose=True))
    assert done["Status"] == "COMPLETED", done.get("Message")
    metadata = done["RDSMetadata"]
    assert metadata["Database"] == {"InstanceIdentifier": "orders-db", "DatabaseName": database}
    assert metadata["DataPipelineId"].startswith("df-") and len(metadata["DataPipelineId"]) == 23
    assert done["DataLocationS3"] == "s3://staging/rds/rds-1/"

    bad_sql = {**spec, "SelectSqlQuery": "SELECT nope FROM obs"}
    ml.create_data_source_from_rds(DataSourceId="rds-bad", RDSData=bad_sql, RoleARN="arn:aws:iam::0:role/r")
    failed = wait_for(lambda: ml.get_data_source(DataSourceId="rds-bad"))
    assert failed["Status"] == "FAILED"
    assert "nope" in failed["Message"]

    unknown = {**spec, "DatabaseInformation": {"InstanceIdentifier": "not-configured",
                                               "DatabaseName": database}}
    with pytest.raises(ClientError) as err:
        ml.create_data_source_from_rds(DataSourceId="rds-x", RDSData=unknown, RoleARN="arn:aws:iam::0:role/r")
    assert error_code(err) == "InvalidInputException"


def test_password_is_not_kept(sql_server: Application) -> None:
    record = sql_server.context.store.get(*_key("rds-1"))
    assert record is not None
    stored = str(record.request) + str(record.info)
    assert credentials()["Password"] not in stored
    assert "sha256:" in str(record.request)


def _key(entity_id: str) -> tuple[EntityKind, str]:
    return EntityKind.DATASOURCE, entity_id


def redshift(ml: Any, database: str, ds_id: str, query: str, **extra: Any) -> dict[str, Any]:
    """A Redshift datasource of `query` (staged under s3://staging/redshift/), once done."""
    spec = {"DatabaseInformation": {"DatabaseName": database, "ClusterIdentifier": "warehouse"},
            "SelectSqlQuery": query, "DatabaseCredentials": credentials(),
            "S3StagingLocation": "s3://staging/redshift/", "DataSchema": SCHEMA, **extra.pop("spec", {})}
    ml.create_data_source_from_redshift(DataSourceId=ds_id, RoleARN="arn:aws:iam::0:role/ml",
                                        ComputeStatistics=True, DataSpec=spec, **extra)
    return dict(wait_for(lambda: ml.get_data_source(DataSourceId=ds_id, Verbose=True)))


def records(app: Application, ds_id: str) -> int:
    """The records a datasource selected."""
    return int(app.context.artifacts.read_json("DataSource", ds_id, "ingest.json")["selectedRecords"])


def test_values_with_line_ends_stay_whole_records(sql_server: Application, database: str) -> None:
    """A text value with a line end was staged as a quoted field over several lines, which the
    reader cut: its row was lost, and a line of it that read as a record was taken (data.md §1
    lets no record hold a line end). Each is staged with spaces for its line ends."""
    ml = make_client(sql_server.settings.base_url)
    query = ("SELECT * FROM (VALUES (1.0, E'a\\n77,injected,1\\nb', false), (2.0, E'cr\\r\\nlf', true), "
             "(3.0, 'plain', false)) v(x, word, label)")
    done = redshift(ml, database, "rs-lines", query)
    assert done["Status"] == "COMPLETED", done.get("Message")
    report = sql_server.context.artifacts.read_json("DataSource", "rs-lines", "ingest.json")
    assert (report["recordsRead"], report["rejectedRecords"]) == (3, 0), report
    staged = sql_server.context.objects.read_bytes("s3://staging/redshift/rs-lines/part-00000.csv")
    assert staged == b'1.0,"a 77,injected,1 b",0\n2.0,cr lf,1\n3.0,plain,0\n'


def test_a_schema_with_a_header_reads_every_row(sql_server: Application, database: str) -> None:
    """data.md §10.1: the staged parts are read with dataFileContainsHeader false; a schema
    saying true lost the first row."""
    ml = make_client(sql_server.settings.base_url)
    done = redshift(ml, database, "rs-header", "SELECT x, word, label FROM obs ORDER BY x",
                    spec={"DataSchema": SCHEMA.replace('"dataFileContainsHeader":false',
                                                       '"dataFileContainsHeader":true')})
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert records(sql_server, "rs-header") == 250


def test_a_random_split_and_its_complement_partition_a_querys_rows(sql_server: Application,
                                                                    database: str) -> None:
    """data.md §5 hashes the file's key, which holds each datasource's id for staged parts:
    a split and its complement of one query shared records (131 of 198 in an outside test).
    The parts are keyed by their names."""
    ml = make_client(sql_server.settings.base_url)
    split = '{"splitting": {"percentBegin": 0, "percentEnd": 70, "strategy": "random", ' \
            '"strategyParams": {"randomSeed": "s1"}}}'
    query = "SELECT x, word, label FROM obs ORDER BY x"
    train = redshift(ml, database, "rs-train", query, spec={"DataRearrangement": split})
    held = redshift(ml, database, "rs-held", query, spec={"DataRearrangement": split.replace("}}}", "}, "
                                                                                            '"complement": true}}')})
    assert train["Status"] == held["Status"] == "COMPLETED"
    xs = {ds: [x for batch in read_materialized(sql_server.context.artifacts.open_read("DataSource", ds, "data.arrows"))
               for x in batch.column("x").to_pylist()] for ds in ("rs-train", "rs-held")}
    assert not set(xs["rs-train"]) & set(xs["rs-held"])
    assert len(xs["rs-train"]) + len(xs["rs-held"]) == len(set(xs["rs-train"]) | set(xs["rs-held"])) == 250


def test_only_the_querys_parts_are_read(sql_server: Application, database: str) -> None:
    """Objects already in the staging folder (a file put there, another datasource's parts
    staged in a folder under it) were read as the query's rows."""
    ml = make_client(sql_server.settings.base_url)
    sql_server.context.objects.write_bytes("s3://staging/redshift/rs-own/notes.txt", b"9,x,1\n8,y,0\n")
    inner = redshift(ml, database, "inner", "SELECT x, word, label FROM obs WHERE x <= 10",
                     spec={"S3StagingLocation": "s3://staging/redshift/rs-own"})
    assert inner["Status"] == "COMPLETED"
    done = redshift(ml, database, "rs-own", "SELECT x, word, label FROM obs WHERE x <= 3")
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert (records(sql_server, "rs-own"), done["NumberOfFiles"]) == (3, 1)


def test_an_empty_result_says_so(sql_server: Application, database: str) -> None:
    ml = make_client(sql_server.settings.base_url)
    done = redshift(ml, database, "rs-empty", "SELECT x, word, label FROM obs WHERE false")
    assert done["Status"] == "FAILED"
    assert done["Message"] == ("The query on 'warehouse' returned no rows: a datasource needs at least "
                               "one record"), done["Message"]


def test_deleting_a_datasource_cancels_its_query(sql_server: Application, database: str) -> None:
    """Its query went on to its end, holding a worker and a database session (a one-row
    datasource created after two deleted 25 s queries waited 23 s)."""
    ml = make_client(sql_server.settings.base_url)
    spec = {"DatabaseInformation": {"DatabaseName": database, "ClusterIdentifier": "warehouse"},
            "SelectSqlQuery": "SELECT x, word, label FROM obs, pg_sleep(60)", "DatabaseCredentials": credentials(),
            "S3StagingLocation": "s3://staging/redshift/", "DataSchema": SCHEMA}
    ml.create_data_source_from_redshift(DataSourceId="rs-slow", RoleARN="arn:aws:iam::0:role/ml", DataSpec=spec)
    started = time.monotonic()
    while ml.get_data_source(DataSourceId="rs-slow")["Status"] != "INPROGRESS":
        assert time.monotonic() - started < 30, "the datasource did not start"
        time.sleep(0.05)
    time.sleep(1.0)  # the query runs
    ml.delete_data_source(DataSourceId="rs-slow")
    deleted = time.monotonic()
    while sql_server.context.engine.queue_depth()["running"] and time.monotonic() - deleted < 20:
        time.sleep(0.1)
    assert time.monotonic() - deleted < 10, "the deleted datasource's query still holds its worker"
    engine = sqlalchemy.create_engine(POSTGRES_URL or "")
    with engine.connect() as conn:
        running = conn.execute(sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
        )).scalar()
    engine.dispose()
    assert running == 0
