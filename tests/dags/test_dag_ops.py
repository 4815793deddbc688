"""Running the DAG as a service: asset events per partition left done, notifiers on success and
failure (one that raises never changes the run's state), the daily companion DAG, the deadline, and
the replay of dead letters as a DAG param. Real DagRuns (dag.test) against the emulator."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hyperline_devtools.emulator import Faults
from hyperline_devtools.sample_archive import generate_archive
from tests.dag_runs import DAG_FILE, DagHarness, pipeline_with_emulator, run_dag, use_pipeline

DAYS = [dt.date(2026, 7, 1), dt.date(2026, 7, 2)]
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}
API_KEY = "ops_dag_secret"
NAME = "opsdag"

pytestmark = pytest.mark.slow


def notified(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return generate_archive(tmp_path_factory.mktemp("archive"), "opsDag01", DAYS, 400, seed=9, objects_per_day=2)


@pytest.fixture
def harness(archive, tmp_path, monkeypatch):
    out = tmp_path / "notified.jsonl"
    raising = {"class": "tests.notifiers.RaisingNotifier"}
    pipeline = {
        "name": NAME,
        "source": {"kind": "s3_archive", "url": f"file://{archive.root}", "source_id": archive.source_id},
        "hyperline_conn_id": "hyperline_opsdag",
        # No deadline here: dag.test() of Airflow 3.3 cannot run a DAG with one (it reads the alerts'
        # ids from a DAG it did not store); the deadline is checked on the parsed DAG below.
        "tuning": {"retries": 0, "chunk_size": 300, "batch_size": 200},
        "notifications": {
            "on_success": [dict(raising), {"class": "tests.notifiers.FileNotifier",
                                     "kwargs": {"path": str(out), "message": "ok {{ dag_run.run_id }}"}}],
            "on_failure": [dict(raising), {"class": "tests.notifiers.FileNotifier",
                                     "kwargs": {"path": str(out), "message": "failed {{ dag.dag_id }}"}}],
        },
    }
    with pipeline_with_emulator(pipeline, API_KEY, tmp_path, monkeypatch) as (state_dir, emulator):
        yield DagHarness(NAME, emulator, state_dir), out


def asset_events(run_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetModel.uri).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id, AssetEvent.source_dag_id == f"segment_to_hyperline__{NAME}")
        ).all()
    return sorted(({"uri": uri, **extra} for extra, uri in rows), key=lambda e: e["partition"])


def test_each_day_left_done_emits_an_asset_event_and_success_is_notified(harness):
    h, out = harness
    run = h.run(RANGE)
    assert run.state == "success"  # the raising notifier did not change it
    report = {p["partition"]: p for p in h.report(run)["partitions"]}
    events = asset_events(run.run_id)
    assert [e["partition"] for e in events] == [d.isoformat() for d in DAYS]
    for event in events:
        assert event["uri"] == f"hyperline://{NAME}/usage"
        assert event["new"] is True and event["replay"] is False and event["run_id"] == run.run_id
        assert {k: event[k] for k in ("read", "sent", "rejected", "skipped", "duplicates")} == {
            k: report[event["partition"]]["counts"][k] for k in ("read", "sent", "rejected", "skipped", "duplicates")}
    assert notified(out) == [{"message": f"ok {run.run_id}", "state": "success", "reason": "success"}]

    # Nothing new: the days still get their event, so downstream DAGs know they were checked.
    again = h.run(RANGE)
    assert [(e["partition"], e["new"], e["read"]) for e in asset_events(again.run_id)] == [
        (d.isoformat(), False, 0) for d in DAYS]

    dry = h.run({**RANGE, "dry_run": True, "resend": True})
    assert dry.state == "success" and asset_events(dry.run_id) == []


def test_a_failed_run_notifies_failure_and_emits_events_only_for_days_done(harness, monkeypatch):
    h, out = harness
    h.emulator.set_faults(Faults(always_status=400))  # Hyperline refuses every request: nothing is done
    run = h.run({"partitions": [DAYS[0].isoformat()]})
    assert run.state == "failed"
    assert asset_events(run.run_id) == []
    assert notified(out) == [{"message": f"failed segment_to_hyperline__{NAME}", "state": "failed",
                             "reason": "task_failure"}]


def test_replay_param_sends_the_refused_lines_after_the_fix(archive, harness):
    h, _out = harness
    refused = next(e.customer_id for e in archive.expected_events.values() if e.day == DAYS[0])
    refused_ids = {i for i, e in archive.expected_events.items() if e.customer_id == refused and e.day == DAYS[0]}
    h.emulator.set_faults(Faults(reject_customer_ids=frozenset({refused})))
    assert h.run({"partitions": [DAYS[0].isoformat()]}).state == "success"
    assert refused_ids and not refused_ids & set(h.emulator.events)
    h.emulator.set_faults(Faults())
    replay = h.run({"partitions": [DAYS[0].isoformat()], "replay_dead_letters": True,
                    "replay_reason": "rejected_by_hyperline"})
    assert replay.state == "success"
    assert refused_ids <= set(h.emulator.events)
    (partition,) = h.report(replay)["partitions"]
    assert partition["counts"]["sent"] == partition["counts"]["read"] >= len(refused_ids)
    (event,) = asset_events(replay.run_id)
    assert event["replay"] is True and event["sent"] == partition["counts"]["sent"]


def load_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FILE))


def test_the_daily_companion_dag_runs_one_day_per_run(harness):
    from airflow.sdk import CronDataIntervalTimetable

    bag = load_bag()
    hourly, daily = bag.get_dag(f"segment_to_hyperline__{NAME}"), bag.get_dag(f"segment_to_hyperline__{NAME}__daily")
    assert isinstance(daily.timetable, CronDataIntervalTimetable) and daily.timetable.expression == "0 0 * * *"
    assert set(daily.task_dict) == set(hourly.task_dict) and set(daily.params) == set(hourly.params)
    assert "backfill" in daily.tags and "inclusive" in daily.doc_md
    # A run whose data interval is day D syncs D, and no lookback day before it.
    run = run_dag(daily.dag_id, logical_date=dt.datetime.combine(DAYS[1] + dt.timedelta(days=1), dt.time(),
                                                                 tzinfo=dt.UTC))
    assert run.state == "success"
    assert (run.data_interval_start.date(), run.data_interval_end - run.data_interval_start) == (
        DAYS[1], dt.timedelta(days=1))
    h, _out = harness
    assert [p["partition"] for p in h.report(run)["partitions"]] == [DAYS[1].isoformat()]


def test_deadline_minutes_puts_a_deadline_alert_on_the_hourly_dag_only(tmp_path, monkeypatch):
    from airflow.sdk.definitions.deadline import DeadlineAlert

    use_pipeline({"name": NAME, "source": {"kind": "s3_archive", "url": f"file://{tmp_path}", "source_id": "s1"},
                  "tuning": {"deadline_minutes": 90}}, tmp_path, monkeypatch)
    bag = load_bag()
    hourly, daily = bag.get_dag(f"segment_to_hyperline__{NAME}"), bag.get_dag(f"segment_to_hyperline__{NAME}__daily")
    (alert,) = hourly.deadline if isinstance(hourly.deadline, list) else [hourly.deadline]
    assert isinstance(alert, DeadlineAlert) and alert.interval == dt.timedelta(minutes=90)
    assert alert.callback.path == "hyperline_sync.orchestration.notify.deadline_missed"
    assert not daily.deadline
