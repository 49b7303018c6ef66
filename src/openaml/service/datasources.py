"""DataSource operations: create from S3 / Redshift / RDS, get, describe, update, delete."""

from __future__ import annotations

import hashlib
import secrets
import string
from typing import Any

from openaml.errors import InvalidInputException
from openaml.ml.data import RearrangementError, parse_rearrangement
from openaml.ml.schema import Schema, SchemaError, parse_schema
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.storage import StorageError, parse_s3_uri
from openaml.store import EntityKind, EntityRecord, Status

KIND = EntityKind.DATASOURCE
MAX_SCHEMA_LENGTH = 131071  # characters of an inline DataSchema (the service model's maximum)


class DataSourceOperations:
    ctx: ServiceContext

    def create_data_source_from_s3(self, context: RequestContext, DataSourceId: str, DataSpec: dict[str, Any],
                                   DataSourceName: str | None = None,
                                   ComputeStatistics: bool | None = None) -> dict[str, Any]:
        params = {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName, "DataSpec": DataSpec,
                  "ComputeStatistics": ComputeStatistics}
        spec = DataSpec
        self._check_location(spec["DataLocationS3"], "DataLocationS3")
        schema = self._schema(spec.get("DataSchema"), spec.get("DataSchemaLocationS3"),
                              "DataSchemaLocationS3")
        _check_rearrangement(spec.get("DataRearrangement"))
        request = common.request_params(params, {"ComputeStatistics": False})
        self._create(context, params, request, schema, spec["DataLocationS3"], source="s3")
        return {"DataSourceId": DataSourceId}

    def create_data_source_from_redshift(self, context: RequestContext,
                                         DataSourceId: str, DataSpec: dict[str, Any], RoleARN: str,
                                         DataSourceName: str | None = None,
                                         ComputeStatistics: bool | None = None) -> dict[str, Any]:
        params = {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName, "DataSpec": DataSpec,
                  "RoleARN": RoleARN, "ComputeStatistics": ComputeStatistics}
        return self._create_from_database(context, params, "DataSpec", "redshift", "ClusterIdentifier")

    def create_data_source_from_rds(self, context: RequestContext,
                                    DataSourceId: str, RDSData: dict[str, Any], RoleARN: str,
                                    DataSourceName: str | None = None,
                                    ComputeStatistics: bool | None = None) -> dict[str, Any]:
        params = {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName, "RDSData": RDSData,
                  "RoleARN": RoleARN, "ComputeStatistics": ComputeStatistics}
        return self._create_from_database(context, params, "RDSData", "rds", "InstanceIdentifier",
                                          data_pipeline_id=_pipeline_id())

    def get_data_source(self, context: RequestContext, DataSourceId: str, Verbose: bool = False) -> dict[str, Any]:
        return common.get_response(self.ctx, KIND, DataSourceId,
                                   lambda ctx, r: _to_api(ctx, r, verbose=Verbose))

    describe_data_sources = common.describe_operation(KIND, lambda ctx, r: _to_api(ctx, r, verbose=False))

    def update_data_source(self, context: RequestContext, DataSourceId: str, DataSourceName: str) -> dict[str, Any]:
        return common.rename(self.ctx, KIND, DataSourceId, DataSourceName)

    def delete_data_source(self, context: RequestContext, DataSourceId: str) -> dict[str, Any]:
        return common.delete(self.ctx, KIND, DataSourceId)

    # -- helpers ----------------------------------------------------------------------------

    def _create(
        self, context: RequestContext, params: dict[str, Any], request: dict[str, Any], schema: Schema,
        location: str,
        source: str, **info: Any,
    ) -> None:
        record = common.new_record(
            self.ctx, context, KIND, params["DataSourceId"], request,
            name=common.name_param(params.get("DataSourceName")),
            data_uri=location,
            info={"source": source, "schema": schema.to_json(), **info},
        )
        common.create_entity(self.ctx, record)

    def _create_from_database(
        self, context: RequestContext, params: dict[str, Any], spec_member: str, source: str,
        identifier: str, **info: Any
    ) -> dict[str, Any]:
        """Redshift and RDS datasources: a query staged as CSV, then like an S3 datasource."""
        spec = params[spec_member]
        self._check_database(source, spec["DatabaseInformation"][identifier], identifier)
        location = self._staging_location(spec["S3StagingLocation"], params["DataSourceId"])
        schema = self._schema(spec.get("DataSchema"), spec.get("DataSchemaUri"), "DataSchemaUri")
        _check_rearrangement(spec.get("DataRearrangement"))
        request, password = _protect_password(params, spec_member)
        self._create(context, params, request, schema, location, source=source, password=password, **info)
        return {"DataSourceId": params["DataSourceId"]}

    def _check_location(self, uri: str, member: str) -> None:
        try:
            parse_s3_uri(uri)
        except StorageError as exc:
            raise InvalidInputException(f"{member}: {exc}") from None

    def _staging_location(self, staging: str, datasource_id: str) -> str:
        self._check_location(staging, "S3StagingLocation")
        return f"{staging.rstrip('/')}/{datasource_id}/"

    def _check_database(self, kind: str, identifier: str, member: str) -> None:
        if self.ctx.databases.lookup(kind, identifier) is None:
            raise InvalidInputException(
                f"{member} '{identifier}' has no database connection configured on this server "
                "(see the databases file, --databases-file)"
            )

    def _schema(self, inline: str | None, uri: str | None, member: str) -> Schema:
        if inline is None and uri is None:
            raise InvalidInputException(f"Give the data schema in DataSchema or {member}")
        if inline is None:
            assert uri is not None
            self._check_location(uri, member)
            inline = common.read_document(self.ctx, uri, member, MAX_SCHEMA_LENGTH, "a data schema")
        try:
            return parse_schema(inline)
        except SchemaError as exc:
            raise InvalidInputException(f"Invalid data schema: {exc}") from None


