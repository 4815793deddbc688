"""Claims: which task attempt may sync a partition now, and the heartbeat that keeps its claim alive.

An owner names one task attempt (`attempt_owner`): the run id, the mapped task's index and try,
the host and pid, and a random token. Two processes of one run (a zombie and its retry, a task
cleared while still running, two threads) are two owners, so only one of them passes the claim.
A new attempt takes a held claim over only when it expired or, for the next attempt of the same
run, when its holder is known to have ended (a process of this host that no longer runs). While a
partition is synced, `ClaimHeartbeat` renews the claim every third of its TTL from a background
thread, so a short TTL is safe and a dead worker's claim expires soon; the sync checks the heartbeat
before each send and stops if the claim was lost or could not be renewed in time.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa

from hyperline_sync.state.schema import (
    FAILED,
    PENDING,
    RUNNING,
    PartitionBusyError,
    aware,
    partitions_table,
    utcnow,
)

log = logging.getLogger(__name__)

_OWNER_TAIL = re.compile(r"@(?P<host>[^\s@:]+):(?P<pid>\d+):[0-9a-f]+$")


def attempt_owner(run_id: str, map_index: int | None = None, try_number: int | None = None) -> str:
    """A claim owner unique to this task attempt, readable in messages (it starts with the run id)."""
    task = []
    if map_index is not None and map_index >= 0:
        task.append(f"map {map_index}")
    if try_number is not None:
        task.append(f"try {try_number}")
    attempt = f" [{', '.join(task)}]" if task else ""
    return f"{run_id}{attempt} @{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_ended(owner: str) -> bool:
    """Whether the attempt holding a claim is known to have ended: a process of this host that no
    longer runs (or is a zombie). Anything else (another host, an owner of older code) is unknown."""
    match = _OWNER_TAIL.search(owner)
    if match is None or match["host"] != socket.gethostname():
        return False
    pid = int(match["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    try:  # a killed process its parent has not reaped yet still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class PartitionClaims:
    """The claim half of the ledger (mixed into `Ledger`, which provides `engine`)."""

    engine: sa.engine.Engine

    def claim(self, pipeline: str, partition: str, owner: str, ttl: dt.timedelta, run_id: str) -> str:
        """Take the partition for `owner`, or raise PartitionBusyError naming who holds it.

        A claim is free when nobody holds it or it expired (its worker stopped renewing it); for
        another attempt of the holder's own run (the task's retry), also when the holder is known to
        have ended (`holder_ended`). Returns the partition's status before the claim.
        """
        now = utcnow()
        p = partitions_table.c
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(p.status, p.claimed_by, p.run_id).where(p.pipeline == pipeline, p.partition == partition)
            ).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            partitions_table.insert().values(pipeline=pipeline, partition=partition, status=PENDING)
                        )
                except sa.exc.IntegrityError:
                    pass  # another run inserted it first; the guarded update below decides
            free = [p.claimed_by.is_(None), p.claimed_by == owner, p.claim_expires_at < now]
            holder = None if row is None else row.claimed_by
            if row is not None and holder not in (None, owner) and row.run_id == run_id and holder_ended(holder):
                log.info("partition %s: its holder %s has ended; taking the claim over", partition, holder)
                free.append(p.claimed_by == holder)  # compare-and-swap: only if still that holder's
            taken = conn.execute(
                partitions_table.update()
                .where(p.pipeline == pipeline, p.partition == partition, sa.or_(*free))
                .values(
                    claimed_by=owner,
                    claim_expires_at=now + ttl,
                    status=RUNNING,
                    attempts=p.attempts + 1,
                    run_id=run_id,
                    started_at=now,
                    finished_at=None,
                    last_error=None,
                )
            ).rowcount
            if taken != 1:
                held = conn.execute(
                    sa.select(p.claimed_by, p.claim_expires_at).where(
                        p.pipeline == pipeline, p.partition == partition
                    )
                ).one()
                raise PartitionBusyError(
                    f"partition {partition} of pipeline {pipeline} is being synced by {held.claimed_by} "
                    f"(claim expires {aware(held.claim_expires_at):%Y-%m-%d %H:%M:%S} UTC)"
                )
        return PENDING if row is None else row.status

    def live_claims(self, pipeline: str, partitions: Iterable[str], other_than: str,
                    other_run_than: str | None = None) -> dict[str, str]:
        """partition -> holder, for those of `partitions` claimed (unexpired) by an owner other than
        `other_than`: another run, or another attempt of the same run (a zombie syncing a neighbour);
        with `other_run_than`, only the holders of runs other than that one."""
        p = partitions_table.c
        where = [p.pipeline == pipeline, p.partition.in_(list(partitions)), p.claimed_by.is_not(None),
                 p.claimed_by != other_than, p.claim_expires_at > utcnow()]
        if other_run_than is not None:
            where.append(p.run_id != other_run_than)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(p.partition, p.claimed_by).where(*where))
            return {row.partition: row.claimed_by for row in rows}

    def release(self, pipeline: str, partition: str, owner: str, status: str) -> None:
        """Give a claim back without syncing, restoring the partition's status (a dead worker's stays failed)."""
        p = partitions_table.c
        with self.engine.begin() as conn:
            conn.execute(
                partitions_table.update()
                .where(p.pipeline == pipeline, p.partition == partition, p.claimed_by == owner)
                .values(status=FAILED if status == RUNNING else status, claimed_by=None, claim_expires_at=None)
            )

    def renew(self, pipeline: str, partition: str, owner: str, ttl: dt.timedelta) -> None:
        """Extend our claim while work goes on; raise if it was lost (expired and taken)."""
        p = partitions_table.c
        with self.engine.begin() as conn:
            renewed = conn.execute(
                partitions_table.update()
                .where(p.pipeline == pipeline, p.partition == partition, p.claimed_by == owner)
                .values(claim_expires_at=utcnow() + ttl)
            ).rowcount
        if renewed != 1:
            raise PartitionBusyError(
                f"lost the claim on partition {partition} of pipeline {pipeline}: it expired or its holder "
                "was taken for ended, and another attempt took it"
            )


class ClaimHeartbeat:
    """Renews a claim every `ttl / 3` from a daemon thread until `stop()`.

    `check()` (called by the sync before each send) raises PartitionBusyError once the claim was
    lost, or when no renewal has succeeded for a whole TTL (the ledger is unreachable: another
    attempt may take the partition over, so this one must not send any more).
    """

    def __init__(self, claims: PartitionClaims, pipeline: str, partition: str, owner: str,
                 ttl: dt.timedelta) -> None:
        self.claims, self.pipeline, self.partition, self.owner, self.ttl = claims, pipeline, partition, owner, ttl
        self.every = ttl.total_seconds() / 3
        self.valid_until = time.monotonic() + ttl.total_seconds()  # the claim was just taken
        self.lost: PartitionBusyError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"claim-heartbeat-{partition}", daemon=True)

    def __enter__(self) -> ClaimHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            started = time.monotonic()
            try:
                self.claims.renew(self.pipeline, self.partition, self.owner, self.ttl)
            except PartitionBusyError as exc:
                self.lost = exc
                log.error("partition %s: %s", self.partition, exc)
                return
            except Exception as exc:  # the ledger is down: keep trying while the claim lasts
                log.warning("partition %s: could not renew the claim (%s: %s); retrying", self.partition,
                            type(exc).__name__, exc)
                continue
            self.valid_until = started + self.ttl.total_seconds()

    def check(self) -> None:
        """Raise PartitionBusyError if this attempt may no longer act on the partition."""
        if self.lost is not None:
            raise self.lost
        if time.monotonic() >= self.valid_until:
            raise PartitionBusyError(
                f"the claim on partition {self.partition} of pipeline {self.pipeline} could not be renewed "
                f"for {self.ttl}: it may have expired and been taken, so this attempt stops sending"
            )
