"""The sync DAG end to end: real DagRuns (dag.test) over an archive on a real S3 API server (moto over
HTTP), sending to the Hyperline emulator on 127.0.0.1, with the ledger in SQLite.

What is asserted comes from the archive generator's manifest (written independently of the
transform) and from what the emulator received.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hyperline_devtools.sample_archive import SampleManifest, day_folder_ms, generate_archive
from hyperline_sync.orchestration import tasks
from hyperline_sync.state.store import open_location
from tests.dag_runs import DagHarness, pipeline_with_emulator

DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(3)]
API_KEY = "test_e2e_secret_key"
PIPELINE = "e2e"
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> SampleManifest:
    return generate_archive(tmp_path_factory.mktemp("archive"), "e2eSrc01", DAYS, 1500, seed=11, objects_per_day=3)


@dataclass
class Harness(DagHarness):
    manifest: SampleManifest
    bucket: str
    s3: Any


def harness_for(archive, s3_client, aws_conn_id, tmp_path, monkeypatch, state: dict | None = None) -> Iterator[Harness]:
    bucket = f"seg-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    for path in sorted(archive.root.rglob("*")):
        if path.is_file() and path.name != "sample-manifest.json":
            s3_client.put_object(Bucket=bucket, Key=f"logs/{path.relative_to(archive.root).as_posix()}",
                                 Body=path.read_bytes())
    pipeline = {
        "name": PIPELINE,
        "source": {"kind": "s3_archive", "url": f"s3://{bucket}/logs", "source_id": archive.source_id,
                   "aws_conn_id": aws_conn_id},
        "hyperline_conn_id": "hyperline_e2e",
        "tuning": {"retries": 0, "chunk_size": 700, "batch_size": 500},
    }
    with pipeline_with_emulator(pipeline, API_KEY, tmp_path, monkeypatch, state) as (state_dir, emulator):
        yield Harness(PIPELINE, emulator, state_dir, archive, bucket, s3_client)


@pytest.fixture
def harness(archive, s3_client, aws_conn_id, tmp_path, monkeypatch) -> Iterator[Harness]:
    yield from harness_for(archive, s3_client, aws_conn_id, tmp_path, monkeypatch)


@pytest.fixture
def s3_state_harness(archive, s3_client, aws_conn_id, tmp_path, monkeypatch, postgres_url) -> Iterator[Harness]:
    """State (ids, checkpoints, reports, dead letters, dry-run output) in S3, the ledger in Postgres:
    what a multi-worker deployment uses."""
    bucket = f"state-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    url = sa.engine.make_url(postgres_url)
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_E2E", json.dumps(
        {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}))
    state = {"dir": f"s3://{bucket}/hyperline-sync", "conn_id": aws_conn_id, "ledger_conn_id": "ledger_e2e"}
    for h in harness_for(archive, s3_client, aws_conn_id, tmp_path, monkeypatch, state):
        h.output_dir = open_location(f"s3://{bucket}/hyperline-sync", aws_conn_id) / "reports"
        h.ledger_url = postgres_url
        yield h
        assert not (tmp_path / "state").exists()  # nothing was written locally

def assert_delivered_exactly(h: Harness) -> None:
    expected = h.manifest.expected_events
    assert set(h.emulator.events) == set(expected)
    for message_id, event in expected.items():
        got = h.emulator.events[message_id]
        assert (got["customer_id"], got["event_type"], got["timestamp"]) == (
            event.customer_id, event.event_type, event.timestamp), message_id
        assert got["record"] == event.record


def test_run_delivers_every_event_once_then_reruns_resend_and_dry_run(harness):
    main_scenario(harness)


def test_the_main_scenario_with_the_state_in_s3_and_the_ledger_in_postgres(s3_state_harness):
    main_scenario(s3_state_harness)
    listed = s3_state_harness.s3.list_objects_v2(Bucket=s3_state_harness.output_dir.backend.bucket)["Contents"]
    assert any(o["Key"].endswith(".parquet") for o in listed)  # the dedup ids went to S3 too


def main_scenario(h: Harness) -> None:
    first = h.run(RANGE)
    assert first.state == "success"
    assert_delivered_exactly(h)
    assert max(h.emulator.post_counts.values()) == 1

    report = h.report(first)
    totals = h.manifest.totals
    assert report["balanced"] is True
    assert report["totals"]["read"] == h.manifest.lines_total
    assert report["totals"]["sent"] == len(h.manifest.expected_events)
    assert report["totals"]["duplicates"] == totals.duplicates
    assert report["totals"]["skipped"] == totals.skipped
    assert report["totals"]["rejected"] == totals.rejected_total
    assert sum(p["dropped_properties"] for p in report["partitions"]) == totals.dropped_properties
    assert [p["partition"] for p in report["partitions"]] == [d.isoformat() for d in DAYS]

    letters = h.dead_letters()
    assert len(letters) == report["totals"]["rejected"]
    assert all(row["reason"] and row["source_key"] and row["line_no"] for row in letters)
    assert h.manifest.write_key not in json.dumps(letters)

    # A second run over the same range finds every object done and sends nothing.
    requests_before = h.emulator.requests
    second = h.run(RANGE)
    assert second.state == "success"
    assert h.emulator.requests == requests_before
    assert h.report(second)["totals"]["read"] == 0

    # resend: every event again, upserted on record.id, so Hyperline still holds one copy each.
    third = h.run({**RANGE, "resend": True})
    assert third.state == "success"
    assert set(h.emulator.post_counts.values()) == {2}
    assert_delivered_exactly(h)

    # dry run: nothing sent, the would-be events are written next to the report.
    requests_before = h.emulator.requests
    dry = h.run({**RANGE, "dry_run": True, "resend": True})
    assert dry.state == "success"
    assert h.emulator.requests == requests_before
    dry_report = h.report(dry)
    outputs = [p["dry_run_output"] for p in dry_report["partitions"]]
    written = [json.loads(line) for path in outputs for line in gzip.decompress(h.read_output(path)).splitlines()]
    assert {e["record"]["id"] for e in written} == set(h.manifest.expected_events)
    # Exactly what a real run sends: a messageId on two days of the dry run is written once, from
    # the earlier day, and the dry run's counts are the real run's.
    assert len(written) == len(h.manifest.expected_events)
    assert dry_report["totals"] == h.report(third)["totals"]


def test_scheduled_run_syncs_its_interval_and_the_day_before(harness):
    h = harness
    run = h.run(logical_date=dt.datetime.combine(DAYS[2], dt.time(10), tzinfo=dt.UTC))
    assert run.state == "success"
    assert run.data_interval_end - run.data_interval_start == dt.timedelta(hours=1)
    synced = [p["partition"] for p in h.report(run)["partitions"]]
    assert synced == [DAYS[1].isoformat(), DAYS[2].isoformat()]
    expected = {i for i, e in h.manifest.expected_events.items() if e.day in DAYS[1:]}
    first_day_only = {i for i, e in h.manifest.expected_events.items() if e.day == DAYS[0]}
    assert expected <= set(h.emulator.events)
    # Only repeats of DAYS[0] messages may come from outside the interval's days, never DAYS[0] itself.
    assert len(set(h.emulator.events) & first_day_only) <= h.manifest.totals.duplicates
    assert max(h.emulator.post_counts.values()) == 1


def test_a_day_another_run_holds_is_waited_for_rather_than_failed(harness, monkeypatch):
    h = harness
    day, other = DAYS[0].isoformat(), "backfill__2026-03-01T00:00:00+00:00"
    ledger = h.ledger()
    previous = ledger.claim(PIPELINE, day, other, dt.timedelta(hours=1), run_id=other)
    busy: list[str] = []
    real_sync = tasks.sync

    def sync_then_give_back(*args, **kwargs):
        try:
            return real_sync(*args, **kwargs)
        except tasks.PartitionsBusyError as exc:  # the other run finishes while this task waits
            busy.append(str(exc))
            ledger.release(PIPELINE, day, other, previous)
            raise

    monkeypatch.setattr(tasks, "sync", sync_then_give_back)
    # tuning.retries is 0 here: a busy day that failed instead of rescheduling would fail the run
    run = h.run({"start": day, "end": DAYS[1].isoformat()})
    assert len(busy) == 1 and other in busy[0]
    assert run.state == "success"
    report = h.report(run)
    assert [(p["partition"], p["status"]) for p in report["partitions"]] == [(day, "done")]
    assert set(h.emulator.events) == {i for i, e in h.manifest.expected_events.items() if e.day == DAYS[0]}


def test_a_failed_partition_is_named_and_a_rerun_of_failed_partitions_completes(harness):
    h = harness
    broken_key = f"logs/segment-logs/{h.manifest.source_id}/{day_folder_ms(DAYS[1])}/zz-broken.gz"
    h.s3.put_object(Bucket=h.bucket, Key=broken_key, Body=b"\x1f\x8b\x08\x00" + b"not really gzip" * 100)

    failed = h.run(RANGE)
    assert failed.state == "failed"
    report = h.report(failed)
    # The next day of the run fails too: it cannot tell which of its messageIds the broken object holds.
    assert report["failed_partitions"] == [DAYS[1].isoformat(), DAYS[2].isoformat()]
    errors = {p["partition"]: p["error"] for p in report["partitions"] if p["status"] == "failed"}
    assert "zz-broken.gz" in errors[DAYS[1].isoformat()]
    assert f"earlier day {DAYS[1]}" in errors[DAYS[2].isoformat()] and "zz-broken.gz" in errors[DAYS[2].isoformat()]
    state = h.ledger().partitions(PIPELINE)[DAYS[1].isoformat()]
    assert state.status == "failed" and "zz-broken.gz" in state.last_error
    # The other objects of the failed day and the days before it were still delivered.
    assert set(h.emulator.events) == {i for i, e in h.manifest.expected_events.items() if e.day < DAYS[2]}

    h.s3.delete_object(Bucket=h.bucket, Key=broken_key)  # the operator fixes the cause
    requests_before = h.emulator.requests
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    assert [p["partition"] for p in h.report(rerun)["partitions"]] == [DAYS[1].isoformat(), DAYS[2].isoformat()]
    fixed_day = h.report(rerun)["partitions"][0]
    assert fixed_day["counts"]["read"] == 0 and fixed_day["objects_skipped"] == 3  # its good objects were done
    assert h.emulator.requests > requests_before  # the last day, sent now
    assert max(h.emulator.post_counts.values()) == 1
    assert_delivered_exactly(h)
    assert h.ledger().failed_partitions(PIPELINE) == []


def test_a_wrong_api_key_fails_fast_without_retries_or_leaking_the_key(harness, monkeypatch, caplog):
    h = harness
    monkeypatch.setenv("AIRFLOW_CONN_HYPERLINE_E2E", json.dumps(
        {"conn_type": "hyperline", "host": h.emulator.url, "password": "test_wrong_key_123"}))
    run = h.run({"start": DAYS[0].isoformat(), "end": DAYS[1].isoformat()})
    assert run.state == "failed"
    assert h.emulator.requests == 1
    assert h.emulator.events == {}
    report = h.report(run)
    assert "hyperline_e2e" in report["partitions"][0]["error"]
    assert "test_wrong_key_123" not in json.dumps(report) and "test_wrong_key_123" not in caplog.text


def test_a_dry_run_of_days_never_synced_writes_what_a_real_run_would_send(harness):
    h = harness
    dry = h.run({**RANGE, "dry_run": True})
    assert dry.state == "success"
    assert h.emulator.requests == 0
    report = h.report(dry)
    written = [json.loads(line) for p in report["partitions"]
               for line in gzip.decompress(Path(p["dry_run_output"]).read_bytes()).splitlines()]
    # A messageId on two days of the range is written once, from the earlier day, as a real run sends it.
    assert sorted(e["record"]["id"] for e in written) == sorted(h.manifest.expected_events)
    assert not (h.state_dir / PIPELINE / "ids").exists()  # real state untouched
    # Its dead letters are its own too: a dry run never replaces those of a real run.
    letters = [path for p in report["partitions"] for path in p["dead_letters"]]
    assert letters and all("/dry_run/dead_letters/" in path for path in letters)
    assert not (h.state_dir / "reports" / PIPELINE / "dead_letters").exists()

    real = h.run(RANGE)
    assert real.state == "success"
    assert report["totals"] == h.report(real)["totals"]
    assert_delivered_exactly(h)
