"""7b/7c. The two races behind "two runs over the same days at once", forced deterministically.

Concurrent subprocesses (scenario 7) hit these only when the timing is unlucky; here the second run is
started from inside the first one at the exact moment that matters, at the sync_partition level, with
the real Postgres ledger, moto S3, the hook and the emulator. Whatever run wins, Hyperline must end
with exactly the first-received copies, each posted once, and the ledger with the manifest's counts.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from hyperline_sync.pipeline.ports import HyperlineUnavailableError
from hyperline_sync.pipeline.sync import SyncJob, sync_partition
from hyperline_sync.state.ledger import PartitionBusyError
from tests.faults.harness import DAYS, PIPELINE, Harness, make_job, make_sender

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]  # a hang fails in minutes


@pytest.fixture
def pg_harness(harness: Harness, postgres_url, monkeypatch) -> Harness:
    url = sa.engine.make_url(postgres_url)
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_PG", json.dumps({
        "conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}))
    harness.configure(ledger_conn_id="ledger_pg")
    harness.ledger_url = postgres_url
    return harness


def sync_or_busy(job: SyncJob, day: dt.date, outcomes: list[str]) -> None:
    try:
        sync_partition(job, day)
        outcomes.append(f"{job.run_id}: done")
    except PartitionBusyError as exc:
        outcomes.append(f"{job.run_id}: busy ({exc})")


def finish_and_check(h: Harness, outcomes: list[str]) -> None:
    """Sync whatever is left in order, then: exact events, each posted once, ledger = manifest."""
    for day in DAYS:
        sync_partition(make_job("manual__cleanup"), day)
    h.assert_exact()
    assert max(h.emulator.post_counts.values()) == 1, (outcomes, [i for i, n in h.emulator.post_counts.items()
                                                                  if n > 1][:5])
    h.assert_ledger_matches_manifest()


def test_a_run_that_listed_a_partition_before_another_finished_it_does_not_redo_it(pg_harness: Harness):
    """7b. Run B reads which objects are done; run A then syncs the whole day; then B goes on."""
    h = pg_harness
    a, b = make_job("scheduled__2026-04-01T10:00:00+00:00"), make_job("backfill__2026-04-01T00:00:00+00:00")
    outcomes: list[str] = []
    done_objects = b.ledger.done_objects

    def stale_done_objects(pipeline: str, partition: str) -> dict[str, str]:
        before = done_objects(pipeline, partition)
        if not outcomes:
            sync_or_busy(a, DAYS[0], outcomes)
        return before

    b.ledger.done_objects = stale_done_objects  # type: ignore[method-assign]
    sync_or_busy(b, DAYS[0], outcomes)
    assert len(outcomes) == 2 and sum(o.endswith("done") for o in outcomes) >= 1, outcomes
    finish_and_check(h, outcomes)
    h.record("7b. run B planned before run A finished the day", len(h.manifest.expected_events))


def test_a_later_day_synced_while_another_run_syncs_an_earlier_one_leaves_it_the_shared_ids(pg_harness: Harness):
    """7c. Run A has sent day 1's first batch (not yet committed); run B now syncs day 2, whose first
    lines repeat day 1's messageIds, one with another timestamp (the first copy must win): B drops
    what day 1 holds, as day 1 is claimed, and every id is posted once."""
    h = pg_harness
    outcomes: list[str] = []
    real = make_sender()

    once = threading.Lock()  # the sync sends from two threads at once

    class InterleavingSender:
        def send_events(self, events, **options):
            result = real.send_events(events, **options)
            with once:
                if not outcomes:  # right after run A's first send, before its object is committed
                    sync_or_busy(make_job("scheduled__2026-04-02T10:00:00+00:00"), DAYS[1], outcomes)
            return result

    sync_partition(make_job("backfill__2026-04-01T00:00:00+00:00", sender=InterleavingSender()), DAYS[0])
    assert outcomes == ["scheduled__2026-04-02T10:00:00+00:00: done"]
    finish_and_check(h, outcomes)
    h.record("7c. day 2 synced while another run syncs day 1", len(h.manifest.expected_events))


def test_an_earlier_day_synced_while_another_run_syncs_a_later_one(pg_harness: Harness):
    """7d. The mirror image: run B syncs day 2 and, mid-way, run A starts day 1. B began before
    anyone claimed day 1, so it could not know day 1 would be synced: its copies are sent. A waits
    (busy) until B is done, so that day 1's copies land last (Hyperline upserts on record.id)."""
    h = pg_harness
    outcomes: list[str] = []
    real = make_sender()

    once = threading.Lock()  # the sync sends from two threads at once

    class InterleavingSender:
        def send_events(self, events, **options):
            with once:
                if not outcomes:
                    sync_or_busy(make_job("backfill__2026-04-01T00:00:00+00:00"), DAYS[0], outcomes)
            return real.send_events(events, **options)

    sync_or_busy(make_job("scheduled__2026-04-02T10:00:00+00:00", sender=InterleavingSender()), DAYS[1], outcomes)
    assert outcomes[0].startswith("backfill__2026-04-01T00:00:00+00:00: busy (partition 2026-04-01")
    assert outcomes[1] == "scheduled__2026-04-02T10:00:00+00:00: done"
    # Day 2 went first, so it sent its copies of day 1's messageIds (the manifest counts them as
    # duplicates); day 1's sync then overwrites them: the end state must still be the first copies.
    for day in DAYS:
        sync_partition(make_job("manual__cleanup"), day)
    h.assert_exact()
    states = h.ledger().partitions(PIPELINE)
    for day in DAYS:
        state = states[day.isoformat()]
        assert state.status == "done" and state.counts.balanced, state
        assert state.counts.read == h.manifest.by_day[day].read
    h.record("7d. day 1 synced while another run syncs day 2", len(h.manifest.expected_events))


