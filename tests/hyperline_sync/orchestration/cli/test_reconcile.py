"""`hyperline-sync reconcile` against the emulator over real HTTP, after a real sync of the sample archive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from hyperline_devtools.emulator import Faults
from hyperline_sync.orchestration import tasks
from hyperline_sync.orchestration.cli import main
from hyperline_sync.orchestration.reconcile_run import ReconcileRequest, hook_access, reconcile
from tests.dag_runs import pipeline_with_emulator
from tests.hyperline_sync.conftest import SAMPLE_DAYS

PIPELINE = "rec"
KEY = "key_reconcile_secret_31f"
LABELS = [d.isoformat() for d in SAMPLE_DAYS]
END = (SAMPLE_DAYS[-1] + dt.timedelta(days=1)).isoformat()


@pytest.fixture
def synced(sample_source, tmp_path, monkeypatch):
    """The sample archive's three days synced for real into a fresh emulator: (state dir, emulator)."""
    pipeline = {"name": PIPELINE, "source": {"kind": "s3_archive", "url": sample_source.url,
                                             "source_id": sample_source.source_id},
                "hyperline_conn_id": "hyperline_rec",
                "tuning": {"chunk_size": 500, "send_backoff_seconds": 0.01, "send_max_attempts": 5}}
    with pipeline_with_emulator(pipeline, KEY, tmp_path, monkeypatch) as (state_dir, emulator):
        tasks.sync(PIPELINE, LABELS, {}, "manual__first")
        yield state_dir, emulator


def run(tmp_path: Path, *extra: str, start: str = LABELS[0], end: str = END) -> tuple[int, dict]:
    output = tmp_path / f"reconcile-{len(list(tmp_path.glob('reconcile-*')))}.json"
    status = main(["reconcile", "--pipeline", PIPELINE, "--start", start, "--end", end, "--output", str(output),
                   *extra])
    return status, orjson.loads(output.read_bytes())


def test_hyperline_holding_what_was_sent_exits_0(synced, tmp_path) -> None:
    _, emulator = synced
    status, report = run(tmp_path)

    assert status == 0, report
    assert report["checked"] == len(emulator.events) and report["complete"]
    assert report["missing"] == report["different"] == report["unexpected"] == []
    day = report["days"][LABELS[0]]
    assert sum(s["expected"] for s in day.values()) == sum(s["found"] for s in day.values()) > 0


def test_removed_and_changed_events_are_found_then_repaired(synced, tmp_path) -> None:
    _, emulator = synced
    ids = sorted(emulator.events)
    removed, changed = ids[:3], ids[10]
    original = emulator.events[changed]
    emulator.remove(*removed)
    emulator.put({**original, "record": {**original["record"], "quantity_tampered": 7}})

    status, report = run(tmp_path)

    assert status == 1
    assert sorted(report["missing"]) == removed and report["different"] == [changed]
    assert report["differences"] == {changed: ["record"]}
    status, repaired = run(tmp_path, "--repair")
    assert status == 0 and repaired["repaired"] == 4 and repaired["still_wrong"] == []
    assert all(i in emulator.events for i in removed) and emulator.events[changed] == original
    assert run(tmp_path)[0] == 0


def test_an_event_under_another_type_is_deleted_before_it_is_sent_again(synced, tmp_path) -> None:
    _, emulator = synced
    record_id = sorted(i for i, e in emulator.events.items() if e["event_type"] == "API Call")[5]
    original = emulator.events[record_id]
    emulator.remove(record_id)
    emulator.put({**original, "event_type": "Storage Used"})  # another type the pipeline sends

    status, report = run(tmp_path, "--repair")

    assert status == 0 and report["different"] == [record_id] and report["differences"][record_id] == ["event_type"]
    held = [e for e in emulator.stored_events() if e["record"]["id"] == record_id]
    assert held == [original]  # once, under its own type


def test_an_event_held_under_two_types_is_found_by_the_timestamp_scan(synced, tmp_path) -> None:
    _, emulator = synced
    record_id, original = next((i, e) for i, e in sorted(emulator.events.items())
                               if e["event_type"] == "API Call" and e["timestamp"][:10] in LABELS)
    emulator.put({**original, "event_type": "Storage Used"})  # a copy besides the right one

    status, report = run(tmp_path, "--repair")

    assert report["different"] == [record_id] and report["unexpected"] == [] and status == 0
    assert [e for e in emulator.stored_events() if e["record"]["id"] == record_id] == [original]


def test_unexpected_events_are_reported_never_deleted(synced, tmp_path) -> None:
    _, emulator = synced
    some = next(iter(emulator.events.values()))
    stray = {**some, "timestamp": f"{LABELS[1]}T12:00:00Z", "record": {"id": "never-sent-by-the-pipeline"}}
    emulator.put(stray)

    status, report = run(tmp_path, "--repair")

    assert status == 0 and report["unexpected"] == ["never-sent-by-the-pipeline"]
    assert report["days"][LABELS[1]][some["event_type"]]["unexpected"] == 1
    assert "never-sent-by-the-pipeline" in emulator.events


def test_ids_sent_from_a_day_before_start_are_not_expected_again(synced, tmp_path) -> None:
    assert synced
    full = run(tmp_path)[1]
    status, later = run(tmp_path, start=LABELS[1])

    assert status == 0 and later["missing"] == []
    assert later["checked"] == full["checked"] - sum(s["expected"] for s in full["days"][LABELS[0]].values())


