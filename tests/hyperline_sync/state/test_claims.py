"""Claims of one task attempt: owners unique per attempt, takeover of an ended or expired holder, and
the heartbeat that renews a claim (SQLite and the real Postgres)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from hyperline_sync.state.claims import ClaimHeartbeat, attempt_owner, holder_ended
from hyperline_sync.state.ledger import Ledger, PartitionBusyError, partitions_table

TTL = dt.timedelta(minutes=5)
RUN = "manual__2026-11-02T00:00:00+00:00"


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def expires(ledger: Ledger) -> dt.datetime:
    return ledger.partitions("p")["d"].claim_expires_at


def ended_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_two_attempts_of_one_run_are_two_owners_and_only_one_passes_the_claim(ledger):
    first, second = attempt_owner(RUN, 0, 1), attempt_owner(RUN, 0, 1)  # a zombie and its clone
    assert first != second and first.startswith(RUN) and "[map 0, try 1]" in first
    ledger.claim("p", "d", first, TTL, run_id=RUN)
    with pytest.raises(PartitionBusyError, match=f"being synced by {re.escape(first)}"):
        ledger.claim("p", "d", second, TTL, run_id=RUN)
    with pytest.raises(PartitionBusyError):
        ledger.claim("p", "d", attempt_owner(RUN, 0, 2), TTL, run_id=RUN)  # the retry of a live attempt


def test_a_holder_that_ended_on_this_host_is_taken_over_at_once_by_its_runs_retry(ledger):
    dead = f"{RUN} [map 0, try 1] @{socket.gethostname()}:{ended_pid()}:0badc0de"
    assert holder_ended(dead)
    ledger.claim("p", "d", dead, TTL, run_id=RUN)
    with pytest.raises(PartitionBusyError):  # another run waits for the claim to expire
        ledger.claim("p", "d", attempt_owner("scheduled__x"), TTL, run_id="scheduled__x")
    retry = attempt_owner(RUN, 0, 2)
    ledger.claim("p", "d", retry, TTL, run_id=RUN)
    assert ledger.partitions("p")["d"].claimed_by == retry


def test_a_live_or_unknown_holder_is_waited_for_until_its_claim_expires(ledger):
    alive = attempt_owner(RUN, 0, 1)  # this very process
    elsewhere = f"{RUN} [map 0, try 1] @another-host:1:0badc0de"
    assert not holder_ended(alive) and not holder_ended(elsewhere) and not holder_ended(RUN)
    ledger.claim("p", "d", elsewhere, TTL, run_id=RUN)
    with pytest.raises(PartitionBusyError, match="another-host"):
        ledger.claim("p", "d", alive, TTL, run_id=RUN)
    p = partitions_table.c
    with ledger.engine.begin() as conn:  # the crashed holder's claim runs out (instead of waiting for it)
        conn.execute(partitions_table.update().values(claim_expires_at=dt.datetime.now(dt.UTC)
                                                      - dt.timedelta(seconds=1)).where(p.partition == "d"))
    ledger.claim("p", "d", alive, TTL, run_id=RUN)
    assert ledger.partitions("p")["d"].claimed_by == alive


def test_the_heartbeat_renews_the_claim_until_stopped(ledger):
    owner, ttl = attempt_owner(RUN), dt.timedelta(seconds=1.5)
    ledger.claim("p", "d", owner, ttl, run_id=RUN)
    first = expires(ledger)
    with ClaimHeartbeat(ledger, "p", "d", owner, ttl) as heartbeat:
        eventually(lambda: expires(ledger) > first, "a renewal")
        heartbeat.check()
    assert not heartbeat._thread.is_alive()


def test_the_heartbeat_notices_a_claim_taken_over(ledger):
    owner, ttl = attempt_owner(RUN), dt.timedelta(seconds=1.5)
    ledger.claim("p", "d", owner, ttl, run_id=RUN)
    with ClaimHeartbeat(ledger, "p", "d", owner, ttl) as heartbeat:
        with ledger.engine.begin() as conn:  # another attempt took it (the claim had expired)
            conn.execute(partitions_table.update().values(claimed_by="someone else"))
        eventually(lambda: heartbeat.lost is not None, "the lost claim to be noticed")
        with pytest.raises(PartitionBusyError, match="lost the claim"):
            heartbeat.check()


def test_without_renewals_for_a_whole_ttl_the_attempt_stops(tmp_path):
    ledger = Ledger.sqlite(tmp_path / "db" / "ledger.db")
    owner, ttl = attempt_owner(RUN), dt.timedelta(seconds=1.5)
    ledger.claim("p", "d", owner, ttl, run_id=RUN)
    with ClaimHeartbeat(ledger, "p", "d", owner, ttl) as heartbeat:
        ledger.engine.dispose()
        shutil.rmtree(tmp_path / "db")  # the ledger is gone: renewals fail
        eventually(lambda: _raises(heartbeat.check), "the claim to be given up")
    with pytest.raises(PartitionBusyError, match="could not be renewed"):
        heartbeat.check()


def _raises(check: Callable[[], None]) -> bool:
    try:
        check()
    except PartitionBusyError:
        return True
    return False


def test_another_attempt_of_the_same_run_on_a_neighbouring_day_is_a_live_claim(ledger):
    zombie, retry = attempt_owner(RUN, 0, 1), attempt_owner(RUN, 0, 2)
    ledger.claim("p", "2026-11-01", zombie, TTL, run_id=RUN)
    assert ledger.live_claims("p", ["2026-11-01", "2026-11-02"], other_than=retry) == {"2026-11-01": zombie}
    assert ledger.live_claims("p", ["2026-11-01", "2026-11-02"], other_than=zombie) == {}