RUN = "manual__2026-04-05T00:00:00+00:00"


def run_job(attempt: str, sender: Any = None) -> SyncJob:
    """One mapped task's attempt of the run RUN, which syncs all of DAYS."""
    job = make_job(RUN, sender=sender)
    job.owner, job.run_days = f"{RUN}#{attempt}", frozenset(d.isoformat() for d in DAYS)
    return job


def check_each_id_posted_once_from_its_first_day(h: Harness) -> None:
    h.assert_exact()  # the stored copy of every id is its first-received one
    twice = [i for i, n in h.emulator.post_counts.items() if n > 1]
    assert not twice, twice[:5]
    h.assert_ledger_matches_manifest()


def test_the_days_of_a_run_synced_at_the_same_time_send_each_id_once(pg_harness: Harness):
    """7e. The three days of one run start together, one thread each (as mapped tasks on three
    workers): the ids a day shares with the day before are sent once, from the earlier day."""
    h = pg_harness
    start = threading.Barrier(len(DAYS))
    errors: list[BaseException] = []

    def sync_day(index: int) -> None:
        try:
            job = run_job(f"day{index}")
            start.wait()
            sync_partition(job, DAYS[index])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync_day, args=(i,)) for i in range(len(DAYS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    check_each_id_posted_once_from_its_first_day(h)
    h.record("7e. days of one run at the same time", len(h.manifest.expected_events))


def test_a_later_day_synced_first_leaves_the_shared_ids_to_the_earlier_day(pg_harness: Harness):
    """7f. The last day is synced to the end before the others start."""
    h = pg_harness
    for day in reversed(DAYS):
        sync_partition(run_job(day.isoformat()), day)
    check_each_id_posted_once_from_its_first_day(h)
    h.record("7f. days of one run, latest first", len(h.manifest.expected_events))


def test_an_earlier_day_that_fails_mid_way_sends_the_shared_ids_on_its_retry(pg_harness: Harness):
    """7g. Day 1 fails after its first send (Hyperline unreachable); day 2 syncs while day 1 waits
    for its retry, then the retry finishes day 1: the ids on both days are posted once, from day 1."""
    h = pg_harness
    real = make_sender()
    sent: list[int] = []

    class FailingAfterOneSend:
        def send_events(self, events, **options):
            if sent:
                raise HyperlineUnavailableError("connection refused (injected)")
            sent.append(1)
            return real.send_events(events, **options)

    with pytest.raises(HyperlineUnavailableError):
        sync_partition(run_job("day0-try1", sender=FailingAfterOneSend()), DAYS[0])
    sync_partition(run_job("day1-try1"), DAYS[1])
    sync_partition(run_job("day0-try2"), DAYS[0])
    sync_partition(run_job("day2-try1"), DAYS[2])
    check_each_id_posted_once_from_its_first_day(h)
    h.record("7g. earlier day failed, later day synced, earlier day retried", len(h.manifest.expected_events))
