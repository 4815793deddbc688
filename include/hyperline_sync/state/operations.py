"""What operators do by hand, recorded in the ledger: circuit-breaker resets and dead-letter replays.

Each is one row of `hyperline_sync_operations` (who, when, which pipeline and day, a replay's own
counts, a JSON detail), so the ledger tells why a breaker closed early or why a day's dead letters
shrank. A replay also holds the partition while it works (`hold_done_partition`): only a claim, the
partition's status, counts and last error stay as the sync left them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hyperline_sync.state.ledger import DONE, Ledger
from hyperline_sync.state.schema import (
    COUNT_FIELDS,
    Counts,
    PartitionBusyError,
    aware,
    operations_table,
    partitions_table,
    utcnow,
)

log = logging.getLogger(__name__)

BREAKER_RESET, REPLAY = "breaker_reset", "replay"


class PartitionNotDoneError(RuntimeError):
    """A replay was asked for a day the ledger does not have as done: rerun the day instead."""


@dataclass
class Operation:
    """One recorded operation, as `status` lists them."""

    pipeline: str
    action: str
    partition: str | None
    run_id: str | None
    actor: str | None
    at: dt.datetime
    counts: Counts
    detail: dict[str, Any]


def actor() -> str:
    """Who did it: the OS user and host (a DAG task: the worker's)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container without a passwd entry
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def record_operation(ledger: Ledger, pipeline: str, action: str, *, partition: str | None = None,
                     run_id: str | None = None, counts: Counts | None = None, detail: dict | None = None) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(operations_table.insert().values(
            pipeline=pipeline, action=action, partition=partition, run_id=run_id, actor=actor(), at=utcnow(),
            detail=json.dumps(detail or {}, sort_keys=True, default=str), **(counts or Counts()).as_dict()))


def operations(ledger: Ledger, pipeline: str, since: dt.datetime | None = None) -> list[Operation]:
    """The pipeline's recorded operations, oldest first."""
    o = operations_table.c
    query = sa.select(operations_table).where(o.pipeline == pipeline)
    if since is not None:
        query = query.where(o.at >= since)
    with ledger.engine.connect() as conn:
        rows = conn.execute(query.order_by(o.at, o.id)).all()
    return [Operation(row.pipeline, row.action, row.partition, row.run_id, row.actor, aware(row.at) or row.at,
                      Counts(**{n: getattr(row, n) for n in COUNT_FIELDS}), json.loads(row.detail or "{}"))
            for row in rows]


def reset_breaker(ledger: Ledger, pipeline: str) -> tuple[int, dt.datetime | None, str | None]:
    """Close the pipeline's breaker now; returns its state before, which the audit row keeps."""
    before = ledger.breaker(pipeline)
    ledger.set_breaker(pipeline, 0, None, None)
    failures, open_until, error = before
    record_operation(ledger, pipeline, BREAKER_RESET, detail={
        "consecutive_failures": failures, "open_until": open_until.isoformat() if open_until else None,
        "last_error": error})
    log.warning("circuit breaker of %s reset by %s (was: %d failures, open until %s)", pipeline, actor(),
                failures, open_until)
    return before


@contextmanager
def hold_done_partition(ledger: Ledger, pipeline: str, partition: str, owner: str,
                        ttl: dt.timedelta) -> Iterator[None]:
    """Claim a done partition for `owner` without touching its status, counts or errors; released after.

    Raises PartitionNotDoneError unless the ledger has it as done, PartitionBusyError while another
    attempt holds it."""
    p = partitions_table.c
    now = utcnow()
    with ledger.engine.begin() as conn:
        row = conn.execute(sa.select(p.status, p.claimed_by, p.claim_expires_at)
                           .where(p.pipeline == pipeline, p.partition == partition)).first()
        if row is None or row.status != DONE:
            raise PartitionNotDoneError(
                f"partition {partition} of pipeline {pipeline} is {row.status if row else 'not synced'}, not done: "
                "rerun it (its dead letters are rewritten by the rerun) before replaying them")
        taken = conn.execute(
            partitions_table.update()
            .where(p.pipeline == pipeline, p.partition == partition, p.status == DONE,
                   sa.or_(p.claimed_by.is_(None), p.claim_expires_at < now))
            .values(claimed_by=owner, claim_expires_at=now + ttl)).rowcount
    if taken != 1:
        raise PartitionBusyError(f"partition {partition} of pipeline {pipeline} is being synced by "
                                 f"{row.claimed_by}; replay it once that run is over")
    try:
        yield
    finally:
        with ledger.engine.begin() as conn:
            conn.execute(partitions_table.update()
                         .where(p.pipeline == pipeline, p.partition == partition, p.claimed_by == owner)
                         .values(claimed_by=None, claim_expires_at=None))
