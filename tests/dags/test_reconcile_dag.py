"""The reconcile DAG end to end: real DagRuns (dag.test) of the sync DAG, then of the reconcile DAG,
against the Hyperline emulator over HTTP and an archive read through file://."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.orchestration.reconcile_dag import reconcile_range
from hyperline_sync.state.report import run_dir
from tests.dag_runs import pipeline_with_emulator, run_dag

DAYS = [dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(2)]
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}
PIPELINE = "recdag"
KEY = "key_reconcile_dag_9d2e"

pytestmark = pytest.mark.slow


def test_reconcile_dag_fails_on_missing_events_and_a_repair_run_fixes_them(tmp_path, monkeypatch) -> None:
    archive = generate_archive(tmp_path / "archive", "recSrc01", DAYS, 300, seed=5, objects_per_day=2)
    pipeline = {"name": PIPELINE, "source": {"kind": "s3_archive", "url": f"file://{archive.root}",
                                             "source_id": archive.source_id},
                "hyperline_conn_id": "hyperline_recdag", "tuning": {"retries": 0}}
    with pipeline_with_emulator(pipeline, KEY, tmp_path, monkeypatch) as (state_dir, emulator):
        assert run_dag(f"segment_to_hyperline__{PIPELINE}", RANGE).state == "success"
        lost = sorted(emulator.events)[:4]
        emulator.remove(*lost)

        check = run_dag(f"segment_to_hyperline__{PIPELINE}__reconcile", RANGE)
        counts = run_dag(f"segment_to_hyperline__{PIPELINE}__reconcile", {**RANGE, "counts": True})
        repair = run_dag(f"segment_to_hyperline__{PIPELINE}__reconcile", {**RANGE, "repair": True})

        assert check.state == "failed" and repair.state == "success"
        found = orjson.loads((run_dir(state_dir / "reports", PIPELINE, check.run_id) / "reconcile.json").read_bytes())
        fixed = orjson.loads((run_dir(state_dir / "reports", PIPELINE, repair.run_id) / "reconcile.json").read_bytes())
        assert sorted(found["missing"]) == lost and fixed["repaired"] == 4 and fixed["still_wrong"] == []
        assert all(i in emulator.events for i in lost)
        counted = orjson.loads((run_dir(state_dir / "reports", PIPELINE, counts.run_id) / "reconcile.json")
                               .read_bytes())
        assert counts.state == "failed" and counted["counts_only"] and counted["complete"]
        assert -sum(s["difference"] for t in counted["counts"].values() for s in t.values()) == 4
        assert run_dag(f"segment_to_hyperline__{PIPELINE}__reconcile", {**RANGE, "counts": True}).state == "success"


def test_a_scheduled_run_checks_the_seven_days_before_it() -> None:
    assert reconcile_range({}, dt.date(2026, 5, 10)) == ("2026-05-03", "2026-05-10")
    assert reconcile_range({"start": "2026-01-01", "end": "2026-01-03"}, dt.date(2026, 5, 10)) == (
        "2026-01-01", "2026-01-03")


def test_a_retracting_pipeline_asks_a_human_before_large_deletions(tmp_path, monkeypatch) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    archive = generate_archive(tmp_path / "archive", "recSrc02", DAYS[:1], 200, seed=6, objects_per_day=1)
    pipeline = {"name": PIPELINE, "source": {"kind": "s3_archive", "url": f"file://{archive.root}",
                                             "source_id": archive.source_id},
                "hyperline_conn_id": "hyperline_recdag", "corrections": "retract", "tuning": {"retries": 0}}
    with pipeline_with_emulator(pipeline, KEY, tmp_path, monkeypatch):
        from airflow.dag_processing.dagbag import DagBag

        from tests.dag_runs import DAG_FILE

        dag = DagBag(dag_folder=str(DAG_FILE)).get_dag(f"segment_to_hyperline__{PIPELINE}")
        approve = dag.task_dict["approve_deletions"]
        assert isinstance(approve, ApprovalOperator)
        assert approve.upstream_task_ids == {"corrections_pending"}
        assert dag.task_dict["apply_deletions"].upstream_task_ids == {"approve_deletions"}
        assert dag.task_dict["corrections_pending"].trigger_rule == "all_done"
        # summarize stays a leaf: it alone decides whether a run with failed partitions is failed
        assert dag.task_dict["summarize"].downstream_task_ids == set()
        assert dag.task_dict["corrections_pending"].upstream_task_ids == {"publish"}

        first = run_dag(f"segment_to_hyperline__{PIPELINE}", {"start": RANGE["start"], "end": DAYS[1].isoformat()})

        assert first.state == "success"  # nothing waits for approval: the approval tasks are skipped
        states = {ti.task_id: ti.state for ti in first.get_task_instances()}
        assert states["corrections_pending"] == "success" and states["approve_deletions"] == "skipped"
