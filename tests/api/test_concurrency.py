"""Fifty clients at once on overlapping ids: no 5xx, nothing lost, doubled or over the limit.

Each of THREADS threads has its own boto3 client and runs OPS random operations (create,
get, list, add/delete/describe tags, rename, delete) on a few ids per entity family that every
thread shares. Before that, all threads race on the same ids at once: identical and differing
creates, adds of the same new tag keys, and adds that compete for the last free tags.
Afterwards each entity, name and tag is checked against what the clients were told.
A tag key belongs to one thread, so its final state is that thread's last successful call.

Runs against SQLite and PostgreSQL (OPENAML_TEST_POSTGRES_URL; skipped without it).
OPENAML_STRESS=full runs 50 x 400 operations instead of 50 x 20.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openaml.app import Application
from openaml.server.embedded import running_server
from tests.api.conftest import make_client
from tests.api.test_entities import CSV, SCHEMA
from tests.conftest import fresh_postgres_database

FULL = os.environ.get("OPENAML_STRESS") == "full"
THREADS = 50
OPS = 400 if FULL else 20
# Ids per family that all threads share.
POOL = {"DataSource": 16, "MLModel": 4, "Evaluation": 4} if FULL else {
    "DataSource": 6, "MLModel": 2, "Evaluation": 2}
KEYS_PER_THREAD = 6  # a thread's own tag keys on each entity: t<thread>-<0..5>
POSTGRES_URL = os.environ.get("OPENAML_TEST_POSTGRES_URL")

pytestmark = pytest.mark.timeout(3600 if FULL else 300)

# Error codes each operation may answer here; anything else (and any 5xx) is a failure.
ALLOWED = {
    "create": {"IdempotentParameterMismatchException"},
    "get": {"ResourceNotFoundException"},
    "list": set(),
    "rename": {"ResourceNotFoundException", "InvalidInputException"},  # unknown or DELETED
    "delete": {"ResourceNotFoundException"},
    "add_tags": {"ResourceNotFoundException", "TagLimitExceededException"},
    "delete_tags": {"ResourceNotFoundException"},
    "describe_tags": {"ResourceNotFoundException"},
}


@dataclass(frozen=True)
class Family:
    """One entity family as the client calls it."""

    kind: str  # the ResourceType of tag calls
    id_member: str
    name_member: str
    get: str
    update: str
    delete: str
    describe: str
    create: Callable[[Any, str, int], Any]  # (client, id, variant 0 or 1)
    variant_of: Callable[[dict[str, Any]], int]  # which variant a Get answer shows


BASE_DS = ["base-ds-0", "base-ds-1"]
BASE_MODEL = "base-m"
DATA_URIS = ["s3://stress-data/zero.csv", "s3://stress-data/one.csv"]

FAMILIES = [
    Family("DataSource", "DataSourceId", "DataSourceName", "get_data_source",
           "update_data_source", "delete_data_source", "describe_data_sources",
           lambda ml, i, v: ml.create_data_source_from_s3(
               DataSourceId=i, DataSpec={"DataLocationS3": DATA_URIS[v], "DataSchema": SCHEMA}),
           lambda got: DATA_URIS.index(got["DataLocationS3"])),
    Family("MLModel", "MLModelId", "MLModelName", "get_ml_model", "update_ml_model",
           "delete_ml_model", "describe_ml_models",
           lambda ml, i, v: ml.create_ml_model(MLModelId=i, MLModelType="BINARY",
                                               TrainingDataSourceId=BASE_DS[v]),
           lambda got: BASE_DS.index(got["TrainingDataSourceId"])),
    Family("Evaluation", "EvaluationId", "EvaluationName", "get_evaluation",
           "update_evaluation", "delete_evaluation", "describe_evaluations",
           lambda ml, i, v: ml.create_evaluation(EvaluationId=i, MLModelId=BASE_MODEL,
                                                 EvaluationDataSourceId=BASE_DS[v]),
           lambda got: BASE_DS.index(got["EvaluationDataSourceId"])),
]
BY_KIND = {f.kind: f for f in FAMILIES}


def pool_ids(family: Family) -> list[str]:
    return [f"{family.kind.lower()}-{n}" for n in range(POOL[family.kind])]


@dataclass
class Ledger:
    """What one thread was told. Tag keys are the thread's own, so their order is its order."""

    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    # (kind, id, variant, code), (kind, id, name, code), (kind, id, code): code "ok" or an error
    creates: list[tuple[str, str, int, str]] = field(default_factory=list)
    renames: list[tuple[str, str, str, str]] = field(default_factory=list)
    deletes: list[tuple[str, str, str]] = field(default_factory=list)
    # (kind, id, key) -> value if present (None: a tag without value), absent when deleted
    tags: dict[tuple[str, str, str], tuple[bool, str | None]] = field(default_factory=dict)
    most_tags_seen: int = 0

    def call(self, operation: str, method: Callable[..., Any], **params: Any) -> tuple[str, Any]:
        """Make one call; returns ("ok", answer) or (error code, None), counting the status."""
        try:
            answer = method(**params)
        except ClientError as exc:
            status = int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
            code = str(exc.response["Error"]["Code"])
            self.statuses[status] += 1
            if code not in ALLOWED[operation] or status >= 500:
                self.unexpected.append(f"{operation} {params}: {status} {code}: "
                                       f"{exc.response['Error'].get('Message')}")
            return code, None
        self.statuses[answer["ResponseMetadata"]["HTTPStatusCode"]] += 1
        return "ok", answer


