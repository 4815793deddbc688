"""Corrections from the source: an archive object rewritten after it was synced, with events changed
and events gone, synced for real (tasks.sync) into the emulator over HTTP."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.orchestration import tasks
from hyperline_sync.state import audit
from hyperline_sync.state.report import read_outcomes
from tests.dag_runs import pipeline_with_emulator

DAY = dt.date(2026, 5, 4)
PIPELINE = "corr"
KEY = "key_corrections_55aa"


def pipeline(root: Path, source_id: str, corrections: str, **tuning) -> dict:
    return {"name": PIPELINE, "source": {"kind": "s3_archive", "url": f"file://{root}", "source_id": source_id},
            "hyperline_conn_id": "hyperline_corr", "corrections": corrections,
            "tuning": {"send_backoff_seconds": 0.01, **tuning}}


def rewrite(path: Path, held: set[str], drop: int) -> tuple[list[str], str | None]:
    """Rewrite a .gz object without `drop` of its delivered events and with one changed: (gone, changed)."""
    kept, gone, changed = [], [], None
    for line in gzip.decompress(path.read_bytes()).split(b"\n"):
        try:
            message = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        record_id = message.get("messageId") if isinstance(message, dict) else None
        if record_id in held and len(gone) < drop:
            gone.append(record_id)
            continue
        if record_id in held and changed is None and isinstance(message.get("properties"), dict):
            message["properties"]["corrected_at_source"] = 42
            changed, line = record_id, json.dumps(message).encode()
        kept.append(line)
    path.write_bytes(gzip.compress(b"\n".join(kept)))
    return gone, changed


@pytest.fixture
def archive(tmp_path):
    return generate_archive(tmp_path / "archive", "corrSrc1", [DAY], 400, seed=3, objects_per_day=2)


def sync_rewrite_sync(archive, tmp_path, monkeypatch, corrections: str, params: dict | None = None, **tuning):
    config = pipeline(archive.root, archive.source_id, corrections, **tuning)
    with pipeline_with_emulator(config, KEY, tmp_path, monkeypatch) as (state_dir, emulator):
        tasks.sync(PIPELINE, [DAY.isoformat()], {}, "manual__first")
        before = emulator.events
        names = {Path(k).name for k in archive.objects}
        target = next(p for p in sorted(archive.root.rglob("*.gz")) if p.name in names)
        gone, changed = rewrite(target, set(before), 3)
        assert len(gone) == 3 and changed is not None
        tasks.sync(PIPELINE, [DAY.isoformat()], params or {}, "manual__second")
        ledger = tasks.ledger_for(tasks.load_pipeline(PIPELINE)[0])
        outcome = read_outcomes(state_dir / "reports", PIPELINE, "manual__second")[DAY.isoformat()]
        return before, emulator, gone, changed, audit.rows(ledger.engine, PIPELINE), outcome


def test_retract_deletes_exactly_the_gone_ids_and_resends_the_changed_one(archive, tmp_path, monkeypatch) -> None:
    before, emulator, gone, changed, rows, outcome = sync_rewrite_sync(archive, tmp_path, monkeypatch, "retract")

    assert set(emulator.events) == set(before) - set(gone)
    assert emulator.events[changed]["record"]["corrected_at_source"] == 42
    assert sorted((r["record_id"], r["action"]) for r in rows) == sorted(
        [(i, "deleted") for i in gone] + [(changed, "resent")])
    assert all(r["run_id"] == "manual__second" and r["key"] for r in rows)
    assert outcome.corrections["deleted"] == 3 and outcome.corrections["resent"] == 1
    assert sorted(outcome.corrections["gone_ids"]) == sorted(gone)


def test_report_lists_the_corrections_and_changes_nothing_at_hyperline(archive, tmp_path, monkeypatch) -> None:
    before, emulator, gone, changed, rows, outcome = sync_rewrite_sync(archive, tmp_path, monkeypatch, "report")

    assert emulator.events == before  # nothing deleted, nothing resent
    assert sorted((r["record_id"], r["action"]) for r in rows) == sorted(
        [(i, "reported") for i in gone] + [(changed, "reported")])
    assert outcome.corrections["changed_ids"] == [changed] and sorted(outcome.corrections["gone_ids"]) == sorted(gone)


def test_off_neither_compares_nor_audits(archive, tmp_path, monkeypatch) -> None:
    before, emulator, _gone, _changed, rows, outcome = sync_rewrite_sync(archive, tmp_path, monkeypatch, "off")

    assert emulator.events == before and rows == [] and outcome.corrections is None


def test_deletions_over_the_threshold_wait_for_approval(archive, tmp_path, monkeypatch) -> None:
    _, emulator, gone, _, rows, outcome = sync_rewrite_sync(
        archive, tmp_path, monkeypatch, "retract", corrections_approval_over=2)

    assert set(gone) <= set(emulator.events)  # not deleted yet
    assert sorted(r["record_id"] for r in rows if r["action"] == "pending_approval") == sorted(gone)
    assert outcome.corrections["pending_approval"] == 3 and outcome.corrections["deleted"] == 0


def test_a_dry_run_shows_what_would_change_and_changes_nothing(archive, tmp_path, monkeypatch) -> None:
    before, emulator, _gone, _changed, rows, outcome = sync_rewrite_sync(
        archive, tmp_path, monkeypatch, "retract", params={"dry_run": True})

    assert emulator.events == before and rows == []
    assert outcome.corrections["would_delete"] == 3 and outcome.corrections["would_resend"] == 1


def test_approved_deletions_are_applied_and_audited(archive, tmp_path, monkeypatch) -> None:
    from hyperline_sync.orchestration import corrections_approval

    config = pipeline(archive.root, archive.source_id, "retract", corrections_approval_over=0)
    with pipeline_with_emulator(config, KEY, tmp_path, monkeypatch) as (_state_dir, emulator):
        tasks.sync(PIPELINE, [DAY.isoformat()], {}, "manual__first")
        names = {Path(k).name for k in archive.objects}
        target = next(p for p in sorted(archive.root.rglob("*.gz")) if p.name in names)
        gone, _ = rewrite(target, set(emulator.events), 2)
        tasks.sync(PIPELINE, [DAY.isoformat()], {}, "manual__second")
        assert corrections_approval.pending(PIPELINE, "manual__second") == sorted(gone)
        assert set(gone) <= set(emulator.events)

        assert corrections_approval.apply(PIPELINE, "manual__second") == 2

        assert not set(gone) & set(emulator.events)
        assert corrections_approval.pending(PIPELINE, "manual__second") == []
        ledger = tasks.ledger_for(tasks.load_pipeline(PIPELINE)[0])
        assert sorted(r["record_id"] for r in audit.rows(ledger.engine, PIPELINE, "manual__second", "deleted")) == \
            sorted(gone)
