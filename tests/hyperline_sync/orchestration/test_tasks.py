"""tasks: a dry run's days dedup against each other, what a sync does with busy days, secrets in
error texts, and a failed plan (file:// archive, SQLite ledger)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from hyperline_provider.exceptions import HyperlineAuthError
from hyperline_sync.orchestration import planning, tasks
from hyperline_sync.pipeline.partitions import PlanError
from hyperline_sync.pipeline.sync import dry_run_dir
from tests.dag_runs import run_dag, use_pipeline
from tests.recording_sender import Recorder

DAYS = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(3)]
LABELS = [d.isoformat() for d in DAYS]
PIPELINE = "order"
RUN = "manual__2026-05-04T00:00:00+00:00"


def pipeline(manifest: SampleManifest, **tuning: int) -> dict:
    return {
        "name": PIPELINE,
        "source": {"kind": "s3_archive", "url": manifest.root.as_uri(), "source_id": manifest.source_id},
        "hyperline_conn_id": "unused",
        "tuning": tuning,
    }


@pytest.fixture
def manifest(tmp_path: Path) -> SampleManifest:
    return generate_archive(tmp_path / "archive", "orderSrc", DAYS, 200, seed=3, objects_per_day=2)


@pytest.fixture
def state(manifest: SampleManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_pipeline(pipeline(manifest), tmp_path, monkeypatch)


def test_a_dry_run_s_days_dedup_against_each_other_in_any_order(state: Path) -> None:
    dry = {"dry_run": True}
    # The second day first: it drops its copies of the first day's ids, read from the first day's objects.
    second = tasks.sync(PIPELINE, [LABELS[1]], dry, RUN, run_days=LABELS)[0]
    tasks.sync(PIPELINE, [LABELS[0]], dry, RUN, run_days=LABELS)
    assert not (state / PIPELINE).exists()  # real state untouched: no ids, no unit indexes
    real = tasks.sync(PIPELINE, LABELS[:2], {}, "manual__real", sender=Recorder())[1]
    assert second == real | {"status": "dry_run"}
    tasks.summarize(PIPELINE, [LABELS[:2]], dry, RUN)
    assert not (dry_run_dir(state / "reports", PIPELINE, RUN) / "state").exists()


def hold(day: str, owner: str = "backfill__other") -> None:
    """Another run's live claim on `day`."""
    config, _ = tasks.load_pipeline(PIPELINE)
    tasks.ledger_for(config).claim(PIPELINE, day, owner, dt.timedelta(hours=1), run_id=owner)


def outcome_files(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "reports").rglob("partitions/*.json"))


def test_a_group_whose_days_are_all_busy_may_wait_leaving_no_outcome(state: Path) -> None:
    hold(LABELS[1])
    with pytest.raises(tasks.PartitionsBusyError, match="backfill__other"):
        tasks.sync(PIPELINE, [LABELS[1]], {}, RUN, sender=Recorder(), wait_if_busy=True)
    assert outcome_files(state) == []


def test_without_waiting_a_busy_day_fails_with_its_outcome(state: Path) -> None:
    hold(LABELS[1])
    with pytest.raises(tasks.PartitionFailedError, match="is being synced by backfill__other"):
        tasks.sync(PIPELINE, [LABELS[1]], {}, RUN, sender=Recorder())
    assert outcome_files(state) == [f"{LABELS[1]}.json"]


def test_a_group_with_some_busy_days_syncs_the_others_and_fails(
    state: Path, manifest: SampleManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_pipeline(pipeline(manifest, dedup_window_days=1), tmp_path, monkeypatch)  # days 1 and 3: not neighbours
    hold(LABELS[2])
    with pytest.raises(tasks.PartitionFailedError, match=LABELS[2]):
        tasks.sync(PIPELINE, LABELS[:1] + LABELS[2:], {}, RUN, sender=Recorder(), wait_if_busy=True)
    assert outcome_files(state) == [f"{LABELS[0]}.json", f"{LABELS[2]}.json"]


@pytest.mark.parametrize("retention", [None, 30])
def test_summarize_prunes_ids_past_state_retention_days(
    manifest: SampleManifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retention: int | None
) -> None:
    tuning = {} if retention is None else {"state_retention_days": retention}
    state = use_pipeline(pipeline(manifest, **tuning), tmp_path, monkeypatch)
    tasks.sync(PIPELINE, LABELS, {}, RUN, sender=Recorder())
    assert sorted(p.name for p in (state / PIPELINE / "ids").iterdir()) == LABELS
    written = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).timestamp()
    for path in (state / PIPELINE / "ids").rglob("*.parquet"):
        os.utime(path, (written, written))  # as if this run had been a month ago
    tasks.sync(PIPELINE, LABELS, {"dry_run": True}, "manual__dry")
    tasks.summarize(PIPELINE, [LABELS], {"dry_run": True}, "manual__dry")  # a dry run prunes nothing
    assert sorted(p.name for p in (state / PIPELINE / "ids").iterdir()) == LABELS
    tasks.summarize(PIPELINE, [LABELS], {}, RUN)
    # These days are months before today and their ids a month old: past 30 days of retention.
    assert sorted(p.name for p in (state / PIPELINE / "ids").iterdir()) == ([] if retention else LABELS)


