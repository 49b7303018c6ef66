"""Front ends sharing one store, and the leases by which each job runs exactly once.

Any number of server processes ("front ends", on any machines) may share a store. Each
registers (`FrontEnd`) and beats: its row's `seen_at` is renewed every second or so, and the
front ends seen lately are the live ones (the share of a rate limit each enforces). A front end
claims a PENDING job in one transaction with a lease on it: its own id, a token new for this
run, and an expiry that its heartbeats push back. A run writes the job's progress and end only
while the lease holds its token (`Store.update(held_by=token)`), so a run that lost its lease
(another run took the job over) can never overwrite the new run's work. A heartbeat renews a
lease only before it expires: once expired, it is lost for good.

A job is *orphaned* when it is INPROGRESS without a lease held: none was ever written (a crash
of a version without leases), the lease expired (its front end died, or lost the store longer
than a lease), or its front end ran on this machine and its process is gone (a restart re-runs
the job at once instead of after the lease). Any front end puts an orphaned job back to
PENDING, in a transaction that reads the lease again, locked, so that a job claimed or renewed
meanwhile stays with its run. Lease times are the front ends' wall clocks: they must agree
within a small part of a lease (NTP does).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, and_, delete, insert, select, update

from openaml.store.database import Store
from openaml.store.records import EntityKind, Status
from openaml.store.tables import entities, front_ends, job_leases

JobKey = tuple[EntityKind, str]


def machine() -> str:
    """This machine (or container) as front ends tell it apart: its host name, its boot (two
    machines of one name do not share a boot id), and on Linux its process-ID namespace."""
    parts = [socket.gethostname()[:64]]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(Path(path).read_text().strip()[:36] if "random" in path else str(os.stat(path).st_ino))
        except OSError:
            pass
    return "#".join(parts)


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, Linux), to tell it from a later
    process given the same pid; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def new_token() -> str:
    """A claim's token: unique to one run of one job."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class FrontEnd:
    """One server process: its id (the owner of its leases) and where it runs."""

    id: str
    host: str
    pid: int
    runs_jobs: bool
    started: int | None = None  # process_start of its pid

    @classmethod
    def this_process(cls, runs_jobs: bool) -> FrontEnd:
        pid = os.getpid()
        return cls(f"{socket.gethostname()[:36]}-{pid}-{uuid.uuid4().hex[:8]}", machine(), pid, runs_jobs,
                   process_start(pid))

    def gone(self) -> bool:
        """Whether it ran on this machine and its process has ended (or its pid is another's now)."""
        if self.host != machine():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # e.g. another user's process: it exists
            pass
        return self.started is not None and process_start(self.pid) not in (None, self.started)


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
                    id=front_end.id, host=front_end.host, pid=front_end.pid, process_start=front_end.started,
                    runs_jobs=front_end.runs_jobs, started_at=now, seen_at=now))

    def leave(self, front_end_id: str) -> None:
        with self.store.write() as conn:
            conn.execute(delete(front_ends).where(front_ends.c.id == front_end_id))

    def live(self, now: int, within_ms: int) -> list[FrontEnd]:
        """The front ends seen within `within_ms` of `now`."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(front_ends).where(front_ends.c.seen_at >= now - within_ms)
                                .order_by(front_ends.c.started_at, front_ends.c.id)).mappings()
            return [FrontEnd(r["id"], r["host"], r["pid"], bool(r["runs_jobs"]), r["process_start"]) for r in rows]

    def forget(self, before: int) -> int:
        """Remove the front ends not seen since `before`; how many."""
        with self.store.write() as conn:
            return conn.execute(delete(front_ends).where(front_ends.c.seen_at < before)).rowcount or 0

    # -- leases -----------------------------------------------------------------------------

    def claim(self, kind: EntityKind, entity_id: str, owner: str, token: str, changes: dict[str, object],
              expires_at: int) -> bool:
        """Move a PENDING job to INPROGRESS (with `changes`) under a lease of `owner`'s run
        `token` until `expires_at`; False when it is not PENDING any more (another took it)."""
        with self.store.write() as conn:
            moved = conn.execute(update(entities).where(
                entities.c.kind == kind.value, entities.c.id == entity_id,
                entities.c.status == Status.PENDING.value).values(status=Status.INPROGRESS.value, **changes))
            if moved.rowcount != 1:
                return False
            conn.execute(delete(job_leases).where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id))
            conn.execute(insert(job_leases).values(kind=kind.value, id=entity_id, owner=owner, token=token,
                                                   expires_at=expires_at))
            return True

    def renew(self, owner: str, tokens: Collection[str], now: int, expires_at: int) -> set[str]:
        """Extend to `expires_at` the leases of `owner`'s runs `tokens` that have not expired
        at `now`; the tokens whose leases hold."""
        if not tokens:
            return set()
        mine = and_(job_leases.c.owner == owner, job_leases.c.token.in_(list(tokens)))
        with self.store.write() as conn:
            conn.execute(update(job_leases).where(mine, job_leases.c.expires_at >= now).values(expires_at=expires_at))
            return set(conn.execute(select(job_leases.c.token).where(mine, job_leases.c.expires_at >= now)).scalars())

    def tokens(self, owner: str) -> set[str]:
        """The tokens of every lease of `owner`."""
        with self.store.engine.connect() as conn:
            return set(conn.execute(select(job_leases.c.token).where(job_leases.c.owner == owner)).scalars())

    def holds(self, token: str) -> bool:
        """Whether the run `token` still holds its job's lease."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(job_leases.c.token).where(job_leases.c.token == token)).first() is not None

    def release(self, token: str) -> None:
        """Give up the lease of the run `token` (ended, or left for another front end to run)."""
        with self.store.write() as conn:
            conn.execute(delete(job_leases).where(job_leases.c.token == token))

    def held(self, owner: str, kind: EntityKind) -> set[str]:
        """Ids of the jobs of `kind` that `owner` runs."""
        with self.store.engine.connect() as conn:
            return set(conn.execute(select(job_leases.c.id).where(job_leases.c.owner == owner,
                                                                  job_leases.c.kind == kind.value)).scalars())

    def orphaned(self, kinds: Iterable[EntityKind], now: int) -> list[JobKey]:
        """INPROGRESS jobs of `kinds` that no live front end holds (see the module's notes)."""
        query = (select(entities.c.kind, entities.c.id, job_leases.c.expires_at, front_ends.c.id.label("front_end"),
                        front_ends.c.host, front_ends.c.pid, front_ends.c.process_start)
                 .select_from(entities.outerjoin(job_leases, and_(job_leases.c.kind == entities.c.kind,
                                                                  job_leases.c.id == entities.c.id))
                              .outerjoin(front_ends, front_ends.c.id == job_leases.c.owner))
                 .where(entities.c.kind.in_([k.value for k in kinds]),
                        entities.c.status == Status.INPROGRESS.value)
                 .order_by(entities.c.created_at, entities.c.id))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(EntityKind(row[0]), row[1]) for row in rows if _orphaned(row[2], _front_end(*row[3:]), now)]

    def requeue(self, kind: EntityKind, entity_id: str, now: int) -> bool:
        """Put an orphaned job back to PENDING (to run again from scratch); False when it is
        not orphaned any more (another front end requeued, claimed or renewed it meanwhile)."""
        with self.store.write() as conn:
            self.store.lock_entity(conn, kind, entity_id)
            lease = conn.execute(
                select(job_leases.c.expires_at, front_ends.c.id, front_ends.c.host, front_ends.c.pid,
                       front_ends.c.process_start)
                .select_from(job_leases.outerjoin(front_ends, front_ends.c.id == job_leases.c.owner))
                .where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id)
                .with_for_update(of=job_leases)).first()  # a renewal waits, or is waited for
            if lease is not None and not _orphaned(lease[0], _front_end(*lease[1:]), now):
                return False
            moved = _to_pending(conn, kind, entity_id, now)
            conn.execute(delete(job_leases).where(job_leases.c.kind == kind.value, job_leases.c.id == entity_id))
            return moved

    def give_back(self, kind: EntityKind, entity_id: str, token: str, now: int) -> bool:
        """Put the job of the run `token` back to PENDING (to run again from scratch), while
        that run holds its lease; False when it does not any more."""
        with self.store.write() as conn:
            self.store.lock_entity(conn, kind, entity_id)
            mine = and_(job_leases.c.kind == kind.value, job_leases.c.id == entity_id, job_leases.c.token == token)
            if conn.execute(select(job_leases.c.token).where(mine)).first() is None:
                return False
            if not _to_pending(conn, kind, entity_id, now):  # deleted meanwhile: the run ends as such
                return False
            conn.execute(delete(job_leases).where(mine))
            return True


def _to_pending(conn: Connection, kind: EntityKind, entity_id: str, now: int) -> bool:
    """Move an INPROGRESS job back to PENDING; whether it moved."""
    moved = conn.execute(update(entities).where(
        entities.c.kind == kind.value, entities.c.id == entity_id,
        entities.c.status == Status.INPROGRESS.value).values(status=Status.PENDING.value, last_updated_at=now))
    return moved.rowcount == 1


def _orphaned(expires_at: int | None, front_end: FrontEnd | None, now: int) -> bool:
    """Whether a lease (expires_at None: there is none) of `front_end` leaves its job to any front end."""
    return expires_at is None or expires_at < now or (front_end is not None and front_end.gone())


def _front_end(front_end_id: str | None, host: str, pid: int, started: int | None) -> FrontEnd | None:
    """The front end of a row of a join (None: no such row)."""
    return None if front_end_id is None else FrontEnd(front_end_id, host, pid, True, started)
