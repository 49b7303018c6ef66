"""A data dir written before entities kept specs (tests/data/legacy: made by make_datadir.py with
the code of commit 2c2d7f9) opens on today's server: its records are migrated on start, every
entity answers as it did then, its endpoint predicts the same, new work builds on its entities,
and the job left PENDING then runs now."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from openaml.app import Application
from openaml.jobs.record_info import is_current, read_secret, read_spec
from openaml.jobs.specs import (
    SPEC_VERSION,
    BatchPredictionSpec,
    DataSourceSpec,
    EvaluationSpec,
    MLModelSpec,
    Source,
    StagedQuery,
)
from openaml.server.embedded import running_server
from openaml.service.migration import CHECKED_FACT, CLOCK_MARGIN_MS, LAYOUT_FACT, MigrationError, migrate
from openaml.store import EntityKind, open_store
from openaml.store.queries import Query
from openaml.store.tables import entities
from tests.api.conftest import make_client, wait_for
from tests.conftest import fresh_postgres_database

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy"
ANSWERS = json.loads((LEGACY / "answers.json").read_text())
SPECS = {EntityKind.DATASOURCE: DataSourceSpec, EntityKind.MLMODEL: MLModelSpec,
         EntityKind.EVALUATION: EvaluationSpec, EntityKind.BATCH_PREDICTION: BatchPredictionSpec}
# members that a job still to run, or the server's address, change
MOVING = {"Status", "LastUpdatedAt", "StartedAt", "FinishedAt", "ComputeTime", "SizeInBytes", "Recipe"}


def unpacked(folder: Path) -> Path:
    with tarfile.open(LEGACY / "datadir.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    return folder / "datadir"


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Application]:
    with running_server(data_dir=unpacked(tmp_path_factory.mktemp("legacy")), workers=2) as app:
        yield app


@pytest.fixture(scope="module")
def ml(legacy: Application) -> Any:
    return make_client(legacy.settings.base_url)


def get(ml: Any, entity_id: str) -> dict[str, Any]:
    kind = entity_id.split("-")[0]
    if kind == "ds":
        return ml.get_data_source(DataSourceId=entity_id, Verbose=True)
    if kind == "ml":
        return ml.get_ml_model(MLModelId=entity_id, Verbose=True)
    if kind == "ev":
        return ml.get_evaluation(EvaluationId=entity_id)
    return ml.get_batch_prediction(BatchPredictionId=entity_id)


def as_stored(answer: dict[str, Any], base_url: str, old_url: str) -> dict[str, Any]:
    """An answer as answers.json keeps it (times as text), the old server's address in it."""
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    return json.loads(json.dumps(answer, default=str).replace(base_url, old_url))


def test_every_record_has_its_spec_after_the_start(legacy: Application) -> None:
    records = [r for kind in EntityKind for r in legacy.context.store.find(Query(kind, include_deleted=True))]
    assert len(records) == 18
    for record in records:
        assert is_current(record.info), record.id
        assert read_spec(record, SPECS[record.kind])
    assert migrate(legacy.context.store) == 0  # done once


def test_each_entity_answers_as_before(legacy: Application, ml: Any) -> None:
    old_url = ANSWERS["entities"]["ds-train"]["LogUri"].split("/logs/")[0]
    for entity_id, before in ANSWERS["entities"].items():
        now = as_stored(get(ml, entity_id), legacy.settings.base_url, old_url)
        if entity_id == "ml-pending":  # it runs now
            now, before = ({k: v for k, v in d.items() if k not in MOVING} for d in (now, before))
        if entity_id == "ml-bin":  # its endpoint, mounted again on start, is READY anew
            del now["LastUpdatedAt"], before["LastUpdatedAt"]
        if entity_id == "ds-deleted":  # it keeps the results it had (api-behavior.md §5), which the
            # code that recorded the answers dropped on delete: those of ds-train, the same data
            train = ANSWERS["entities"]["ds-train"]
            before = {**before, "DataSizeInBytes": train["DataSizeInBytes"], "NumberOfFiles": train["NumberOfFiles"]}
        assert now == before, entity_id


def test_the_endpoint_predicts_as_before(ml: Any) -> None:
    url = wait_for(lambda: ml.get_ml_model(MLModelId="ml-bin"))["EndpointInfo"]["EndpointUrl"]
    for record, before in zip(ANSWERS["records"], ANSWERS["predictions"], strict=True):
        assert ml.predict(MLModelId="ml-bin", Record=record, PredictEndpoint=url)["Prediction"] == before


def test_the_job_pending_then_runs_now(ml: Any) -> None:
    done = wait_for(lambda: ml.get_ml_model(MLModelId="ml-pending", Verbose=True))
    assert done["Status"] == "COMPLETED", done.get("Message")
    assert "ALL_CATEGORICAL" in done["Recipe"] and done["TrainingParameters"]["sgd.maxPasses"] == "3"


