"""A Redshift or RDS datasource's password is kept apart from its request, only while its job
may still need it: a deleted datasource's goes at once (its job will not run)."""

from __future__ import annotations

from pathlib import Path

from openaml.jobs.record_info import read_secret
from openaml.server.embedded import running_server
from openaml.store import EntityKind
from tests.api.conftest import make_client

SCHEMA = ('{"version":"1.0","targetAttributeName":"y","dataFormat":"CSV","attributes":['
          '{"attributeName":"x","attributeType":"NUMERIC"},{"attributeName":"y","attributeType":"BINARY"}]}')


def test_deleting_a_staged_datasource_erases_its_password(tmp_path: Path) -> None:
    config = tmp_path / "databases.toml"
    config.write_text('[rds.orders-db]\nurl = "postgresql+psycopg://127.0.0.1:1/{database}"\n')
    with running_server(data_dir=tmp_path / "data", databases_file=config) as app:
        app.context.engine.pause()  # the job does not run: the datasource stays PENDING
        ml = make_client(app.settings.base_url)
        ml.create_data_source_from_rds(DataSourceId="rds-gone", RoleARN="arn:aws:iam::1:role/r", RDSData={
            "DatabaseInformation": {"InstanceIdentifier": "orders-db", "DatabaseName": "orders"},
            "SelectSqlQuery": "SELECT x, y FROM t", "DatabaseCredentials": {
                "Username": "ml", "Password": "a-secret-password"},
            "S3StagingLocation": "s3://staging/", "ResourceRole": "r", "ServiceRole": "s",
            "SubnetId": "subnet-1", "SecurityGroupIds": ["sg-1"], "DataSchema": SCHEMA})

        def secret() -> str | None:
            record = app.context.store.get(EntityKind.DATASOURCE, "rds-gone")
            assert record is not None
            assert "a-secret-password" not in str(record.request)
            return read_secret(record)

        assert secret() == "a-secret-password"
        ml.delete_data_source(DataSourceId="rds-gone")
        assert secret() is None