API_KEY = "key_SENTINEL_tasks_7c1d"


class LeakingSender:
    """A sender whose error (as a proxy might echo the request) holds the API key and a Bearer token."""

    def send_events(self, events, *, prevalidated: bool = False):
        raise RuntimeError(f"proxy refused: Authorization: Bearer prod_secret123\nx-api-key: {API_KEY}\n")


def test_secrets_in_an_error_reach_no_sink(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_UNUSED", json.dumps({"conn_type": "hyperline", "password": API_KEY}))
    with pytest.raises(Exception) as raised:  # any type: only its text matters
        tasks.sync(PIPELINE, [LABELS[0]], {}, RUN, sender=LeakingSender())
    with pytest.raises(tasks.RunFailedError) as failed:
        tasks.summarize(PIPELINE, [[LABELS[0]]], {}, RUN)
    config, _ = tasks.load_pipeline(PIPELINE)
    ledger = tasks.ledger_for(config)
    texts = {
        "raised": str(raised.value),
        "summarize": str(failed.value),
        "ledger": ledger.partitions(PIPELINE)[LABELS[0]].last_error,
        "ledger objects": " ".join(str(o["error"]) for o in ledger.objects(PIPELINE, LABELS[0])),
        "outcome and report": " ".join(p.read_text() for p in (state / "reports").rglob("*.json")),
    }
    assert "proxy refused" in texts["ledger"] and "proxy refused" in texts["outcome and report"]
    for where, text in texts.items():
        assert "prod_secret123" not in text and API_KEY not in text, f"a secret reached {where}: {text}"


def test_a_failed_plan_makes_summarize_say_planning_failed(state: Path) -> None:
    backwards = {"start": LABELS[2], "end": LABELS[0]}
    with pytest.raises(PlanError):
        planning.plan(PIPELINE, backwards, None, dt.datetime.now(dt.UTC), run_id=RUN)
    with pytest.raises(tasks.RunFailedError, match=r"planning failed, nothing was synced: PlanError: end \("):
        tasks.summarize(PIPELINE, None, backwards, RUN)
    with pytest.raises(tasks.RunFailedError, match="the plan task left no plan and no error"):
        tasks.summarize(PIPELINE, None, {}, "manual__never_planned")


@pytest.mark.slow
def test_a_dag_run_whose_plan_fails_names_the_failure(state: Path, capfd: pytest.CaptureFixture, airflow_db) -> None:
    run = run_dag(f"segment_to_hyperline__{PIPELINE}", {"start": LABELS[2], "end": LABELS[0]})
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["plan"] == "failed" and states["summarize"] == "failed", states
    out = capfd.readouterr().out
    assert "planning failed, nothing was synced: PlanError: end (2026-05-01) must be after start (2026-05-03)" in out
    assert "NoneType" not in out


@pytest.mark.parametrize(("raised", "fatal"), [
    (HyperlineAuthError("401 for Bearer prod_secret123"), True),
    (RuntimeError("proxy said Bearer prod_secret123"), False),
])
def test_a_redacted_error_keeps_whether_a_retry_can_fix_it(raised: Exception, fatal: bool) -> None:
    with pytest.raises(tasks.SyncError) as caught:
        tasks._raise_redacted(raised, ("prod_secret123",))
    assert "prod_secret123" not in str(caught.value)
    assert caught.value.fatal is fatal  # the DAG fails a fatal one at once instead of retrying it