def test_new_work_builds_on_the_migrated_entities(legacy: Application, ml: Any) -> None:
    ml.create_evaluation(EvaluationId="ev-again", MLModelId="ml-bin", EvaluationDataSourceId="ds-eval")
    ml.create_batch_prediction(BatchPredictionId="bp-again", MLModelId="ml-bin",
                               BatchPredictionDataSourceId="ds-batch", OutputUri="s3://legacy/again/")
    ml.create_ml_model(MLModelId="ml-on-rds", MLModelType="BINARY", TrainingDataSourceId="ds-rds")
    evaluation = wait_for(lambda: ml.get_evaluation(EvaluationId="ev-again"))
    assert evaluation["PerformanceMetrics"] == ANSWERS["entities"]["ev-bin"]["PerformanceMetrics"]
    assert wait_for(lambda: ml.get_batch_prediction(BatchPredictionId="bp-again"))["TotalRecordCount"] == 40
    result = legacy.context.objects.read_bytes("s3://legacy/again/batch-prediction/result/bp-again-unlabeled.csv.gz")
    rows, rows_before = (gzip.decompress(data).decode().splitlines()[1:]
                         for data in (result, bytes.fromhex(ANSWERS["result"])))
    # the same scores; the labels by the threshold set after bp-bin ran (0.4)
    assert [row.split(",")[1] for row in rows] == [row.split(",")[1] for row in rows_before]
    assert [row.split(",")[0] for row in rows] == [str(int(float(row.split(",")[1]) >= 0.4)) for row in rows]
    assert wait_for(lambda: ml.get_ml_model(MLModelId="ml-on-rds"))["Status"] == "COMPLETED"


def test_a_staged_datasource_still_to_run_keeps_its_query_and_password(tmp_path: Path) -> None:
    """A Redshift or RDS datasource left PENDING: its password moves to the secret, its query
    to the spec."""
    store_path = unpacked(tmp_path) / "openaml.db"
    with sqlite3.connect(store_path) as conn:
        info = json.loads(conn.execute("SELECT info FROM entities WHERE id = 'ds-rds'").fetchone()[0])
        conn.execute("UPDATE entities SET status = 'PENDING', info = ? WHERE id = 'ds-rds'",
                     (json.dumps({**info, "password": "postgres-pw"}),))
    store = open_store(f"sqlite:///{store_path}")
    try:
        assert migrate(store) == 18
        record = store.get(EntityKind.DATASOURCE, "ds-rds")
        assert record is not None
        spec = read_spec(record, DataSourceSpec)
        query = StagedQuery("orders-db", "legacy_orders", "postgres", "SELECT x, word, label FROM obs ORDER BY x",
                            "s3://legacy/staging/")
        assert (spec.source, spec.query, spec.data_uri, read_secret(record)) == (
            Source.RDS, query, "s3://legacy/staging/ds-rds/", "postgres-pw")
        failed = store.get(EntityKind.DATASOURCE, "ds-redshift-failed")  # its job will not run again
        assert failed is not None and read_secret(failed) is None
        assert read_spec(failed, DataSourceSpec).query == StagedQuery(
            "warehouse", "legacyorders", "postgres", "SELECT nope FROM obs", "s3://legacy/staging/")
    finally:
        store.close()


def test_inputs_refused_today_are_read_as_the_versions_before_read_them(tmp_path: Path) -> None:
    """Parameters in number forms that Python reads ("1_000", full-width digits) and a
    strategyParams that is not an object were taken before specs; their records stopped the
    upgraded server's start. A model still to train takes them as that version would."""
    store_path = unpacked(tmp_path) / "openaml.db"
    def seed_as_text(request: dict[str, Any]) -> None:
        rearrangement = json.loads(request["DataSpec"]["DataRearrangement"])
        rearrangement["splitting"]["strategyParams"] = "seed-1"
        request["DataSpec"]["DataRearrangement"] = json.dumps(rearrangement)

    changes = {"ml-bin": lambda r: r["Parameters"].update({"sgd.maxMLModelSizeInBytes": "1_000_000",
                                                           "sgd.l2RegularizationAmount": "1e-0_4"}),
               "ml-pending": lambda r: r["Parameters"].update({"sgd.maxPasses": "\uff12"}), "ds-eval": seed_as_text,
               "ml-reg": lambda r: r.update(Parameters={"sgd.l1RegularizationAmount": "\u0661e-4",
                                                        "sgd.maxPasses": "1_0"})}
    with sqlite3.connect(store_path) as conn:
        for entity_id, change in changes.items():
            request = json.loads(conn.execute("SELECT request FROM entities WHERE id = ?", (entity_id,)).fetchone()[0])
            change(request)
            conn.execute("UPDATE entities SET request = ? WHERE id = ?", (json.dumps(request), entity_id))
    store = open_store(f"sqlite:///{store_path}")
    try:
        assert migrate(store) == 18
        bin_model = read_spec(store.get(EntityKind.MLMODEL, "ml-bin"), MLModelSpec)
        assert bin_model.parameters.max_size == 1_000_000 and bin_model.parameters.l2 == 1e-4
        assert bin_model.given_parameters["sgd.maxMLModelSizeInBytes"] == "1_000_000"  # shown as given
        assert read_spec(store.get(EntityKind.MLMODEL, "ml-pending"), MLModelSpec).parameters.max_passes == 2
        evaluation = read_spec(store.get(EntityKind.DATASOURCE, "ds-eval"), DataSourceSpec).rearrangement
        assert evaluation.complement and evaluation.seed == ""  # its seed was dropped then too
    finally:
        store.close()
    # GetMLModel shows the parameters as they were given (it showed them rewritten: "1000000")
    with running_server(data_dir=store_path.parent) as app:
        ml = make_client(app.settings.base_url)
        shown = ml.get_ml_model(MLModelId="ml-bin")["TrainingParameters"]
        assert shown["sgd.maxMLModelSizeInBytes"] == "1_000_000" and shown["sgd.l2RegularizationAmount"] == "1e-0_4"
        shown = ml.get_ml_model(MLModelId="ml-reg")["TrainingParameters"]
        assert shown["sgd.l1RegularizationAmount"] == "\u0661e-4" and shown["sgd.maxPasses"] == "1_0"
        assert shown["sgd.l2RegularizationAmount"] == "0.0"  # L1 given: no L2


