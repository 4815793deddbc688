"""The ledger against SQLite and against the real Postgres: claims, object progress, roll-ups."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest

from hyperline_sync.state.ledger import (
    DONE,
    FAILED,
    RUNNING,
    Counts,
    Ledger,
    LedgerError,
    PartitionBusyError,
)

TTL = dt.timedelta(minutes=5)


def test_claim_blocks_other_runs_until_released(ledger):
    ledger.claim("p", "2026-11-01", "run-a", TTL, run_id="a")
    with pytest.raises(PartitionBusyError, match="run-a"):
        ledger.claim("p", "2026-11-01", "run-b", TTL, run_id="b")
    ledger.finish("p", "2026-11-01", "run-a", DONE)
    ledger.claim("p", "2026-11-01", "run-b", TTL, run_id="b")
    state = ledger.partitions("p")["2026-11-01"]
    assert state.status == RUNNING
    assert state.claimed_by == "run-b"
    assert state.attempts == 2


def test_same_owner_retakes_its_claim(ledger):
    ledger.claim("p", "d", "run-a", TTL, run_id="a")
    ledger.claim("p", "d", "run-a", TTL, run_id="a")
    assert ledger.partitions("p")["d"].attempts == 2


def test_expired_claim_of_a_dead_worker_can_be_taken(ledger):
    ledger.claim("p", "d", "dead", dt.timedelta(seconds=-1), run_id="x")
    assert ledger.failed_partitions("p") == ["d"]
    ledger.claim("p", "d", "alive", TTL, run_id="y")
    assert ledger.partitions("p")["d"].claimed_by == "alive"


def test_renew_fails_once_the_claim_was_taken(ledger):
    ledger.claim("p", "d", "slow", dt.timedelta(seconds=-1), run_id="x")
    ledger.claim("p", "d", "other", TTL, run_id="y")
    with pytest.raises(PartitionBusyError, match="lost the claim"):
        ledger.renew("p", "d", "slow", TTL)
    ledger.renew("p", "d", "other", TTL)


def test_object_progress_and_rollup(ledger):
    ledger.claim("p", "d", "r", TTL, run_id="r")
    ledger.record_object("p", "d", "k1", "e1", DONE, Counts(read=10, sent=7, rejected=1, skipped=1, duplicates=1), "r")
    ledger.record_object("p", "d", "k2", "e2", FAILED, Counts(read=3, sent=3), "r", error="boom")
    assert ledger.done_objects("p", "d") == {"k1": "e1"}
    ledger.finish("p", "d", "r", FAILED, error="k2: boom")
    state = ledger.partitions("p")["d"]
    assert (state.status, state.objects_total, state.objects_done) == (FAILED, 2, 1)
    assert state.counts == Counts(read=13, sent=10, rejected=1, skipped=1, duplicates=1)
    assert state.last_error == "k2: boom"
    assert state.claimed_by is None
    assert ledger.failed_partitions("p") == ["d"]


def test_reprocessed_object_replaces_its_counts(ledger):
    ledger.claim("p", "d", "r", TTL, run_id="r")
    ledger.record_object("p", "d", "k1", "old", DONE, Counts(read=5, sent=5), "r")
    ledger.record_object("p", "d", "k1", "new", DONE, Counts(read=4, sent=4), "r")
    assert ledger.done_objects("p", "d") == {"k1": "new"}
    ledger.finish("p", "d", "r", DONE)
    assert ledger.partitions("p")["d"].counts.read == 4


def test_pipelines_are_separate(ledger):
    ledger.claim("a", "d", "r", TTL, run_id="r")
    ledger.claim("b", "d", "r2", TTL, run_id="r2")
    assert set(ledger.partitions("a")) == {"d"}
    assert ledger.partitions("b")["d"].claimed_by == "r2"


def test_watermark_is_kept_until_a_finish_gives_a_new_one(ledger):
    ledger.claim("p", "d", "r1", TTL, run_id="r1")
    ledger.finish("p", "d", "r1", DONE, watermark="2026-03-02T07:30:00+00:00")
    ledger.claim("p", "d", "r2", TTL, run_id="r2")
    ledger.finish("p", "d", "r2", FAILED, "slice x: boom")
    assert ledger.partitions("p")["d"].watermark == "2026-03-02T07:30:00+00:00"
    ledger.claim("p", "d", "r3", TTL, run_id="r3")
    ledger.finish("p", "d", "r3", DONE, watermark="2026-03-03T01:00:00+00:00")
    assert ledger.partitions("p")["d"].watermark == "2026-03-03T01:00:00+00:00"


def test_schema_is_created_once(tmp_path):
    Ledger.sqlite(tmp_path / "l.db").claim("p", "d", "r", TTL, run_id="r")
    again = Ledger.sqlite(tmp_path / "l.db")
    assert again.partitions("p")["d"].status == RUNNING


def test_unreachable_database_is_a_clear_error_without_the_password():
    with pytest.raises(LedgerError, match="cannot reach the ledger database") as err:
        Ledger(
            "postgresql+psycopg://postgres:s3cr3t-pw@127.0.0.1:1/none",
            engine_kwargs={"connect_args": {"connect_timeout": 2}},
        )
    assert "s3cr3t-pw" not in str(err.value)


def test_counts_balance():
    assert Counts(read=4, sent=1, rejected=1, skipped=1, duplicates=1).balanced
    assert not Counts(read=5, sent=1).balanced


def _open_after(barrier, path, errors) -> None:
    barrier.wait()
    try:
        Ledger.sqlite(path)
    except LedgerError as exc:
        errors.put(str(exc))


@pytest.mark.parametrize("start", ["new file", "a table missing"])
def test_processes_opening_a_new_sqlite_ledger_at_once_all_succeed(tmp_path, start):
    # Mapped tasks of a first run start together on one machine: each creates the schema if it
    # is missing, and none may fail because another created it a moment earlier. A ledger from
    # before a table was added (the breaker's) gets that table the same way.
    context = multiprocessing.get_context("spawn")
    barrier, errors = context.Barrier(6), context.Queue()
    for attempt in range(5):
        path = tmp_path / f"ledger-{attempt}.db"
        if start == "a table missing":
            with Ledger.sqlite(path).engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE hyperline_sync_breaker")
        workers = [context.Process(target=_open_after, args=(barrier, path, errors)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0] * 6
        assert errors.empty(), errors.get()
        assert Ledger.sqlite(path).partitions("p") == {} and Ledger.sqlite(path).breaker("p")[0] == 0
