"""What a DELETED datasource keeps: its record, statistics, report and log, not its copy of the data.

A deleted entity stays describable (as in Amazon ML), and a deleted model's artifact stays for
`openaml export-model`; but no call reads a deleted datasource's records again. Their copy
(DATA_FILE, or the part files a partitioned read wrote) took 80 % of a soak's data dir: a team
that deleted everything after each workflow lost 1.2 GB in 40 minutes. The copy goes when the
datasource is deleted, unless a job still to run or running reads it (a training, evaluation or
batch prediction created before the deletion): then at the next start, which looks at every
DELETED datasource whose copy is left.
"""

from __future__ import annotations

import logging

from openaml.jobs.data_copy import PARTS_FILE, data_file_names
from openaml.storage import Artifacts
from openaml.store import EntityKind, Status, Store

log = logging.getLogger(__name__)

READERS = (EntityKind.MLMODEL, EntityKind.EVALUATION, EntityKind.BATCH_PREDICTION)
KIND = EntityKind.DATASOURCE.value


def read_by_jobs(store: Store) -> set[str]:
    """The datasources that jobs still to run or running read."""
    return {record.datasource_id for status in (Status.PENDING, Status.INPROGRESS)
            for record in store.with_status(READERS, status) if record.datasource_id}


def data_files(artifacts: Artifacts, datasource_id: str) -> list[str]:
    """The names of the datasource's copy of its records that exist: DATA_FILE, the part files
    that PARTS_FILE lists, and PARTS_FILE last (removed in this order, an interrupted removal
    leaves the list of what is left)."""
    names = [*data_file_names(artifacts, datasource_id), PARTS_FILE]
    return [name for name in dict.fromkeys(names) if artifacts.exists(KIND, datasource_id, name)]


def release_data(store: Store, artifacts: Artifacts, datasource_id: str, read: set[str] | None = None) -> bool:
    """Remove the copy of the records of a DELETED datasource that no job reads (`read`: those
    read, when known); whether it was removed. A failure is logged, not raised: the deletion
    stands, and the next start tries again."""
    try:
        record = store.get(EntityKind.DATASOURCE, datasource_id)
        if record is None or record.status is not Status.DELETED:
            return False
        if datasource_id in (read if read is not None else read_by_jobs(store)):
            return False
        for name in data_files(artifacts, datasource_id):
            artifacts.remove(KIND, datasource_id, name)
    except Exception:  # noqa: BLE001 - a store or object store that does not answer now
        log.warning("the data of deleted datasource %s could not be removed now", datasource_id, exc_info=True)
        return False
    return True


def release_all(store: Store, artifacts: Artifacts) -> int:
    """release_data of every DELETED datasource whose copy is left; how many were released."""
    try:  # deleted first: a job created before a deletion is then among those read
        left = [r.id for r in store.with_status([EntityKind.DATASOURCE], Status.DELETED) if data_files(artifacts, r.id)]
        read = read_by_jobs(store)
    except Exception:  # noqa: BLE001 - as release_data
        log.warning("the data of deleted datasources could not be looked for now", exc_info=True)
        return 0
    released = sum(release_data(store, artifacts, datasource_id, read) for datasource_id in left)
    if released:
        log.info("removed the data of %d deleted datasources", released)
    return released
