"""Pruning old state: which day folders go, which stay, and the cutoffs that are refused."""

from __future__ import annotations

import datetime as dt
import gzip
import os

import pytest
import yaml

from hyperline_sync.config import ConfigError, load_config, parse_config
from hyperline_sync.orchestration.cli import main
from hyperline_sync.pipeline.dedup import SeenIds
from hyperline_sync.state.ledger import DONE, FAILED, PENDING, RUNNING, Ledger
from hyperline_sync.state.retention import (
    DEAD_LETTERS,
    IDS,
    PruneRefusedError,
    earliest_needed_day,
    prunable_folders,
    prune_expired,
    remove,
)

TODAY = dt.date(2026, 6, 30)
DAYS = [dt.date(2026, 6, 1) + dt.timedelta(days=n) for n in range(5)]  # 06-01 .. 06-05
TTL = dt.timedelta(minutes=5)


def _config(tmp_path, schedule: str | None = None, **tuning):
    """The `acme` pipeline (hourly unless `schedule` is given), its state under tmp_path."""
    path = tmp_path / "pipelines.yaml"
    pipeline = {"name": "acme", "source": {"kind": "s3_archive", "url": "file:///nowhere", "source_id": "s"},
                "tuning": {"dedup_window_days": 2, "lookback_days": 1, **tuning}}
    if schedule is not None:
        pipeline["schedule"] = schedule
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path / "state")}, "pipelines": [pipeline]}))
    return load_config(path)


@pytest.fixture
def config(tmp_path):
    return _config(tmp_path)


@pytest.fixture
def ledger(config) -> Ledger:
    return Ledger.sqlite(config.state.dir / "ledger.db")


def _state(config, written: dt.datetime | None = None) -> None:
    """Each day: the ids of two objects (as a real sync commits them) and a dead letter file, dated
    `written`, else the day after their day, as the scheduled sync writes them."""
    for day in DAYS:
        seen = SeenIds(config.state.dir, "acme", day, 0)
        files = [seen.commit_object(f"{day}/{key}", [f"{day}-{key}-{n}" for n in range(50)]) for key in ("a", "b")]
        letters = config.state.output_dir / "acme" / "dead_letters" / day.isoformat() / "a.gz.jsonl.gz"
        letters.parent.mkdir(parents=True, exist_ok=True)
        letters.write_bytes(gzip.compress(b'{"reason": "missing_event"}\n'))
        when = (written or dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)).timestamp()
        for path in [*files, letters]:
            os.utime(path, (when, when))


def test_lists_and_removes_only_the_days_before_the_cutoff(config, ledger):
    _state(config)
    (config.state.dir / "acme" / "ids" / "notes.txt").write_text("not a day folder")
    folders = prunable_folders(config, config.pipeline("acme"), ledger, DAYS[3], today=TODAY)
    assert [(f.day, f.kind, f.files) for f in folders] == [(day, IDS, 2) for day in DAYS[:3]]
    assert all(f.bytes == sum(p.stat().st_size for p in f.path.iterdir()) > 0 for f in folders)

    remove(folders)
    window = SeenIds(config.state.dir, "acme", DAYS[4], window_days=4)
    assert window.known_count == 2 * 2 * 50  # only 06-04 and 06-05 are left to dedup against
    assert (config.state.dir / "acme" / "ids" / "notes.txt").exists()
    assert all((config.state.output_dir / "acme" / "dead_letters" / d.isoformat()).is_dir() for d in DAYS)


def test_dead_letters_go_only_when_asked(config, ledger):
    _state(config)
    folders = prunable_folders(config, config.pipeline("acme"), ledger, DAYS[2], dead_letters=True, today=TODAY)
    assert [(f.day, f.kind) for f in folders] == [
        (DAYS[0], DEAD_LETTERS), (DAYS[0], IDS), (DAYS[1], DEAD_LETTERS), (DAYS[1], IDS)]
    remove(folders)
    left = sorted(p.name for p in (config.state.output_dir / "acme" / "dead_letters").iterdir())
    assert left == [d.isoformat() for d in DAYS[2:]]


def test_a_cutoff_the_scheduled_run_still_reads_is_refused(config, ledger):
    # lookback 1 + window 2: on 06-30 the run of 06-29 23:00 still comes, syncs from 06-28 and dedups
    # against 06-26..27.
    assert earliest_needed_day(config.pipeline("acme"), ledger, TODAY)[0] == dt.date(2026, 6, 26)
    prunable_folders(config, config.pipeline("acme"), ledger, dt.date(2026, 6, 26), today=TODAY)
    with pytest.raises(PruneRefusedError, match=r"lookback_days 1.*use --before 2026-06-26 or earlier"):
        prunable_folders(config, config.pipeline("acme"), ledger, dt.date(2026, 6, 27), today=TODAY)


def test_a_longer_schedule_keeps_two_of_its_intervals(tmp_path, ledger):
    weekly = _config(tmp_path, schedule="@weekly").pipeline("acme")
    assert earliest_needed_day(weekly, ledger, TODAY)[0] == TODAY - dt.timedelta(days=14 + 1 + 2)