def test_a_store_of_a_newer_layout_is_refused_and_a_migrated_one_is_not_read_again(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{unpacked(tmp_path) / 'openaml.db'}")
    try:
        assert migrate(store) == 18 and store.get_fact(LAYOUT_FACT) == str(SPEC_VERSION)
        assert migrate(store) == 0
        store.set_fact(LAYOUT_FACT, str(SPEC_VERSION + 1))
        with pytest.raises(MigrationError, match="newer OpenAML"):
            migrate(store)
    finally:
        store.close()


def test_records_an_earlier_version_writes_after_the_upgrade_are_migrated_at_the_next_start(
        tmp_path: Path) -> None:
    """An earlier version started on a migrated store (a rollback) creates entities in its own
    layout; they were never migrated (the layout fact said all was done), and every Describe
    of their kind answered 500. Each start now looks at the records updated since the last."""
    store = open_store(f"sqlite:///{unpacked(tmp_path) / 'openaml.db'}")
    try:
        with store.engine.connect() as conn:  # rows as the earlier version wrote them
            legacy_rows = {row["id"]: dict(row) for row in conn.execute(sqlalchemy.select(entities)).mappings()}
        clock = [legacy_rows["ml-bin"]["last_updated_at"] + 86_400_000]
        assert migrate(store, lambda: clock[0]) == 18 and store.get_fact(CHECKED_FACT) == str(clock[0])

        def written_then(entity_id: str, new_id: str, at: int) -> None:
            with store.engine.begin() as conn:
                row = legacy_rows[entity_id] | {"id": new_id, "last_updated_at": at}
                conn.execute(sqlalchemy.insert(entities), [row])

        written_then("ml-bin", "ml-rollback", clock[0] + 1000)  # by the earlier version, after the upgrade
        written_then("ds-eval", "ds-rollback", clock[0] - CLOCK_MARGIN_MS // 2)  # its clock behind
        clock[0] += 60_000
        assert migrate(store, lambda: clock[0]) == 2
        assert read_spec(store.get(EntityKind.MLMODEL, "ml-rollback"), MLModelSpec).parameters.max_passes
        assert read_spec(store.get(EntityKind.DATASOURCE, "ds-rollback"), DataSourceSpec)
        assert migrate(store, lambda: clock[0]) == 0
        # a store migrated by a version that kept no CHECKED_FACT: every record is looked at once
        written_then("ml-bin", "ml-long-ago", 0)
        with store.engine.begin() as conn:
            conn.execute(sqlalchemy.delete(sqlalchemy.table("meta", sqlalchemy.column("key")))
                         .where(sqlalchemy.column("key") == CHECKED_FACT))
        assert migrate(store, lambda: clock[0]) == 1
    finally:
        store.close()


def test_a_postgresql_store_of_the_earlier_layout_is_migrated_once(tmp_path: Path) -> None:
    """The same records in a PostgreSQL store (rows copied from the legacy SQLite one): every
    record gets its spec under its row lock, and the store's layout fact is kept."""
    url = os.environ.get("OPENAML_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("OPENAML_TEST_POSTGRES_URL is not set (scripts/test.sh starts a PostgreSQL server)")
    legacy = sqlalchemy.create_engine(f"sqlite:///{unpacked(tmp_path) / 'openaml.db'}")
    with legacy.connect() as conn:
        rows = [dict(row) for row in conn.execute(sqlalchemy.select(entities)).mappings()]
    legacy.dispose()
    with fresh_postgres_database(url, "openaml_migration") as database:
        store = open_store(database)
        try:
            with store.engine.begin() as conn:
                conn.execute(sqlalchemy.insert(entities), rows)
            assert migrate(store) == 18 and migrate(store) == 0
            assert store.get_fact(LAYOUT_FACT) == str(SPEC_VERSION)
            for kind in EntityKind:
                for record in store.find(Query(kind, include_deleted=True)):
                    assert read_spec(record, SPECS[record.kind]), record.id
        finally:
            store.close()