def test_5xx_and_429_while_reading_are_retried(synced, tmp_path) -> None:
    _, emulator = synced
    emulator.set_faults(Faults(read_script=("503", "429", "drop", "502")))

    status, report = run(tmp_path)

    assert status == 0 and report["complete"]
    assert emulator.statuses[503] == emulator.statuses[429] == emulator.statuses[502] == 1


def test_a_reconcile_that_cannot_finish_says_which_days_it_checked_and_exits_2(synced, tmp_path) -> None:
    _, emulator = synced
    emulator.set_faults(Faults(always_status=503))

    status, report = run(tmp_path)

    assert status == 2 and not report["complete"]
    assert report["checked_days"] == [] and "unavailable" in report["error"]
    assert KEY not in orjson.dumps(report).decode()


def test_a_listing_whose_filter_was_ignored_is_not_trusted(synced, tmp_path) -> None:
    held, _sender = hook_access(tasks.load_pipeline(PIPELINE)[1])

    class FilterDropped:  # Hyperline answering as if record_id__in had not been sent
        def list_events(self, event_type, **filters):
            filters.pop("record_ids", None)
            return held.list_events(event_type, **filters)

        def delete_events(self, record_ids):
            raise AssertionError("nothing is deleted from a listing that cannot be trusted")

    config, pipeline = tasks.load_pipeline(PIPELINE)
    report = reconcile(ReconcileRequest(config, pipeline, LABELS[0], END, "manual__r"), held=FilterDropped())

    assert not report.complete and "FilterIgnoredError" in report.error and report.missing == []


def test_config_errors_exit_2(synced, tmp_path) -> None:
    assert main(["reconcile", "--pipeline", "nope", "--start", LABELS[0], "--end", END]) == 2
    assert main(["reconcile", "--pipeline", PIPELINE, "--start", END, "--end", LABELS[0]]) == 2


# ---------------------------------------------------------------------------- counts mode
def utc_day(event: dict) -> str:
    return dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).astimezone(dt.UTC).date().isoformat()


def held_by_timestamp_day(emulator) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for event in emulator.stored_events():
        key = (utc_day(event), event["event_type"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_counts_and_ids_agree_on_a_clean_sync(synced, tmp_path) -> None:
    _, emulator = synced
    status, report = run(tmp_path, "--counts")

    assert status == 0, report
    assert report["counts_only"] and report["complete"] and report["checked_days"] == LABELS
    held = held_by_timestamp_day(emulator)
    for day, types in report["counts"].items():
        for event_type, stats in types.items():
            assert stats["expected"] == stats["found"] == held.get((day, event_type), 0)
            assert stats["difference"] == 0
    assert sum(s["found"] for t in report["counts"].values() for s in t.values()) > 0
    assert run(tmp_path)[0] == 0  # the id check agrees


def test_counts_and_ids_both_flag_events_removed_at_hyperline(synced, tmp_path) -> None:
    _, emulator = synced
    day = LABELS[1]
    event_type = sorted(e["event_type"] for e in emulator.stored_events() if utc_day(e) == day)[0]
    lost = sorted(e["record"]["id"] for e in emulator.stored_events()
                  if utc_day(e) == day and e["event_type"] == event_type)[:3]
    emulator.remove(*lost)

    status, report = run(tmp_path, "--counts")
    id_status, by_ids = run(tmp_path)

    assert status == 1 and report["complete"]
    assert report["counts"][day][event_type]["difference"] == -3
    assert [(d, t) for d, types in report["counts"].items() for t, s in types.items() if s["difference"]] == [
        (day, event_type)]
    assert id_status == 1 and sorted(by_ids["missing"]) == lost


def test_counts_include_events_received_outside_the_range(synced, tmp_path) -> None:
    """The sample has late and future events: a timestamp day's events come from other received days."""
    _, emulator = synced
    first, last = SAMPLE_DAYS[0], SAMPLE_DAYS[-1]
    outside = {dt.date.fromisoformat(utc_day(e)) for e in emulator.stored_events()} - set(SAMPLE_DAYS)
    day = min(outside, key=lambda d: min(abs((d - first).days), abs((d - last).days)))
    margin = max(abs((day - first).days), abs((day - last).days))
    window = (day.isoformat(), (day + dt.timedelta(days=1)).isoformat())

    status, report = run(tmp_path, "--counts", "--margin-days", str(margin), start=window[0], end=window[1])

    assert status == 0, report["counts"]
    held = {t: n for (d, t), n in held_by_timestamp_day(emulator).items() if d == window[0]}
    counted = report["counts"][window[0]]
    assert {t: s["expected"] for t, s in counted.items() if s["expected"]} == held  # none received on that day
    assert set(report["derived_days"]) >= set(LABELS)


@pytest.mark.parametrize("ignored", ["timestamp_gte", "timestamp_lte"])
def test_a_count_whose_filter_hyperline_ignored_exits_2(synced, tmp_path, ignored) -> None:
    _, emulator = synced
    emulator.set_faults(Faults(ignore_params=frozenset({ignored})))

    status, report = run(tmp_path, "--counts")

    assert status == 2 and not report["complete"]
    assert "FilterIgnoredError" in report["error"] and f"filter {ignored}" in report["error"]


def test_counts_cannot_repair(synced, tmp_path) -> None:
    assert synced
    status, report = run(tmp_path, "--counts", "--repair")
    assert status == 2 and "cannot repair" in report["error"]