class Client:
    """One thread's client, random source and ledger."""

    def __init__(self, ml: Any, number: int) -> None:
        self.ml, self.number = ml, number
        self.rng = random.Random(number)
        self.ledger = Ledger()

    def create(self, family: Family, entity_id: str, variant: int) -> None:
        code, _ = self.ledger.call("create", lambda: family.create(self.ml, entity_id, variant))
        self.ledger.creates.append((family.kind, entity_id, variant, code))

    def add_tags(self, family: Family, entity_id: str, tags: dict[str, str | None]) -> None:
        listed = [{"Key": k} if v is None else {"Key": k, "Value": v} for k, v in tags.items()]
        code, _ = self.ledger.call("add_tags", self.ml.add_tags, ResourceId=entity_id,
                                   ResourceType=family.kind, Tags=listed)
        if code == "ok":
            for key, value in tags.items():
                self.ledger.tags[(family.kind, entity_id, key)] = (True, value)

    def random_operation(self, step: int) -> None:
        rng = self.rng
        family = rng.choices(FAMILIES, weights=[5, 3, 2])[0]
        entity_id = rng.choice(pool_ids(family))
        ids = {family.id_member: entity_id}
        roll = rng.random()
        if roll < 0.15:
            self.create(family, entity_id, rng.randrange(2))
        elif roll < 0.27:
            self.ledger.call("get", getattr(self.ml, family.get), **ids)
        elif roll < 0.30:
            self.ledger.call("list", getattr(self.ml, family.describe), Limit=rng.randint(1, 20))
        elif roll < 0.55:
            own = rng.sample(range(KEYS_PER_THREAD), rng.randint(1, 4))
            value = None if rng.random() < 0.2 else f"v{step}"
            self.add_tags(family, entity_id, {f"t{self.number}-{k}": value for k in own})
        elif roll < 0.67:
            keys = [f"t{self.number}-{k}" for k in rng.sample(range(KEYS_PER_THREAD), 2)]
            code, _ = self.ledger.call("delete_tags", self.ml.delete_tags, ResourceId=entity_id,
                                       ResourceType=family.kind, TagKeys=keys)
            if code == "ok":
                for key in keys:
                    self.ledger.tags[(family.kind, entity_id, key)] = (False, None)
        elif roll < 0.77:
            code, answer = self.ledger.call("describe_tags", self.ml.describe_tags,
                                            ResourceId=entity_id, ResourceType=family.kind)
            if answer is not None:
                self.ledger.most_tags_seen = max(self.ledger.most_tags_seen, len(answer["Tags"]))
        elif roll < 0.97:
            name = f"name-{self.number}-{step}"
            code, _ = self.ledger.call("rename", getattr(self.ml, family.update),
                                       **ids, **{family.name_member: name})
            self.ledger.renames.append((family.kind, entity_id, name, code))
        else:
            code, _ = self.ledger.call("delete", getattr(self.ml, family.delete), **ids)
            self.ledger.deletes.append((family.kind, entity_id, code))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the server's default: a SQLite file in its data dir
        return
    if not POSTGRES_URL:
        pytest.skip("OPENAML_TEST_POSTGRES_URL is not set "
                    "(scripts/test.sh starts a PostgreSQL server and sets it)")
    with fresh_postgres_database(POSTGRES_URL, "openaml_stress") as url:
        yield url