def _check_rearrangement(text: str | None) -> None:
    try:
        parse_rearrangement(text)
    except RearrangementError as exc:
        raise InvalidInputException(f"Invalid DataRearrangement: {exc}") from None


def _protect_password(params: dict[str, Any], spec_member: str) -> tuple[dict[str, Any], str]:
    """The stored request keeps a digest of the password (enough for idempotency checks);
    the password itself is kept apart for the job, which erases it once the data is staged."""
    request = common.request_params(params, {"ComputeStatistics": False})
    spec = dict(request[spec_member])
    credentials = dict(spec["DatabaseCredentials"])
    password = credentials["Password"]
    credentials["Password"] = "sha256:" + hashlib.sha256(password.encode()).hexdigest()
    spec["DatabaseCredentials"] = credentials
    request[spec_member] = spec
    return request, password


def _pipeline_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "df-" + "".join(secrets.choice(alphabet) for _ in range(20))


def _to_api(ctx: ServiceContext, record: EntityRecord, verbose: bool) -> dict[str, Any]:
    request, info = record.request, record.info
    completed = record.status is Status.COMPLETED
    spec = request.get("DataSpec") or request.get("RDSData") or {}
    result = common.common_fields(ctx, record)
    result.update(
        DataLocationS3=record.data_uri,
        DataRearrangement=spec.get("DataRearrangement"),
        ComputeStatistics=bool(request.get("ComputeStatistics")),
        DataSizeInBytes=info.get("data_size_in_bytes") if completed else None,
        NumberOfFiles=info.get("number_of_files") if completed else None,
        RoleARN=request.get("RoleARN"),
    )
    if not request.get("ComputeStatistics"):
        result["ComputeTime"] = None
    source = info.get("source")
    query = spec.get("SelectSqlQuery") if verbose else None
    if source == "redshift":
        database = spec["DatabaseInformation"]
        result["RedshiftMetadata"] = common.compact({
            "RedshiftDatabase": {
                "DatabaseName": database["DatabaseName"],
                "ClusterIdentifier": database["ClusterIdentifier"],
            },
            "DatabaseUserName": spec["DatabaseCredentials"]["Username"],
            "SelectSqlQuery": query,
        })
    elif source == "rds":
        database = spec["DatabaseInformation"]
        result["RDSMetadata"] = common.compact({
            "Database": {
                "InstanceIdentifier": database["InstanceIdentifier"],
                "DatabaseName": database["DatabaseName"],
            },
            "DatabaseUserName": spec["DatabaseCredentials"]["Username"],
            "SelectSqlQuery": query,
            "ResourceRole": spec.get("ResourceRole"),
            "ServiceRole": spec.get("ServiceRole"),
            "DataPipelineId": info.get("data_pipeline_id"),
        })
    if verbose:
        result["DataSourceSchema"] = info.get("schema")
    return result
