"""Front ends sharing one store, and the leases by which each runs a job exactly once.

Any number of server processes ("front ends", on any machines) may share a store. Each
registers (`FrontEnd`) and beats: its row's `seen_at` is renewed every few seconds, and the
front ends seen within a lease's length are the live ones (the share of a rate limit each
enforces). A front end claims a PENDING job in one transaction with a lease on it, which its
heartbeats renew; it finishes the job only while it holds the lease (`Store.update(held_by=)`).

A job is *orphaned* when it is INPROGRESS without a lease held: none was ever written (a crash
of a version without leases), the lease expired (its front end died, or lost the store longer
than a lease), or its front end ran on this machine and its process is gone (a restart re-runs
the job at once instead of after the lease). Any front end puts an orphaned job back to
PENDING, in a transaction that checks the lease again, so a job claimed meanwhile stays with
its new owner. Lease times are the front ends' wall clocks: they must agree within a small part
of a lease (NTP does).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, select, update

from openaml.store.database import Store
from openaml.store.records import EntityKind, Status
from openaml.store.tables import entities, front_ends, job_leases

JobKey = tuple[EntityKind, str]


def machine() -> str:
    """This machine as front ends tell it apart: its host name, and on Linux its process-ID
    namespace (two containers of one host name do not see each other's processes)."""
    try:
        namespace = f"#{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        namespace = ""
    return f"{socket.gethostname()[:80]}{namespace}"


@dataclass(frozen=True)
class FrontEnd:
    """One server process: its id (unique, the owner of its leases) and where it runs."""

    id: str
    host: str
    pid: int
    runs_jobs: bool

    @classmethod
    def this_process(cls, runs_jobs: bool) -> FrontEnd:
        return cls(f"{socket.gethostname()[:36]}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
                   machine(), os.getpid(), runs_jobs)

    def gone(self) -> bool:
        """Whether it ran on this machine and its process has ended."""
        if self.host != machine():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # e.g. another user's process: it exists
            return False
        return False


class Leases:
    """The front ends of a store and the leases of their jobs; each method is one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- front ends -------------------------------------------------------------------------

    def beat(self, front_end: FrontEnd, now: int) -> None:
        """Record that `front_end` is alive at `now` (registering it on its first beat)."""
        with self.store.write() as conn:
            seen = conn.execute(update(front_ends).where(front_ends.c.id == front_end.id).values(seen_at=now))
            if seen.rowcount == 0:
                conn.execute(insert(front_ends).values(
                    id=front_end.id, host=front_end.host, pid=front_end.pid,
                    runs_jobs=front_end.runs_jobs, started_at=now, seen_at=now))

    def leave(self, front_end_id: str) -> None:
        with self.store.write() as conn:
            conn.execute(delete(front_ends).where(front_ends.c.id == front_end_id))

    def live(self, now: int, within_ms: int) -> list[FrontEnd]:
        """The front ends seen within `within_ms` of `now`."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(front_ends).where(front_ends.c.seen_at >= now - within_ms)
                                .order_by(front_ends.c.started_at, front_ends.c.id)).mappings()
            return [FrontEnd(r["id"], r["host"], r["pid"], bool(r["runs_jobs"])) for r in rows]

    def forget(self, before: int) -> int:
        """Remove the front ends not seen since `before`; how many."""
        with self.store.write() as conn:
            return conn.execute(delete(front_ends).where(front_ends.c.seen_at < before)).rowcount or 0

    # -- leases -----------------------------------------------------------------------------

    def claim(self, kind: EntityKind, entity_id: str, owner: str, changes: dict[str, object],
              expires_at: int) -> bool:
        """Move a PENDING job to INPROGRESS (with `changes`) under a lease of `owner` until
        `expires_at`; False when it is not PENDING any more (another front end took it)."""
        with self.store.write() as conn:
            moved = conn.execute(update(entities).where(
                entities.c.kind == kind.value, entities.c.id == entity_id,
                entities.c.status == Status.PENDING.value).values(status=Status.INPROGRESS.value, **changes))
            if moved.rowcount != 1:
                return False
            conn.execute(delete(job_leases).where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id))
            conn.execute(insert(job_leases).values(kind=kind.value, id=entity_id, owner=owner,
                                                   expires_at=expires_at))
            return True

    def renew(self, owner: str, expires_at: int) -> set[JobKey]:
        """Extend every lease of `owner` to `expires_at`; the jobs it still holds."""
        with self.store.write() as conn:
            conn.execute(update(job_leases).where(job_leases.c.owner == owner).values(expires_at=expires_at))
            rows = conn.execute(select(job_leases.c.kind, job_leases.c.id).where(job_leases.c.owner == owner))
            return {(EntityKind(kind), entity_id) for kind, entity_id in rows}

    def release(self, kind: EntityKind, entity_id: str, owner: str) -> None:
        """Give up `owner`'s lease on a job (ended, or left for another front end to run)."""
        with self.store.write() as conn:
            conn.execute(delete(job_leases).where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id,
                                                  job_leases.c.owner == owner))

    def held(self, owner: str, kind: EntityKind) -> set[str]:
        """Ids of the jobs of `kind` that `owner` holds."""
        with self.store.engine.connect() as conn:
            return set(conn.execute(select(job_leases.c.id).where(job_leases.c.owner == owner,
                                                                  job_leases.c.kind == kind.value)).scalars())

    def orphaned(self, kinds: Iterable[EntityKind], now: int) -> list[JobKey]:
        """INPROGRESS jobs of `kinds` that no live front end holds (see the module's notes)."""
        query = (select(entities.c.kind, entities.c.id, job_leases.c.expires_at, front_ends.c.host,
                        front_ends.c.pid, front_ends.c.id.label("front_end"))
                 .select_from(entities.outerjoin(job_leases, and_(job_leases.c.kind == entities.c.kind,
                                                                  job_leases.c.id == entities.c.id))
                              .outerjoin(front_ends, front_ends.c.id == job_leases.c.owner))
                 .where(entities.c.kind.in_([k.value for k in kinds]),
                        entities.c.status == Status.INPROGRESS.value)
                 .order_by(entities.c.created_at, entities.c.id))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(EntityKind(kind), entity_id) for kind, entity_id, expires_at, host, pid, front_end in rows
                if expires_at is None or expires_at < now
                or (front_end is not None and FrontEnd(front_end, host, pid, True).gone())]

    def requeue(self, kind: EntityKind, entity_id: str, now: int) -> bool:
        """Put an orphaned job back to PENDING (to run again from scratch); False when it is
        not orphaned any more (another front end requeued or claimed it meanwhile)."""
        with self.store.write() as conn:
            self.store.lock_entity(conn, kind, entity_id)
            lease = conn.execute(select(job_leases.c.expires_at, front_ends.c.id, front_ends.c.host,
                                        front_ends.c.pid)
                                 .select_from(job_leases.outerjoin(front_ends, front_ends.c.id == job_leases.c.owner))
                                 .where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id)).first()
            if lease is not None:
                expires_at, front_end, host, pid = lease
                if expires_at >= now and (front_end is None or not FrontEnd(front_end, host, pid, True).gone()):
                    return False
            moved = conn.execute(update(entities).where(
                entities.c.kind == kind.value, entities.c.id == entity_id,
                entities.c.status == Status.INPROGRESS.value).values(
                    status=Status.PENDING.value, last_updated_at=now))
            conn.execute(delete(job_leases).where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id))
            return moved.rowcount == 1

