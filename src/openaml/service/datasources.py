"""DataSource operations: create from S3 / Redshift / RDS, get, describe, update, delete."""

from __future__ import annotations

import hashlib
import secrets
import string
from typing import Any

from openaml.errors import InvalidInputException
from openaml.jobs.record_info import read_spec, secret_info, spec_info
from openaml.jobs.retention import release_data
from openaml.jobs.specs import DataSourceResult, DataSourceSpec, Source, StagedQuery
from openaml.ml.data import Rearrangement, RearrangementError, parse_rearrangement
from openaml.ml.recipes.recipe import BUILTIN_GROUPS
from openaml.ml.schema import SchemaError, parse_schema
from openaml.service import common
from openaml.service.context import RequestContext, ServiceContext
from openaml.storage import StorageError, parse_s3_uri
from openaml.store import EntityKind, EntityRecord

KIND = EntityKind.DATASOURCE
MAX_SCHEMA_LENGTH = 131071  # characters of an inline DataSchema (the service model's maximum)


class DataSourceOperations:
    ctx: ServiceContext

    def create_data_source_from_s3(self, context: RequestContext, DataSourceId: str, DataSpec: dict[str, Any],
                                   DataSourceName: str | None = None,
                                   ComputeStatistics: bool | None = None) -> dict[str, Any]:
        params = {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName, "DataSpec": DataSpec,
                  "ComputeStatistics": ComputeStatistics}

        def columns() -> dict[str, Any]:
            self._check_location(DataSpec["DataLocationS3"], "DataLocationS3")
            spec = DataSourceSpec(
                Source.S3, DataSpec["DataLocationS3"],
                self._schema(DataSpec.get("DataSchema"), DataSpec.get("DataSchemaLocationS3"),
                             "DataSchemaLocationS3"),
                _rearrangement(DataSpec.get("DataRearrangement")), bool(ComputeStatistics))
            return _columns(params, spec)

        return common.create(self.ctx, context, KIND, DataSourceId,
                             common.request_params(params, {"ComputeStatistics": False}), columns)

    def create_data_source_from_redshift(self, context: RequestContext,
                                         DataSourceId: str, DataSpec: dict[str, Any], RoleARN: str,
                                         DataSourceName: str | None = None,
                                         ComputeStatistics: bool | None = None) -> dict[str, Any]:
        params = {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName, "DataSpec": DataSpec,
                  "RoleARN": RoleARN, "ComputeStatistics": ComputeStatistics}
        return self._create_from_database(context, params, "DataSpec", Source.REDSHIFT, "ClusterIdentifier")

    def create_data_source_from_rds(self, context: RequestContext,
                                    DataSourceId: str, RDSData: dict[str, Any], RoleARN: str,
                                    DataSourceName: str | None = None,
                                    ComputeStatistics: bool | None = None) -> dict[str, Any]:
        params = {"DataSourceId": DataSourceId, "DataSourceName": DataSourceName, "RDSData": RDSData,
                  "RoleARN": RoleARN, "ComputeStatistics": ComputeStatistics}
        return self._create_from_database(context, params, "RDSData", Source.RDS, "InstanceIdentifier",
                                          data_pipeline_id=_pipeline_id())

    def get_data_source(self, context: RequestContext, DataSourceId: str, Verbose: bool = False) -> dict[str, Any]:
        return common.get_response(self.ctx, KIND, DataSourceId,
                                   lambda ctx, r: _to_api(ctx, r, verbose=Verbose))

    describe_data_sources = common.describe_operation(KIND, lambda ctx, r: _to_api(ctx, r, verbose=False))

    def update_data_source(self, context: RequestContext, DataSourceId: str, DataSourceName: str) -> dict[str, Any]:
        return common.rename(self.ctx, KIND, DataSourceId, DataSourceName)

    def delete_data_source(self, context: RequestContext, DataSourceId: str) -> dict[str, Any]:
        deleted = common.delete(self.ctx, KIND, DataSourceId)
        release_data(self.ctx.store, self.ctx.artifacts, DataSourceId)
        return deleted

    # -- helpers ----------------------------------------------------------------------------

    def _create_from_database(
        self, context: RequestContext, params: dict[str, Any], spec_member: str, source: Source,
        identifier: str, data_pipeline_id: str | None = None
    ) -> dict[str, Any]:
        """Redshift and RDS datasources: a query staged as CSV, then like an S3 datasource."""
        given = params[spec_member]
        request, password = _protect_password(params, spec_member)

        def columns() -> dict[str, Any]:
            database = given["DatabaseInformation"]
            self._check_database(source, database[identifier], identifier)
            location = self._staging_location(given["S3StagingLocation"], params["DataSourceId"])
            query = StagedQuery(database[identifier], database["DatabaseName"],
                                given["DatabaseCredentials"]["Username"], given["SelectSqlQuery"],
                                given["S3StagingLocation"])
            spec = DataSourceSpec(
                source, location,
                self._schema(given.get("DataSchema"), given.get("DataSchemaUri"), "DataSchemaUri"),
                _rearrangement(given.get("DataRearrangement")), bool(params["ComputeStatistics"]), query,
                data_pipeline_id)
            return _columns(params, spec, password)

        return common.create(self.ctx, context, KIND, params["DataSourceId"], request, columns)

    def _check_location(self, uri: str, member: str) -> None:
        try:
            parse_s3_uri(uri)
        except StorageError as exc:
            raise InvalidInputException(f"{member}: {exc}") from None

    def _staging_location(self, staging: str, datasource_id: str) -> str:
        self._check_location(staging, "S3StagingLocation")
        return f"{staging.rstrip('/')}/{datasource_id}/"

    def _check_database(self, source: Source, identifier: str, member: str) -> None:
        if self.ctx.databases.lookup(source.value, identifier) is None:
            raise InvalidInputException(
                f"{member} '{identifier}' has no database connection configured on this server "
                "(see the databases file, --databases-file)"
            )

    def _schema(self, inline: str | None, uri: str | None, member: str) -> str:
        """The schema given inline or at `uri`, validated, in its normalized form (Schema.to_json)."""
        if inline is None and uri is None:
            raise InvalidInputException(f"Give the data schema in DataSchema or {member}")
        if inline is None:
            assert uri is not None
            self._check_location(uri, member)
            inline = common.read_document(self.ctx, uri, member, MAX_SCHEMA_LENGTH, "a data schema")
        try:
            schema = parse_schema(inline)
        except SchemaError as exc:
            raise InvalidInputException(f"Invalid data schema: {exc}") from None
        hidden = [a.name for a in schema.input_attributes if a.name in BUILTIN_GROUPS]
        if hidden:  # (stored schemas are read as they are: a new datasource is refused)
            raise InvalidInputException(
                f"Invalid data schema: the attribute name {hidden[0]} is a recipe's built-in group, which "
                "a recipe reads instead of the attribute (recipes.md §2): rename the attribute")
        return schema.to_json()


