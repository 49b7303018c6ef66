"""Text in the metadata store answers alike on SQLite and on PostgreSQL whatever the database's
collation: Describe* compares and sorts string variables by Unicode code points (api-behavior.md
§3.2), and text a store cannot keep (U+0000) is refused as InvalidInputException on every store
instead of answering 500 on PostgreSQL and being missed by a Prefix on SQLite (both found by an
outside test)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openaml.server.embedded import running_server
from openaml.store import EntityKind, EntityRecord, Status, open_store
from openaml.store.queries import Field, Query, sort_value
from tests.api.conftest import error_code, make_client
from tests.api.test_entities import CSV, SCHEMA
from tests.conftest import fresh_postgres_database

POSTGRES_URL = os.environ.get("OPENAML_TEST_POSTGRES_URL")
# a collation whose order is not the code points' (the official image's en_US.utf8 is another)
ICU_EN_US = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
NAMES = ["b", "é", "Z", "a", "B"]  # created in this order
BY_CODE_POINTS = ["B", "Z", "a", "b", "é"]


@pytest.fixture(params=["sqlite", "postgresql en-US"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a PostgreSQL database collating by ICU's en-US."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("OPENAML_TEST_POSTGRES_URL is not set (scripts/test.sh starts a PostgreSQL server)")
    with fresh_postgres_database(POSTGRES_URL, "openaml_text", ICU_EN_US) as url:
        yield url


@pytest.fixture
def ml(database_url: str, tmp_path: Path) -> Iterator[Any]:
    with running_server(data_dir=tmp_path / "data", database_url=database_url) as app:
        for name in NAMES:
            app.context.objects.write_bytes(f"s3://text/{name}.csv", CSV)
        yield make_client(app.settings.base_url)


def test_describe_compares_and_sorts_text_by_code_points(ml: Any) -> None:
    for i, name in enumerate(NAMES):
        ml.create_data_source_from_s3(DataSourceId=f"ds-{i}", DataSourceName=name,
                                      DataSpec={"DataLocationS3": f"s3://text/{name}.csv", "DataSchema": SCHEMA})
    for variable, shown in (("Name", lambda n: n), ("DataLocationS3", lambda n: f"s3://text/{n}.csv")):
        def found(variable: str = variable, **filters: Any) -> list[str]:
            results = ml.describe_data_sources(FilterVariable=variable, **filters)["Results"]
            return [r["Name"] for r in results]

        assert found() == BY_CODE_POINTS, variable
        assert found(SortOrder="dsc") == BY_CODE_POINTS[::-1], variable
        assert found(GT=shown("Z")) == ["a", "b", "é"], variable
        assert found(LT=shown("a")) == ["B", "Z"], variable
        assert found(GE=shown("b")) == ["b", "é"], variable
        assert found(LE=shown("B")) == ["B"], variable
        assert found(NE=shown("b")) == ["B", "Z", "a", "é"], variable
        paged = ml.get_paginator("describe_data_sources").paginate(
            FilterVariable=variable, PaginationConfig={"PageSize": 2})
        assert [r["Name"] for page in paged for r in page["Results"]] == BY_CODE_POINTS, variable


def test_ties_are_broken_by_id_in_code_point_order(database_url: str) -> None:
    """Records of one name created in the same millisecond follow their ids' code points, in
    both directions and across pages (the NextToken's position compares ids too)."""
    store = open_store(database_url)
    try:
        ids = ["tie-a", "TIE-A", "Tie-b", "tie-B"]
        for entity_id in ids:
            store.insert(EntityRecord(EntityKind.DATASOURCE, entity_id, Status.COMPLETED, 1_000, 1_000, "test",
                                      {}, name="tie"))
        ordered = sorted(ids)  # Python's str order is the code points'
        query = Query(EntityKind.DATASOURCE, Field.NAME)
        assert [r.id for r in store.find(query)] == ordered
        assert [r.id for r in store.find(Query(EntityKind.DATASOURCE, Field.NAME, descending=True))] == ordered[::-1]
        first = store.find(Query(EntityKind.DATASOURCE, Field.NAME, limit=2))
        last = first[-1]
        rest = store.find(Query(EntityKind.DATASOURCE, Field.NAME,
                                after=(sort_value(last, Field.NAME), last.created_at, last.id)))
        assert [r.id for r in first + rest] == ordered
    finally:
        store.close()


def refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as found:
        call(**params)
    assert error_code(found) == "InvalidInputException", found.value.response
    message = str(found.value.response["Error"]["Message"])
    assert "U+0000" in message and message.startswith("1 validation error detected"), message
    return message


def test_nul_is_refused_wherever_a_request_gives_text_a_store_keeps_or_compares(ml: Any) -> None:
    spec = {"DataLocationS3": "s3://text/a.csv", "DataSchema": SCHEMA}
    refused(ml.create_data_source_from_s3, DataSourceId="ds-nul", DataSourceName="a\x00b", DataSpec=spec)
    with pytest.raises(ClientError) as missing:
        ml.get_data_source(DataSourceId="ds-nul")
    assert error_code(missing) == "ResourceNotFoundException"  # nothing was kept
    ml.create_data_source_from_s3(DataSourceId="ds-ok", DataSourceName="a", DataSpec=spec)
    refused(ml.update_data_source, DataSourceId="ds-ok", DataSourceName="a\x00")
    refused(ml.create_data_source_from_s3, DataSourceId="ds-nul2",
            DataSpec={**spec, "DataRearrangement": '{"splitting": {"percentBegin": 0, "percentEnd": 70}}\x00'})
    refused(ml.create_ml_model, MLModelId="ml-nul", MLModelName="m\x00", MLModelType="BINARY",
            TrainingDataSourceId="ds-ok")
    refused(ml.create_ml_model, MLModelId="ml-nul", MLModelType="BINARY", TrainingDataSourceId="ds-ok",
            Parameters={"sgd.maxPasses": "1\x00"})
    refused(ml.create_evaluation, EvaluationId="ev-nul", EvaluationName="\x00", MLModelId="ml-x",
            EvaluationDataSourceId="ds-ok")
    refused(ml.create_batch_prediction, BatchPredictionId="bp-nul", BatchPredictionName="b\x00", MLModelId="ml-x",
            BatchPredictionDataSourceId="ds-ok", OutputUri="s3://text/out/")
    for comparator in ("EQ", "NE", "GT", "LT", "Prefix"):
        refused(ml.describe_data_sources, FilterVariable="Name", **{comparator: "a\x00"})
    refused(ml.describe_ml_models, FilterVariable="TrainingDataSourceId", EQ="ds\x00")
    # a NextToken is opaque: one whose position holds U+0000 (forged) is not valid either
    ml.create_data_source_from_s3(DataSourceId="ds-ok2", DataSourceName="b", DataSpec=spec)
    token = ml.describe_data_sources(FilterVariable="Name", Limit=1)["NextToken"]
    value, created, entity_id, query = json.loads(base64.urlsafe_b64decode(token))
    forged = base64.urlsafe_b64encode(json.dumps([value + "\x00", created, entity_id, query]).encode()).decode()
    with pytest.raises(ClientError) as bad_token:
        ml.describe_data_sources(FilterVariable="Name", Limit=1, NextToken=forged)
    assert error_code(bad_token) == "InvalidInputException"
    assert bad_token.value.response["Error"]["Message"] == "NextToken is not valid"
    assert [r["Name"] for r in ml.describe_data_sources(FilterVariable="Name")["Results"]] == ["a", "b"]
