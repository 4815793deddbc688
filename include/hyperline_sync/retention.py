"""Pruning old sync state: the dedup id files (and, on request, dead letters) of days before a cutoff.

Day D's id files (`dedup.id_file`) are read while days D to D + `dedup_window_days` are synced, and
when D is synced again. They are never needed after that, but nothing removes them: they grow by
the ids of every event ever sent (about 31 MB per million UUID messageIds). `hyperline-sync
prune` removes those of the days before a cutoff, and with `tuning.state_retention_days` set every
run's `summarize` task removes those older than that. Neither removes what a sync may still read:
one later than the scheduled run's earliest window (today - `lookback_days` - `dedup_window_days`),
or than the window of a partition that is being synced or waits for a rerun (ledger status
running or failed). The command refuses such a cutoff; the automatic prune stops short of it.

What pruning gives up: a backfill or `resend` of a day within `dedup_window_days` after a pruned
day no longer sees the pruned day's ids, so a messageId on both days is sent again from the later
day. Hyperline upserts on `record.id`, so that updates the event instead of counting it twice.
Objects the ledger has as done are not read again either way.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from hyperline_sync.config import Config, PipelineConfig
from hyperline_sync.deadletter import dead_letters_root
from hyperline_sync.dedup import ids_root
from hyperline_sync.ledger import FAILED, RUNNING, Ledger

__all__ = ["PruneRefusedError", "StateFolder", "earliest_needed_day", "prunable_folders", "prune_expired", "remove"]

IDS, DEAD_LETTERS = "ids", "dead_letters"


class PruneRefusedError(ValueError):
    """The cutoff would remove state that a sync may still read; the message says which."""


@dataclass(frozen=True)
class StateFolder:
    """The folder of one day's state of one kind (dedup ids or dead letters), and its size."""

    day: dt.date
    kind: str
    path: Path
    files: int
    bytes: int


def earliest_needed_day(pipeline: PipelineConfig, ledger: Ledger, today: dt.date) -> tuple[dt.date, str]:
    """The first day whose state a sync may still read, and why."""
    window = dt.timedelta(days=pipeline.tuning.dedup_window_days)
    earliest = today - dt.timedelta(days=pipeline.tuning.lookback_days) - window
    reason = (f"the scheduled run syncs from {today - dt.timedelta(days=pipeline.tuning.lookback_days)} "
              f"(lookback_days {pipeline.tuning.lookback_days}) and dedups against the "
              f"{pipeline.tuning.dedup_window_days} days before it")
    for partition, state in ledger.partitions(pipeline.name).items():
        if state.status not in (RUNNING, FAILED):
            continue
        needed = dt.date.fromisoformat(partition) - window
        if needed < earliest:
            earliest = needed
            why = "a run is syncing it" if state.status == RUNNING else "a rerun will sync it"
            reason = (f"partition {partition} is {state.status} ({why}) and dedups against the "
                      f"{pipeline.tuning.dedup_window_days} days before it")
    return earliest, reason


def prunable_folders(
    config: Config, pipeline: PipelineConfig, ledger: Ledger, before: dt.date, *, dead_letters: bool = False,
    today: dt.date | None = None,
) -> list[StateFolder]:
    """The day folders of `pipeline` older than `before`, oldest first; raises PruneRefusedError when
    `before` is later than `earliest_needed_day`."""
    earliest, reason = earliest_needed_day(pipeline, ledger, today or dt.datetime.now(dt.UTC).date())
    if before > earliest:
        raise PruneRefusedError(
            f"--before {before} would remove state still needed: {reason}, so days from {earliest} on are "
            f"kept; use --before {earliest} or earlier"
        )
    roots = {IDS: ids_root(config.state.dir, pipeline.name)}
    if dead_letters:
        roots[DEAD_LETTERS] = dead_letters_root(config.state.output_dir, pipeline.name)
    found = []
    for kind, root in roots.items():
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            day = _day(folder.name)
            if day is not None and day < before and folder.is_dir():
                files = [path for path in folder.rglob("*") if path.is_file()]
                found.append(StateFolder(day, kind, folder, len(files), sum(path.stat().st_size for path in files)))
    return sorted(found, key=lambda folder: (folder.day, folder.kind))


def prune_expired(
    config: Config, pipeline: PipelineConfig, ledger: Ledger, today: dt.date | None = None
) -> list[StateFolder]:
    """What each run does when `tuning.state_retention_days` is set: remove the id files of the days
    older than that, but never of a day `earliest_needed_day` keeps. Returns what was removed."""
    retention = pipeline.tuning.state_retention_days
    if retention is None:
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    before = min(today - dt.timedelta(days=retention), earliest_needed_day(pipeline, ledger, today)[0])
    folders = prunable_folders(config, pipeline, ledger, before, today=today)
    remove(folders)
    return folders


def remove(folders: list[StateFolder]) -> None:
    """Delete the folders (an error, such as a permission, stops with the rest left in place)."""
    for folder in folders:
        shutil.rmtree(folder.path)


def _day(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None  # not a day folder (a temporary file, something a user put there): left alone