@pytest.fixture(scope="module")
def stressed(database_url: str | None, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[Application, list[Ledger]]]:
    """A server after the whole run, and every thread's ledger."""
    data_dir: Path = tmp_path_factory.mktemp("stress")
    with running_server(data_dir=data_dir, database_url=database_url, workers=1) as app:
        for uri in DATA_URIS:
            app.context.objects.write_bytes(uri, CSV)
        setup = make_client(app.settings.base_url)
        for n, ds_id in enumerate(BASE_DS):
            setup.create_data_source_from_s3(
                DataSourceId=ds_id, ComputeStatistics=True,
                DataSpec={"DataLocationS3": DATA_URIS[n], "DataSchema": SCHEMA})
        setup.create_ml_model(MLModelId=BASE_MODEL, MLModelType="BINARY",
                              TrainingDataSourceId=BASE_DS[0])
        setup.add_tags(ResourceId=BASE_DS[1], ResourceType="DataSource",
                       Tags=[{"Key": f"old{i}"} for i in range(app.settings.tag_limit - 5)])
        clients = [Client(make_client(app.settings.base_url), n) for n in range(THREADS)]
        start = threading.Barrier(THREADS, timeout=120)  # a failed thread breaks it for all

        def run(client: Client) -> Ledger:
            start.wait()
            for family in FAMILIES:  # everyone creates the first id of each family at once
                client.create(family, pool_ids(family)[0], client.number % 2)
            start.wait()
            client.add_tags(BY_KIND["DataSource"], BASE_DS[0],
                            {f"same{i}": "shared" for i in range(5)})
            start.wait()
            client.add_tags(BY_KIND["DataSource"], BASE_DS[1],
                            {f"last-{client.number}-{i}": None for i in range(5)})
            for step in range(OPS):
                client.random_operation(step)
            return client.ledger

        with ThreadPoolExecutor(THREADS) as threads:
            ledgers = list(threads.map(run, clients))
        yield app, ledgers


def test_no_server_errors_and_only_expected_errors(
        stressed: tuple[Application, list[Ledger]]) -> None:
    _, ledgers = stressed
    statuses = sum((ledger.statuses for ledger in ledgers), Counter())
    assert sum(statuses.values()) >= THREADS * (OPS + 5)
    assert not [s for s in statuses if s >= 500], statuses
    unexpected = [line for ledger in ledgers for line in ledger.unexpected]
    assert not unexpected, "\n".join(unexpected[:20])


def test_racing_creates_have_one_winner_per_id(stressed: tuple[Application, list[Ledger]]) -> None:
    app, ledgers = stressed
    ml = make_client(app.settings.base_url)
    by_id: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for ledger in ledgers:
        for kind, entity_id, variant, code in ledger.creates:
            by_id.setdefault((kind, entity_id), []).append((variant, code))
    first = Counter(code for _, code in by_id[("DataSource", "datasource-0")])
    assert first["ok"] >= THREADS // 2 <= first["IdempotentParameterMismatchException"], first
    for (kind, entity_id), attempts in by_id.items():
        winners = {variant for variant, code in attempts if code == "ok"}
        assert len(winners) == 1, (kind, entity_id, attempts)
        winner = winners.pop()
        assert all(code == "IdempotentParameterMismatchException"
                   for variant, code in attempts if variant != winner), (kind, entity_id, attempts)
        family = BY_KIND[kind]
        got = getattr(ml, family.get)(**{family.id_member: entity_id})
        assert family.variant_of(got) == winner, (kind, entity_id)