def _columns(params: dict[str, Any], spec: DataSourceSpec, password: str | None = None) -> dict[str, Any]:
    """A new datasource's record columns; a staged query's password is kept apart, for its job."""
    info = spec_info(spec) | (secret_info(password) if password is not None else {})
    return {"name": common.name_param(params.get("DataSourceName")), "data_uri": spec.data_uri, "info": info}


def _rearrangement(text: str | None) -> Rearrangement:
    try:
        return parse_rearrangement(text)
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
    request, spec = record.request, read_spec(record, DataSourceSpec)
    result = common.job_result(record, DataSourceResult)
    given = request.get("DataSpec") or request.get("RDSData") or {}
    answer = common.common_fields(ctx, record, result)
    answer.update(
        DataLocationS3=spec.data_uri,
        DataRearrangement=given.get("DataRearrangement"),
        ComputeStatistics=spec.compute_statistics,
        DataSizeInBytes=result.data_size_in_bytes if result else None,
        NumberOfFiles=result.number_of_files if result else None,
        RoleARN=request.get("RoleARN"),
    )
    if not spec.compute_statistics:
        answer["ComputeTime"] = None
    query = spec.query
    if query is not None:
        metadata = {"DatabaseUserName": query.user_name, "SelectSqlQuery": query.query if verbose else None}
        if spec.source is Source.REDSHIFT:
            answer["RedshiftMetadata"] = common.compact({
                "RedshiftDatabase": {"DatabaseName": query.database_name, "ClusterIdentifier": query.identifier},
                **metadata})
        else:
            answer["RDSMetadata"] = common.compact({
                "Database": {"InstanceIdentifier": query.identifier, "DatabaseName": query.database_name},
                **metadata, "ResourceRole": given.get("ResourceRole"), "ServiceRole": given.get("ServiceRole"),
                "DataPipelineId": spec.data_pipeline_id})
    if verbose:
        answer["DataSourceSchema"] = spec.schema_json
    return answer
