"""The ids an earlier day of the dedup window holds but may not have sent yet, for its later days.

A messageId received on days D and D+1 must be sent once, from D, whatever the order in which the
two days' tasks run: at the same time, D+1 first, or D failing and being retried after D+1 is done.
D+1 cannot wait for D's committed ids (`dedup`), so it drops every id D's source holds in the units
D has not finished: D sends those itself, now or on its retry. Each unit's ids are read once, by the
first later day that needs them (`PartitionSource.message_ids`: for the archive, a decode of `type`
and `messageId` only), and kept per unit version in
`<state_dir>/<pipeline>/ids-index/<YYYY-MM-DD>/<sha1(key)>-<sha1(version)[:16]>.parquet` (the id
file format of `dedup`); units already done are covered by their committed ids instead.

Which earlier days count: those of the same run (`SyncJob.run_days`: they will be synced, or fail
loudly) and those another run is syncing now (a live claim). A day outside both (never synced, or
left alone by the hourly lookback) is not read: its later days cannot know it will ever be synced.
An earlier day that cannot be listed or read fails the day that needs it, naming it: a rerun after
the fix succeeds, where guessing would send the id twice or never.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

import numpy as np

from hyperline_sync.pipeline.dedup import read_hashes, write_ids
from hyperline_sync.pipeline.unit_sync import PartitionFailedError
from hyperline_sync.sources.base import PartitionSource, Unit
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state import store
from hyperline_sync.state.ledger import Ledger
from hyperline_sync.state.store import Location

if TYPE_CHECKING:
    from hyperline_sync.pipeline.sync import SyncJob

__all__ = ["EarlierDayUnreadableError", "index_file", "index_root", "pending_earlier_ids", "units_to_sync"]

INDEX = "ids-index"


class EarlierDayUnreadableError(PartitionFailedError):
    """An earlier day of the dedup window could not be listed or read, so this day cannot tell which
    of its ids that day will send."""


def index_root(state_dir: Location, pipeline: str) -> Location:
    """The folder of a pipeline's unit indexes, one subfolder per day."""
    return state_dir / pipeline / INDEX


def index_file(state_dir: Location, pipeline: str, unit: Unit) -> Location:
    key = hashlib.sha1(unit.key.encode(), usedforsecurity=False).hexdigest()
    version = hashlib.sha1(unit.etag.encode(), usedforsecurity=False).hexdigest()[:16]
    return index_root(state_dir, pipeline) / unit.day.isoformat() / f"{key}-{version}.parquet"


def pending_earlier_ids(job: SyncJob, day: dt.date, write_root: Location) -> np.ndarray:
    """Hashes of the ids held by the units not done yet of the earlier days of `day`'s window that
    this run syncs too or another run is syncing. Indexes are written below `write_root` (a dry
    run's own folder) and read from there or the state."""
    name, window = job.pipeline.name, job.pipeline.tuning.dedup_window_days
    earlier = [(day - dt.timedelta(days=back)).isoformat() for back in range(window, 0, -1)]
    if not earlier:
        return np.empty(0, dtype=np.uint64)
    busy = job.ledger.live_claims(name, earlier, other_than=job.owner)
    parts = [
        _unit_hashes(job, unit, write_root)
        for partition in earlier
        if partition in job.run_days or partition in busy
        for unit in _not_done(job, dt.date.fromisoformat(partition))
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)


def units_to_sync(
    source: PartitionSource, ledger: Ledger, pipeline: str, day: dt.date, *, resend: bool = False
) -> tuple[list[Unit], list[Unit]]:
    """The day's units, and those not done at their current version (all of them with `resend`):
    what the day's own sync reads, and what its later days index."""
    units = source.list_units(day)
    done = {} if resend else ledger.done_objects(pipeline, day.isoformat())
    return units, [u for u in units if done.get(u.key) != u.etag]


def _not_done(job: SyncJob, earlier: dt.date) -> list[Unit]:
    try:
        return units_to_sync(job.source, job.ledger, job.pipeline.name, earlier, resend=job.resend)[1]
    except UnitReadError as exc:
        raise EarlierDayUnreadableError(
            f"earlier day {earlier} of the dedup window cannot be listed ({exc}): this day cannot tell which of "
            "its messageIds that day will send; it syncs once that day can be read"
        ) from exc


def _unit_hashes(job: SyncJob, unit: Unit, write_root: Location) -> np.ndarray:
    roots = {str(r): r for r in (write_root, job.state_dir)}.values()
    for root in roots:
        path = index_file(root, job.pipeline.name, unit)
        if store.exists(path):
            return read_hashes(path)
    if not job.resend and job.ledger.done_objects(job.pipeline.name, unit.day.isoformat()).get(unit.key) == unit.etag:
        return np.empty(0, dtype=np.uint64)  # done meanwhile: its committed ids, loaded after this, cover it
    try:
        ids = job.source.message_ids(unit, job.pipeline.tuning.chunk_size)
    except UnitReadError as exc:
        raise EarlierDayUnreadableError(
            f"earlier day {unit.day} of the dedup window: object {unit.key} cannot be read ({exc}): this day "
            "cannot tell which of its messageIds that day will send; it syncs once that object can be read"
        ) from exc
    return write_ids(index_file(write_root, job.pipeline.name, unit), np.asarray(ids, dtype=object), unit.key)
