"""Claims of neighbouring partitions (the sync's dedup-window check) and giving a claim back."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from hyperline_sync.state.ledger import DONE, FAILED, PENDING, RUNNING, Ledger

TTL = dt.timedelta(minutes=5)


def test_live_claims_lists_other_owners_unexpired_claims_only(ledger):
    ledger.claim("p", "2026-11-01", "run-a", TTL, run_id="a")
    ledger.claim("p", "2026-11-02", "run-b", TTL, run_id="b")
    ledger.claim("p", "2026-11-03", "dead", dt.timedelta(seconds=-1), run_id="x")
    ledger.claim("other", "2026-11-01", "run-c", TTL, run_id="c")
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    assert ledger.live_claims("p", days, other_than="run-a") == {"2026-11-02": "run-b"}
    assert ledger.live_claims("p", days, other_than="run-b") == {"2026-11-01": "run-a"}


def test_claim_returns_the_previous_status_and_release_restores_it(ledger):
    assert ledger.claim("p", "d", "run-a", TTL, run_id="a") == PENDING
    ledger.release("p", "d", "run-a", PENDING)
    state = ledger.partitions("p")["d"]
    assert (state.status, state.claimed_by, state.claim_expires_at) == (PENDING, None, None)

    ledger.claim("p", "d", "run-a", TTL, run_id="a")
    ledger.finish("p", "d", "run-a", DONE)
    assert ledger.claim("p", "d", "run-b", TTL, run_id="b") == DONE
    ledger.release("p", "d", "run-b", DONE)
    assert ledger.partitions("p")["d"].status == DONE

    # A dead worker's partition stays a rerun candidate after someone backs off from it.
    ledger.claim("p", "e", "dead", dt.timedelta(seconds=-1), run_id="x")
    assert ledger.claim("p", "e", "run-c", TTL, run_id="c") == RUNNING
    ledger.release("p", "e", "run-c", RUNNING)
    assert ledger.partitions("p")["e"].status == FAILED
    assert ledger.failed_partitions("p") == ["e"]


def test_release_leaves_someone_elses_claim_alone(ledger):
    ledger.claim("p", "d", "run-a", TTL, run_id="a")
    ledger.release("p", "d", "run-b", PENDING)
    assert ledger.partitions("p")["d"].claimed_by == "run-a"


def test_workers_opening_a_fresh_postgres_ledger_at_once_all_succeed(postgres_url):
    # Mapped tasks starting together on a new database raced to create the tables (UniqueViolation).
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_ledger() -> None:
        try:
            barrier.wait()
            Ledger(postgres_url).engine.dispose()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_ledger) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sa.create_engine(postgres_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM hyperline_sync_schema")).scalar() == 1
