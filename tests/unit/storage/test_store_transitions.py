"""Store.update changes an entity's status only along TRANSITIONS (spec README, "Asynchronous
lifecycle"), whatever the caller asks."""

from itertools import product

import pytest

from openaml.store import EndpointStatus, EntityKind, EntityRecord, Status, open_store
from openaml.store.records import TRANSITIONS, IllegalTransition

ALLOWED = {  # written out again, not read from TRANSITIONS: the table under test
    (Status.PENDING, Status.INPROGRESS), (Status.PENDING, Status.FAILED),
    (Status.PENDING, Status.DELETED), (Status.INPROGRESS, Status.COMPLETED),
    (Status.INPROGRESS, Status.FAILED), (Status.INPROGRESS, Status.DELETED),
    (Status.INPROGRESS, Status.PENDING),  # recovery after a crash
    (Status.COMPLETED, Status.DELETED), (Status.FAILED, Status.DELETED),
    (Status.DELETED, Status.DELETED),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    return open_store(f"sqlite:///{tmp_path_factory.mktemp('transitions') / 'store.db'}")


def _entity(store, status: Status, name: str) -> str:
    assert store.insert(EntityRecord(kind=EntityKind.MLMODEL, id=name, status=status, created_at=1,
                                     last_updated_at=1, created_by="test", request={}))
    return name


def test_the_table_is_the_lifecycle():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("source", "target"), list(product(Status, Status)))
def test_a_status_changes_only_along_the_table(store, source: Status, target: Status):
    entity = _entity(store, source, f"free-{source.value}-{target.value}")
    changed = store.update(EntityKind.MLMODEL, entity, {"status": target, "last_updated_at": 2})
    assert changed is ((source, target) in ALLOWED)
    assert store.get(EntityKind.MLMODEL, entity).status is (target if changed else source)


@pytest.mark.parametrize(("source", "target"), list(product(Status, Status)))
def test_asking_for_a_change_the_table_forbids_is_a_bug(store, source: Status, target: Status):
    entity = _entity(store, source, f"asked-{source.value}-{target.value}")
    if (source, target) in ALLOWED:
        assert store.update(EntityKind.MLMODEL, entity, {"status": target}, only_if=[source])
    else:
        with pytest.raises(IllegalTransition, match=f"from {source.value} to {target.value}"):
            store.update(EntityKind.MLMODEL, entity, {"status": target}, only_if=[source])
        assert store.get(EntityKind.MLMODEL, entity).status is source


def test_changes_without_a_status_keep_their_only_if(store):
    entity = _entity(store, Status.COMPLETED, "renamed")
    assert not store.update(EntityKind.MLMODEL, entity, {"name": "x"}, only_if=[Status.PENDING])
    assert store.update(EntityKind.MLMODEL, entity, {"name": "x"}, only_if=[Status.COMPLETED])
    assert store.get(EntityKind.MLMODEL, entity).name == "x"


def test_only_if_still_narrows_an_allowed_change(store):
    entity = _entity(store, Status.INPROGRESS, "narrowed")
    assert not store.update(EntityKind.MLMODEL, entity, {"status": Status.FAILED},
                            only_if=[Status.PENDING])
    assert store.get(EntityKind.MLMODEL, entity).status is Status.INPROGRESS


def test_endpoint_statuses_are_read_back_as_members(store):
    entity = _entity(store, Status.COMPLETED, "endpoint")
    assert store.get(EntityKind.MLMODEL, entity).endpoint_status is None
    assert store.update(EntityKind.MLMODEL, entity, {"endpoint_status": EndpointStatus.UPDATING})
    assert not store.update(EntityKind.MLMODEL, entity, {"endpoint_status": EndpointStatus.READY},
                            only_if_endpoint=[EndpointStatus.READY])
    assert store.update(EntityKind.MLMODEL, entity, {"endpoint_status": EndpointStatus.READY},
                        only_if_endpoint=[EndpointStatus.UPDATING, EndpointStatus.READY])
    assert store.get(EntityKind.MLMODEL, entity).endpoint_status is EndpointStatus.READY
