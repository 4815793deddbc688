"""Pruning old sync state: the dedup id files and unit indexes (`id_index`; and, on request, dead
letters) of days before a cutoff.

Day D's id files (`dedup.id_file`) are read while days D to D + `dedup_window_days` are synced, and
when D is synced again. They are never needed after that, but nothing removes them: they grow by
the ids of every event ever sent (about 31 MB per million UUID messageIds). `hyperline-sync
prune` removes those of the days before a cutoff. With `tuning.state_retention_days` set, every
run's `summarize` task removes the folders of days older than that which were also last written
longer ago than that, so the ids a backfill of old days has just committed stay while it runs.

Neither removes what a sync may still read (`earliest_needed_day`): the windows of the scheduled runs
still due or in progress (`PipelineConfig.ids_reach_days`: two of the schedule's intervals, as the
latest run may still be going when the next is due, then `lookback_days` and `dedup_window_days`;
for an hourly schedule, today - 1 - lookback - window), or the window of a partition the ledger has
as pending, running or failed (a run is at it, or a rerun will sync it). The command refuses a
later cutoff; the automatic prune stops short of it and logs why.

What pruning gives up: a sync of a day within `dedup_window_days` after a pruned day (a backfill,
a `resend`, a rewritten object) no longer sees the pruned day's ids, so a messageId on both days is
sent again from the later day. Hyperline upserts on `record.id`: the event is not counted twice,
but the later copy replaces the first-received one, so its timestamp (and with it the billing
period) can change. Objects the ledger has as done are not read again either way.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from hyperline_sync.config.models import Config, PipelineConfig
from hyperline_sync.pipeline.dedup import ids_root
from hyperline_sync.pipeline.id_index import index_root
from hyperline_sync.state import store
from hyperline_sync.state.deadletter import dead_letters_root
from hyperline_sync.state.ledger import FAILED, PENDING, RUNNING, Ledger
from hyperline_sync.state.store import Location, locations

__all__ = ["PruneRefusedError", "StateFolder", "earliest_needed_day", "prunable_folders", "prune_expired", "remove"]

IDS, INDEX, DEAD_LETTERS = "ids", "ids-index", "dead_letters"
_IN_PROGRESS = {PENDING: "a run is about to sync it", RUNNING: "a run is syncing it", FAILED: "a rerun will sync it"}

log = logging.getLogger(__name__)


class PruneRefusedError(ValueError):
    """The cutoff would remove state that a sync may still read; the message says which."""


@dataclass(frozen=True)
class StateFolder:
    """The folder of one day's state of one kind (dedup ids or dead letters), and its size."""

    day: dt.date
    kind: str
    path: Location
    files: int
    bytes: int
    modified: float  # the newest mtime of its files, epoch seconds


def earliest_needed_day(pipeline: PipelineConfig, ledger: Ledger, today: dt.date) -> tuple[dt.date, str]:
    """The first day whose state a sync may still read, and why."""
    window = dt.timedelta(days=pipeline.tuning.dedup_window_days)
    earliest = today - dt.timedelta(days=pipeline.ids_reach_days)
    reason = (f"scheduled runs ({pipeline.schedule or 'none: manual runs'}) still due or in progress sync from "
              f"{earliest + window} (two intervals and lookback_days {pipeline.tuning.lookback_days} back) and "
              f"dedup against the {pipeline.tuning.dedup_window_days} days before it")
    for partition, state in ledger.partitions(pipeline.name).items():
        why = _IN_PROGRESS.get(state.status)
        needed = dt.date.fromisoformat(partition) - window
        if why is not None and needed < earliest:
            earliest = needed
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
    return _day_folders(config, pipeline, before, dead_letters)


def _day_folders(config: Config, pipeline: PipelineConfig, before: dt.date, dead_letters: bool) -> list[StateFolder]:
    state_dir, output_dir = locations(config.state)
    roots = {IDS: ids_root(state_dir, pipeline.name), INDEX: index_root(state_dir, pipeline.name)}
    if dead_letters:
        roots[DEAD_LETTERS] = dead_letters_root(output_dir, pipeline.name)
    found = []
    for kind, root in roots.items():
        days: dict[dt.date, list[store.Entry]] = {}
        for entry in store.list_files(root, recursive=True):
            folder, _, _ = entry.name.partition("/")
            day = _day(folder)
            if day is not None and day < before and "/" in entry.name:
                days.setdefault(day, []).append(entry)
        for day, entries in days.items():
            found.append(StateFolder(day, kind, root / day.isoformat(), len(entries), sum(e.size for e in entries),
                                     max(e.modified for e in entries)))
    return sorted(found, key=lambda folder: (folder.day, folder.kind))


def prune_expired(
    config: Config, pipeline: PipelineConfig, ledger: Ledger, now: dt.datetime | None = None
) -> list[StateFolder]:
    """What each run does when `tuning.state_retention_days` is set: remove the id folders of the
    days older than that, last written longer ago than that, and before `earliest_needed_day`.
    Returns what was removed."""
    retention = pipeline.tuning.state_retention_days
    if retention is None:
        return []
    now = now or dt.datetime.now(dt.UTC)
    age = dt.timedelta(days=retention)
    earliest, reason = earliest_needed_day(pipeline, ledger, now.date())
    before = (now - age).date()
    if earliest < before:
        log.info("state_retention_days %d: keeping the ids from %s on, because %s", retention, earliest, reason)
        before = earliest
    folders = [f for f in _day_folders(config, pipeline, before, dead_letters=False)
               if f.modified < (now - age).timestamp()]
    remove(folders)
    return folders


def remove(folders: list[StateFolder]) -> None:
    """Delete the folders (an error, such as a permission, stops with the rest left in place)."""
    for folder in folders:
        store.remove_tree(folder.path)


def _day(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None  # not a day folder (a temporary file, something a user put there): left alone