@pytest.mark.parametrize("status", [FAILED, RUNNING, PENDING])
def test_the_window_of_a_partition_to_rerun_or_being_synced_is_kept(config, ledger, status):
    _state(config)
    previous = ledger.claim("acme", "2026-06-04", "run-1", TTL, run_id="run-1")
    if status == FAILED:
        ledger.finish("acme", "2026-06-04", "run-1", FAILED, "object x: corrupt gzip data")
    elif status == PENDING:  # another run's claim was in the way: given back before syncing
        ledger.release("acme", "2026-06-04", "run-1", previous)
    ledger.claim("acme", "2026-06-05", "run-1", TTL, run_id="run-1")
    ledger.finish("acme", "2026-06-05", "run-1", DONE)  # done: its window is not read again
    with pytest.raises(PruneRefusedError, match=f"partition 2026-06-04 is {status}.*--before 2026-06-02 or earlier"):
        prunable_folders(config, config.pipeline("acme"), ledger, DAYS[3], today=TODAY)
    assert [f.day for f in prunable_folders(config, config.pipeline("acme"), ledger, DAYS[1], today=TODAY)] == [DAYS[0]]


def test_cli_dry_run_lists_and_keeps_then_prune_removes(config, capsys):
    _state(config)
    args = ["prune", "--config", str(config.path), "--pipeline", "acme", "--before", "2026-06-03"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2026-06-01  ids" in out and "2026-06-02  ids" in out and "would remove 2 day folders" in out
    assert (config.state.dir / "acme" / "ids" / "2026-06-01").is_dir()

    assert main(args) == 0
    assert "removed 2 day folders" in capsys.readouterr().out
    assert sorted(p.name for p in (config.state.dir / "acme" / "ids").iterdir()) == [d.isoformat() for d in DAYS[2:]]


def test_cli_refusal_exits_2_with_the_reason(config, capsys):
    _state(config)
    today = dt.datetime.now(dt.UTC).date()
    assert main(["prune", "--config", str(config.path), "--pipeline", "acme", "--before", today.isoformat()]) == 2
    assert "would remove state still needed" in capsys.readouterr().err
    assert (config.state.dir / "acme" / "ids" / "2026-06-01").is_dir()


def test_cli_bad_day_exits_2(config, capsys):
    assert main(["prune", "--config", str(config.path), "--pipeline", "acme", "--before", "June"]) == 2
    assert "--before: 'June' is not a date" in capsys.readouterr().err


def test_retention_is_off_by_default_and_longer_than_what_the_scheduled_run_reads():
    raw = {"pipelines": [{"name": "p", "source": {"kind": "s3_archive", "url": "file:///d", "source_id": "s"}}]}
    assert parse_config(raw).pipelines[0].tuning.state_retention_days is None
    raw["pipelines"][0]["tuning"] = {"state_retention_days": 30}
    assert parse_config(raw).pipelines[0].tuning.state_retention_days == 30
    raw["pipelines"][0]["tuning"] = {"state_retention_days": 8, "dedup_window_days": 7, "lookback_days": 1}
    with pytest.raises(ConfigError, match=r"tuning.state_retention_days: must be at least 9: "):
        parse_config(raw)
    # A weekly run may still be going when the next is due: two weeks, then lookback and window.
    raw["pipelines"][0]["schedule"] = "@weekly"
    raw["pipelines"][0]["tuning"]["state_retention_days"] = 21
    with pytest.raises(ConfigError, match=r"must be at least 22: "):
        parse_config(raw)
    del raw["pipelines"][0]["schedule"]
    # A warehouse's lookback defaults to 3 days, and counts once it is known.
    raw["pipelines"][0]["source"] = {"kind": "warehouse", "conn_id": "wh", "schema": "shop"}
    raw["pipelines"][0]["tuning"] = {"state_retention_days": 10}  # hourly: 1 + lookback 3 + window 7
    with pytest.raises(ConfigError, match=r"pipelines\[0\].tuning.state_retention_days: must be at least 11: "):
        parse_config(raw)


NOW = dt.datetime.combine(TODAY, dt.time(12), dt.UTC)


def test_automatic_prune_removes_days_past_retention_only(tmp_path, ledger):
    _state(_config(tmp_path))
    assert prune_expired(_config(tmp_path), _config(tmp_path).pipeline("acme"), ledger, now=NOW) == []

    config = _config(tmp_path, state_retention_days=27)  # 06-30 - 27 days: keeps 06-03 on
    removed = prune_expired(config, config.pipeline("acme"), ledger, now=NOW)
    assert [(f.day, f.kind) for f in removed] == [(DAYS[0], IDS), (DAYS[1], IDS)]
    assert sorted(p.name for p in (config.state.dir / "acme" / "ids").iterdir()) == [d.isoformat() for d in DAYS[2:]]
    assert (config.state.output_dir / "acme" / "dead_letters" / DAYS[0].isoformat()).is_dir()


def test_automatic_prune_keeps_old_days_a_backfill_has_just_written(tmp_path, ledger):
    config = _config(tmp_path, state_retention_days=27)
    _state(config, written=NOW - dt.timedelta(hours=1))  # June synced in a backfill an hour ago
    assert prune_expired(config, config.pipeline("acme"), ledger, now=NOW) == []
    assert [f.day for f in prune_expired(config, config.pipeline("acme"), ledger, now=NOW + dt.timedelta(days=28))] \
        == DAYS


def test_automatic_prune_stops_short_of_a_failed_partitions_window(tmp_path, ledger, caplog):
    config = _config(tmp_path, state_retention_days=4)
    _state(config)
    ledger.claim("acme", "2026-06-04", "run-1", TTL, run_id="run-1")
    ledger.finish("acme", "2026-06-04", "run-1", FAILED, "object x: corrupt gzip data")
    with caplog.at_level("INFO", logger="hyperline_sync.state.retention"):
        removed = prune_expired(config, config.pipeline("acme"), ledger, now=NOW)
    assert [f.day for f in removed] == [DAYS[0]]  # 06-02 and 06-03 are the failed day's window
    assert "keeping the ids from 2026-06-02 on, because partition 2026-06-04 is failed" in caplog.text