def test_every_created_entity_is_listed_exactly_once(
        stressed: tuple[Application, list[Ledger]]) -> None:
    app, ledgers = stressed
    ml = make_client(app.settings.base_url)
    created = {(kind, entity_id) for ledger in ledgers
               for kind, entity_id, _, code in ledger.creates if code == "ok"}
    created |= {("DataSource", i) for i in BASE_DS} | {("MLModel", BASE_MODEL)}
    listed: Counter[tuple[str, str]] = Counter()
    for family in FAMILIES:
        for status_filter in ({}, {"FilterVariable": "Status", "EQ": "DELETED"}):
            pages = ml.get_paginator(family.describe).paginate(
                **status_filter, PaginationConfig={"PageSize": 7})
            for page in pages:
                listed.update((family.kind, r[family.id_member]) for r in page["Results"])
    assert set(listed) == created
    assert [key for key, count in listed.items() if count != 1] == []


def test_tags_are_neither_lost_nor_doubled_nor_over_the_limit(
        stressed: tuple[Application, list[Ledger]]) -> None:
    app, ledgers = stressed
    ml = make_client(app.settings.base_url)
    limit = app.settings.tag_limit
    assert max(ledger.most_tags_seen for ledger in ledgers) <= limit
    expected: dict[tuple[str, str], dict[str, str | None]] = {}
    for ledger in ledgers:
        for (kind, entity_id, key), (present, value) in ledger.tags.items():
            if present:
                expected.setdefault((kind, entity_id), {})[key] = value
    for family in FAMILIES:
        for entity_id in pool_ids(family):
            try:
                tags = ml.describe_tags(ResourceId=entity_id, ResourceType=family.kind)["Tags"]
            except ClientError:
                assert (family.kind, entity_id) not in expected
                continue
            keys = [t["Key"] for t in tags]
            assert len(keys) == len(set(keys)) <= limit, (family.kind, entity_id, keys)
            assert {t["Key"]: t.get("Value") for t in tags} == expected.get(
                (family.kind, entity_id), {}), (family.kind, entity_id)


def test_racing_adds_of_the_same_keys_and_of_the_last_free_tags(
        stressed: tuple[Application, list[Ledger]]) -> None:
    app, ledgers = stressed
    ml = make_client(app.settings.base_url)
    shared = ml.describe_tags(ResourceId=BASE_DS[0], ResourceType="DataSource")["Tags"]
    assert shared == [{"Key": f"same{i}", "Value": "shared"} for i in range(5)]
    assert all(ledger.tags.get(("DataSource", BASE_DS[0], "same0")) == (True, "shared")
               for ledger in ledgers)
    winners = [n for n, ledger in enumerate(ledgers)
               if ("DataSource", BASE_DS[1], f"last-{n}-0") in ledger.tags]
    assert len(winners) == 1
    last = ml.describe_tags(ResourceId=BASE_DS[1], ResourceType="DataSource")["Tags"]
    assert len(last) == app.settings.tag_limit
    assert [t["Key"] for t in last[-5:]] == [f"last-{winners[0]}-{i}" for i in range(5)]


def test_renames_end_with_a_written_name_and_deletes_stick(
        stressed: tuple[Application, list[Ledger]]) -> None:
    app, ledgers = stressed
    ml = make_client(app.settings.base_url)
    written: dict[tuple[str, str], set[str]] = {}
    deleted = {(kind, entity_id) for ledger in ledgers
               for kind, entity_id, code in ledger.deletes if code == "ok"}
    for ledger in ledgers:
        for kind, entity_id, name, code in ledger.renames:
            if code == "ok":
                written.setdefault((kind, entity_id), set()).add(name)
            elif code == "InvalidInputException":  # only a DELETED entity refuses a new name
                assert (kind, entity_id) in deleted, (kind, entity_id, name)
    assert written, "no rename succeeded: the run was too small to test renames"
    for family in FAMILIES:
        for entity_id in pool_ids(family):
            try:
                got = getattr(ml, family.get)(**{family.id_member: entity_id})
            except ClientError:
                assert (family.kind, entity_id) not in written
                continue
            names = written.get((family.kind, entity_id))
            if names:
                assert got.get("Name") in names, (family.kind, entity_id, got.get("Name"))
            else:
                assert "Name" not in got, (family.kind, entity_id)
            assert (got["Status"] == "DELETED") == ((family.kind, entity_id) in deleted)
