"""Operations done by hand, on SQLite and the real Postgres: the audit rows and the hold a replay
takes on a done partition without touching what the sync recorded."""

from __future__ import annotations

import datetime as dt

import pytest

from hyperline_sync.state.ledger import DONE, FAILED, Counts, PartitionBusyError
from hyperline_sync.state.operations import (
    REPLAY,
    PartitionNotDoneError,
    hold_done_partition,
    operations,
    record_operation,
)

TTL = dt.timedelta(minutes=5)


def finished(ledger, partition: str, status: str) -> None:
    ledger.claim("p", partition, "run-a", TTL, run_id="run-a")
    ledger.finish("p", partition, "run-a", status, error="boom" if status == FAILED else None)


def test_a_hold_on_a_done_partition_keeps_its_row_and_excludes_others(ledger):
    finished(ledger, "2026-01-02", DONE)
    before = ledger.partitions("p")["2026-01-02"]
    with hold_done_partition(ledger, "p", "2026-01-02", "replay-1", TTL):
        held = ledger.partitions("p")["2026-01-02"]
        assert held.claimed_by == "replay-1" and held.status == DONE
        assert (held.attempts, held.run_id, held.finished_at) == (before.attempts, before.run_id, before.finished_at)
        with pytest.raises(PartitionBusyError, match="replay-1"):
            ledger.claim("p", "2026-01-02", "run-b", TTL, run_id="run-b")
        with pytest.raises(PartitionBusyError), hold_done_partition(ledger, "p", "2026-01-02", "replay-2", TTL):
            pass
    assert ledger.partitions("p")["2026-01-02"] == before


def test_a_hold_refuses_a_day_that_is_not_done(ledger):
    finished(ledger, "2026-01-03", FAILED)
    for day in ("2026-01-03", "2026-01-04"):
        with pytest.raises(PartitionNotDoneError, match="not done"), hold_done_partition(ledger, "p", day, "r1", TTL):
            pass
    assert ledger.partitions("p")["2026-01-03"].last_error == "boom"


def test_operations_are_recorded_with_their_counts(ledger):
    record_operation(ledger, "p", REPLAY, partition="2026-01-02", run_id="replay__x",
                     counts=Counts(read=3, sent=2, rejected=1), detail={"reason": "r", "missing": 0})
    record_operation(ledger, "other", REPLAY)
    (op,) = operations(ledger, "p")
    assert (op.action, op.partition, op.run_id, op.detail) == (REPLAY, "2026-01-02", "replay__x",
                                                               {"missing": 0, "reason": "r"})
    assert op.counts == Counts(read=3, sent=2, rejected=1) and op.at.tzinfo is not None
