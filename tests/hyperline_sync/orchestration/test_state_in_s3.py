"""The operations that came after the state store, with the state in S3 (moto's server) and the ledger
in Postgres: a sync with `corrections: retract` and `report.sum_properties`, its summary (usage.csv,
report.html), a correction from the source, `replay-dead-letters`, `reconcile`, `status` and the asset
events. Nothing may be written to a local folder: every file is read from and written to S3."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
import yaml

from hyperline_devtools.emulator import Emulator, Faults
from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.insight.usage import read_usage
from hyperline_sync.orchestration import tasks
from hyperline_sync.orchestration.assets import done_partitions
from hyperline_sync.orchestration.cli import main
from hyperline_sync.orchestration.cli.status import pipeline_status
from hyperline_sync.state import audit, store
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.report import read_outcomes, run_dir
from hyperline_sync.state.store import Location, RemotePath, open_location
from tests.hyperline_sync.pipeline.test_corrections import rewrite

DAY = dt.date(2026, 8, 3)
PIPELINE = "s3ops"
API_KEY = "s3ops_secret_key"


@pytest.fixture
def setup(tmp_path, monkeypatch, s3_client, aws_conn_id, postgres_url) -> Iterator[tuple]:
    archive = generate_archive(tmp_path / "archive", "s3opsSrc1", [DAY], 600, seed=9, objects_per_day=2)
    bucket = f"state-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    url = sa.engine.make_url(postgres_url)
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_S3OPS", json.dumps(
        {"conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username, "schema": url.database}))
    config = tmp_path / "pipelines.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"dir": f"s3://{bucket}/hyperline-sync", "conn_id": aws_conn_id, "ledger_conn_id": "ledger_s3ops"},
        "pipelines": [{
            "name": PIPELINE, "hyperline_conn_id": "hyperline_s3ops", "corrections": "retract",
            "source": {"kind": "s3_archive", "url": f"file://{archive.root}", "source_id": archive.source_id},
            "tuning": {"chunk_size": 150, "batch_size": 50, "send_backoff_seconds": 0.01},
            "report": {"sum_properties": {"API Call": ["ms"]}}}]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)  # a state URL taken for a local path would show up here
    root = open_location(f"s3://{bucket}/hyperline-sync", aws_conn_id)
    with Emulator(api_key=API_KEY) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_HYPERLINE_S3OPS", json.dumps(
            {"conn_type": "hyperline", "host": emulator.url, "password": API_KEY}))
        yield archive, config, root, emulator
    assert sorted(os.listdir(tmp_path)) == ["archive", "pipelines.yaml"]  # nothing written locally


def letters(outputs: Location) -> list[dict]:
    folder = outputs / PIPELINE / "dead_letters"
    return [row for e in store.list_files(folder, recursive=True) if e.name.endswith(".jsonl.gz")
            for row in read_dead_letters(folder / e.name)]


def run(run_id: str) -> dict:
    tasks.sync(PIPELINE, [DAY.isoformat()], {}, run_id)
    return tasks.summarize(PIPELINE, [[DAY.isoformat()]], {}, run_id)


def test_sync_corrections_replay_reconcile_and_status_with_the_state_in_s3(setup, capsys) -> None:
    archive, config, root, emulator = setup
    assert isinstance(root, RemotePath)
    outputs = root / "reports"
    refused = next(e.customer_id for e in archive.expected_events.values())
    refused_ids = {i for i, e in archive.expected_events.items() if e.customer_id == refused}
    emulator.set_faults(Faults(reject_customer_ids=frozenset({refused})))

    # A sync whose summary (usage.csv with the summed `ms`, report.html) is written to S3.
    run("manual__first")
    folder = run_dir(outputs, PIPELINE, "manual__first")
    usage = read_usage(folder / "usage.csv")
    calls = [e for e in emulator.events.values() if e["event_type"] == "API Call"]
    assert int(usage["events"].sum()) == len(emulator.events) > 0
    assert sum(v for v in usage["sum_ms"] if v is not None) == sum(
        Decimal(repr(e["record"]["ms"])) for e in calls if type(e["record"].get("ms")) in (int, float))
    assert b"<html" in (store.read_bytes(folder / "report.html") or b"").lower()
    assert not refused_ids & set(emulator.events)

    # The source rewrites an object: the manifest of what Hyperline holds is read back from S3.
    before = dict(emulator.events)
    names = {Path(k).name for k in archive.objects}
    target = next(p for p in sorted(archive.root.rglob("*.gz")) if p.name in names)
    gone, changed = rewrite(target, set(before), 3)
    run("manual__second")
    assert set(emulator.events) == set(before) - set(gone)
    assert emulator.events[changed]["record"]["corrected_at_source"] == 42
    outcome = read_outcomes(outputs, PIPELINE, "manual__second")[DAY.isoformat()]
    assert outcome.corrections is not None and outcome.corrections["deleted"] == 3
    assert outcome.corrections["resent"] == 1
    ledger = tasks.ledger_for(tasks.load_pipeline(PIPELINE)[0])
    assert sorted(r["record_id"] for r in audit.rows(ledger.engine, PIPELINE) if r["action"] == "deleted") == \
        sorted(gone)
    assert [e.name for e in store.list_files(root / PIPELINE / "sent", recursive=True)]  # the manifests

    # The customer exists now: the refused lines are replayed from the dead letters in S3.
    dead = letters(outputs)
    hyperline_rows = [r for r in dead if r["reason"].startswith("rejected_by_hyperline")]
    assert {r["event"]["record"]["id"] for r in hyperline_rows} == refused_ids - set(gone)
    emulator.set_faults(Faults())
    assert main(["replay-dead-letters", "--config", str(config), "--pipeline", PIPELINE, "--day", DAY.isoformat(),
                 "--reason", "rejected_by_hyperline"]) == 0
    assert "dead letters left: s3://" in capsys.readouterr().out
    assert refused_ids - set(gone) <= set(emulator.events)
    assert sorted(map(json.dumps, letters(outputs))) == sorted(json.dumps(r) for r in dead if r not in hyperline_rows)

    # Hyperline now holds exactly what the pipeline sends: reconcile says so, and writes its report to S3.
    assert main(["reconcile", "--config", str(config), "--pipeline", PIPELINE, "--start", DAY.isoformat(),
                 "--end", (DAY + dt.timedelta(days=1)).isoformat()]) == 0
    report_line = [line for line in capsys.readouterr().err.splitlines() if line.startswith("report: ")]
    assert report_line and report_line[0].startswith("report: s3://")
    reports = [e.name for e in store.list_files(outputs / PIPELINE / "runs", recursive=True)
               if e.name.endswith("/reconcile.json")]
    (reconcile_report,) = [orjson.loads(store.read_bytes(outputs / PIPELINE / "runs" / n) or b"") for n in reports]
    assert reconcile_report["complete"] is True and reconcile_report["checked"] == len(emulator.events)

    # status counts the dead letters left in S3; the asset events read the outcomes there.
    status = pipeline_status(str(config), PIPELINE, 3650)
    left = letters(outputs)
    assert sum(status["dead_letters"].get(DAY.isoformat(), {}).values()) == len(left) > 0
    (event,) = done_partitions(PIPELINE, [[DAY.isoformat()]], {}, "manual__second")
    assert event["partition"] == DAY.isoformat() and event["sent"] == outcome.counts.sent
