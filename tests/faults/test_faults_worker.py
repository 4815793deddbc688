"""The worker and the state: a worker killed mid-partition, the ledger database down at start, and two
runs (a backfill and the hourly run) syncing the same days at once.

Syncs that must be killed or run side by side run in subprocesses executing the DAG's task body
(`hyperline_sync.orchestration.tasks.sync`, the code the mapped `sync` task runs) with this test's environment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from hyperline_devtools.emulator import Faults
from hyperline_sync.orchestration.tasks import sync as sync_task
from hyperline_sync.pipeline.sync import PartitionFailedError, sync_partition
from hyperline_sync.pipeline.unit_sync import IN_FLIGHT_BATCHES
from hyperline_sync.state.ledger import DONE, RUNNING, partitions_table
from tests.conftest import unused_port
from tests.faults.harness import DAYS, FAST_TUNING, OBJECTS_PER_DAY, PIPELINE, RANGE, Harness, make_job, make_sender

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]  # a hang fails in minutes

ALL_DAYS = [d.isoformat() for d in DAYS]


def sync_code(run_id: str, days: list[str] = ALL_DAYS, barrier: Path | None = None) -> str:
    """What the DAG's mapped sync task runs, for a group of days, as a script. With `barrier`, the
    script imports everything, touches `<barrier>.<pid>.ready`, and starts when `barrier` exists."""
    wait = ""
    if barrier is not None:
        wait = f"""
        import os, pathlib, time
        import hyperline_provider.hooks.hyperline, airflow.providers.amazon.aws.hooks.s3
        import airflow.providers.postgres.hooks.postgres
        pathlib.Path({str(barrier)!r} + f".{{os.getpid()}}.ready").touch()
        while not pathlib.Path({str(barrier)!r}).exists():
            time.sleep(0.002)
        """
    return f"""
        import json
        from hyperline_sync.orchestration import tasks
        {textwrap.indent(textwrap.dedent(wait), " " * 8).strip()}
        try:
            result = tasks.sync({PIPELINE!r}, {days!r}, {{}}, {run_id!r})
            print("SYNC-RESULT", json.dumps(result))
        except Exception as exc:
            print("SYNC-FAILED", type(exc).__name__, exc)
            raise SystemExit(3)
    """


def kill_when(h: Harness, proc: subprocess.Popen, condition: Callable[[], bool], what: str) -> None:
    """SIGKILL `proc` as soon as `condition()` holds (polled on what the emulator stored)."""
    deadline = time.monotonic() + 180
    while not condition():
        assert proc.poll() is None, f"the sync ended (rc={proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def stored_of(h: Harness, day: dt.date) -> int:
    wanted = {i for i, e in h.manifest.expected_events.items() if e.day == day}
    return len(wanted & h.emulator.events.keys())


def mid_object(h: Harness, day: dt.date) -> bool:
    """At least one object of `day` is done and Hyperline holds events of one that is not."""
    done = {key.removeprefix("logs/") for key in h.ledger().done_objects(PIPELINE, day.isoformat())}
    if not done:
        return False
    expected = h.manifest.expected_events
    return any(expected[i].day == day and expected[i].key not in done for i in h.emulator.events if i in expected)


def test_a_worker_killed_mid_partition_resumes_without_losing_events(harness: Harness, tmp_path):
    """3. SIGKILL in the middle of a partition, twice; the same run re-takes its claim, and an expired
    claim lets a rerun of failed partitions finish the job."""
    h = harness
    h.emulator.set_faults(Faults(latency_ms=25))  # requests take a little time, so the kill lands mid-day
    run_a = "manual__2026-04-10T00:00:00+00:00"

    # Kill #1: in the middle of day 2 (day 1 is done, day 2 has some batches acknowledged).
    proc = h.start(sync_code(run_a), tmp_path / "worker-1.log")
    kill_when(h, proc, lambda: mid_object(h, DAYS[1]), "day 2 half sent")
    ledger = h.ledger()
    states = ledger.partitions(PIPELINE)
    assert states[ALL_DAYS[0]].status == DONE
    held = states[ALL_DAYS[1]]
    assert held.status == RUNNING and held.claimed_by.startswith(run_a) and held.claim_expires_at > now()
    assert 0 < len(ledger.done_objects(PIPELINE, ALL_DAYS[1])) < OBJECTS_PER_DAY
    assert ALL_DAYS[2] not in states
    assert 0 < stored_of(h, DAYS[1]) < sum(1 for e in h.manifest.expected_events.values() if e.day == DAYS[1])

    # Another run (the hourly one) cannot take the partition while the claim lives: it fails fast,
    # names the holder, and sends nothing.
    requests = h.emulator.requests
    with pytest.raises(PartitionFailedError, match=re.escape(f"being synced by {run_a}")):
        sync_task(PIPELINE, [ALL_DAYS[1]], {}, "scheduled__2026-04-10T01:00:00+00:00")
    assert h.emulator.requests == requests

    # The same run's retry (an Airflow task retry: another attempt) takes the claim over at once, as its
    # holder is known to have ended (a process of this host that no longer runs), and resumes after
    # the last chunk Hyperline answered. Kill #2: in the middle of day 3.
    proc = h.start(sync_code(run_a), tmp_path / "worker-2.log")
    kill_when(h, proc, lambda: mid_object(h, DAYS[2]), "day 3 half sent")
    states = ledger.partitions(PIPELINE)
    assert states[ALL_DAYS[1]].status == DONE and states[ALL_DAYS[1]].attempts == 2
    assert states[ALL_DAYS[2]].status == RUNNING and states[ALL_DAYS[2]].claimed_by.startswith(run_a)

    # The worker is gone for good. Its claim expires (claim_ttl_minutes; moved into the past here
    # instead of waiting), which makes the partition a failed one: the rerun of failed partitions
    # (another run, so it cannot re-take the claim as its own) finishes the day.
    assert ledger.failed_partitions(PIPELINE) == []
    expire_claims(h)
    assert ledger.failed_partitions(PIPELINE) == [ALL_DAYS[2]]
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    report = h.report(rerun.run_id)
    assert [p["partition"] for p in report["partitions"]] == [ALL_DAYS[2]]
    assert report["partitions"][0]["objects_skipped"] > 0  # objects finished before the kill are not re-read

    h.assert_exact()
    h.assert_ledger_matches_manifest()
    h.assert_report_matches_ledger(report)
    # Sent twice: only what the killed workers had sent of the object they were in (upserts make it
    # harmless); never an event of an object recorded as done.
    twice = {i for i, n in h.emulator.post_counts.items() if n > 1}
    assert max(h.emulator.post_counts.values()) <= 2
    assert len({h.manifest.expected_events[i].key for i in twice}) <= 2
    # ...and of that object only what was posted and not yet checkpointed at each kill (a chunk's slice
    # and the next chunk's first, sent ahead): what Hyperline had answered before was checkpointed, and
    # the resumed syncs did not post it again.
    assert h.posted_again() <= 2 * IN_FLIGHT_BATCHES * FAST_TUNING["batch_size"]
    h.record("3. worker SIGKILLed mid-partition (x2), resume", len(h.manifest.expected_events))


def test_the_ledger_database_unreachable_at_start_fails_clearly_and_sends_nothing(harness: Harness, monkeypatch):
    """6. state.ledger_conn_id points at a Postgres port nobody listens on (connection refused)."""
    h = harness
    port = unused_port()
    password = "pg-pass-SENTINEL-61d2"
    h.evidence.secrets["ledger database password"] = password
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_DOWN", json.dumps({
        "conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "postgres", "password": password,
        "schema": "test"}))
    h.configure(ledger_conn_id="ledger_down", tuning={"retries": 1})
    run = h.run(RANGE)
    assert run.state == "failed"
    assert h.emulator.requests == 0

    output = h.output()
    assert f"cannot reach the ledger database (postgresql+psycopg://postgres:***@127.0.0.1:{port}/test)" in output
    assert "Connection refused" in output or "connection refused" in output
    assert password not in output
    report = h.report(run.run_id)
    assert report["status"] == "failed" and report["failed_partitions"] == ALL_DAYS
    for part in report["partitions"]:
        assert "cannot reach the ledger database" in part["error"], part
        assert part["counts"]["read"] == 0
    h.record("6. ledger DB unreachable at start", 0)


def ids_synced(h: Harness) -> set[str]:
    """Expected events of the days the ledger has as done."""
    done = {d for d, state in h.ledger().partitions(PIPELINE).items() if state.status == DONE}
    return {i for i, e in h.manifest.expected_events.items() if e.day.isoformat() in done}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def expire_claims(h: Harness) -> None:
    p = partitions_table.c
    with h.ledger().engine.begin() as conn:
        conn.execute(partitions_table.update().where(p.claimed_by.is_not(None))
                     .values(claim_expires_at=now() - dt.timedelta(seconds=1)))



def test_two_runs_over_the_same_days_at_once_never_sync_a_partition_twice(harness: Harness, postgres_url, tmp_path,
                                                                          monkeypatch):
    """7. A backfill and the hourly run sync the same three days at the same moment (Postgres ledger)."""
    h = harness
    url = sa.engine.make_url(postgres_url)
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_PG", json.dumps({
        "conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}))
    h.configure(ledger_conn_id="ledger_pg")
    h.ledger_url = postgres_url
    h.emulator.set_faults(Faults(latency_ms=10))
    runs: dict[str, int | None] = {"backfill__2026-04-01T00:00:00+00:00": None,
                                   "scheduled__2026-04-03T10:00:00+00:00": None}
    go = tmp_path / "go"
    procs = {run_id: h.start(sync_code(run_id, barrier=go), tmp_path / f"{run_id[:9]}.log") for run_id in runs}
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*.ready"))) < len(procs):  # both imported everything: start together
        assert all(p.poll() is None for p in procs.values()) and time.monotonic() < deadline
        time.sleep(0.01)
    go.touch()
    for run_id, proc in procs.items():
        runs[run_id] = proc.wait(timeout=240)
        assert runs[run_id] in (0, 3), (tmp_path / f"{run_id[:9]}.log").read_text()[-3000:]

    # Each day was synced by one run; the other found it busy (the same day, or one within the dedup
    # window), and no day failed. Every event was posted once, as its first-received copy.
    statuses = {}
    for day in ALL_DAYS:
        outcomes = [h.outcome(run_id, dt.date.fromisoformat(day)) for run_id in runs]
        statuses[day] = sorted(o["status"] for o in outcomes)
        assert set(statuses[day]) <= {"busy", "done"}, [o["error"] for o in outcomes]
        assert sum(o["objects_synced"] for o in outcomes) <= OBJECTS_PER_DAY
        assert all("is being synced by" in o["error"] or "waits: another run is syncing" in o["error"]
                   for o in outcomes if o["status"] == "busy")
    assert any("busy" in s for s in statuses.values()), f"the runs did not overlap: {statuses}"
    assert max(h.emulator.post_counts.values()) == 1
    h.assert_exact(ids_synced(h))
    # Airflow retries the run(s) that found days busy: they sync what is left (if both runs backed
    # off a day) and find the rest done, sending nothing for it.
    requests, stored = h.emulator.requests, len(h.emulator.events)
    for run_id, code in runs.items():
        if code != 0:
            result = sync_task(PIPELINE, ALL_DAYS, {}, run_id)
            assert [r["status"] for r in result] == ["done"] * len(ALL_DAYS)
    if len(ids_synced(h)) == stored:
        assert h.emulator.requests == requests
    assert max(h.emulator.post_counts.values()) == 1
    h.assert_exact()
    h.assert_ledger_matches_manifest()
    h.record("7. backfill + hourly run at once (Postgres ledger)", len(h.manifest.expected_events))


def test_two_processes_of_the_same_run_never_both_sync_a_partition(harness: Harness, tmp_path):
    """3b. A zombie task and its retry (or a task cleared while still running): two processes of the
    same run sync the same days at the same moment. Each claim belongs to one attempt: one process
    syncs a day, the other finds it (or a neighbour within the dedup window) busy."""
    h = harness
    h.emulator.set_faults(Faults(latency_ms=10))
    run_a = "manual__2026-04-10T00:00:00+00:00"
    go = tmp_path / "go"
    procs = [h.start(sync_code(run_a, barrier=go), tmp_path / f"attempt-{n}.log") for n in (1, 2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*.ready"))) < len(procs):  # both imported everything: start together
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
        time.sleep(0.01)
    go.touch()
    codes = [proc.wait(timeout=240) for proc in procs]
    logs = [(tmp_path / f"attempt-{n}.log").read_text() for n in (1, 2)]
    assert set(codes) <= {0, 3}, logs
    assert any("is being synced by" in log or "waits: another run is syncing" in log for log in logs), logs
    assert max(h.emulator.post_counts.values()) == 1  # never both: every event posted once
    h.assert_exact(ids_synced(h))
    # Airflow retries the task: it syncs whatever both backed off from, sending nothing twice.
    sync_task(PIPELINE, ALL_DAYS, {}, run_a)
    h.assert_exact()
    assert max(h.emulator.post_counts.values()) == 1
    h.assert_ledger_matches_manifest()
    h.record("3b. two processes of one run at once (zombie + retry)", len(h.manifest.expected_events))


def test_the_ledger_going_down_mid_partition_costs_a_rerun_no_resend(harness: Harness, postgres_url, monkeypatch):
    """6b. The ledger database (Postgres) stops taking connections in the middle of an object; it
    comes back and the partition is synced again. What Hyperline answered before the outage was
    checkpointed next to the dedup ids, not in the ledger: the rerun posts none of it again."""
    h = harness
    url = sa.engine.make_url(postgres_url)
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_PG", json.dumps({
        "conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}))
    h.configure(ledger_conn_id="ledger_pg", tuning={"chunk_size": 500})
    h.ledger_url = postgres_url
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def allow_connections(allow: bool) -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {str(allow).lower()}'))
            if not allow:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": url.database})

    real = make_sender()

    class CuttingSender:
        """Takes the ledger down right after the 6th send (the middle of the day's second object)."""

        calls = 0

        def send_events(self, events, **options):
            result = real.send_events(events, **options)
            self.calls += 1
            if self.calls == 6:
                allow_connections(False)
            return result

    try:
        with pytest.raises(Exception, match=r"(?i)connection|ledger"):
            sync_partition(make_job("manual__2026-04-10T00:00:00+00:00", sender=CuttingSender()), DAYS[0])
    finally:
        allow_connections(True)
        admin.dispose()
    expected = {i for i, e in h.manifest.expected_events.items() if e.day == DAYS[0]}
    assert 0 < len(h.emulator.events) < len(expected)
    expire_claims(h)  # its claim runs out: the worker had stopped renewing it
    sync_partition(make_job("manual__2026-04-10T01:00:00+00:00"), DAYS[0])
    h.assert_exact(expected)
    h.assert_ledger_matches_manifest([DAYS[0]])
    assert h.posted_again() == 0
    h.record("6b. ledger DB down mid-partition, rerun", len(expected))
