"""Is a day's volume plausible? A sync that reads (almost) nothing must not pass for a quiet success.

A complete day (before today, UTC) is flagged when it read no lines while a neighbouring day has
some, or when it read fewer than `tuning.min_volume_share` of the median of the complete days among
the 7 before it (at least MIN_HISTORY_DAYS of them synced, so one odd day does not set the bar).
Today's partial day is never compared. The history is the ledger's partitions that are done.
What a flagged day does (`tuning.empty_partition`: warn or fail) is the caller's decision.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping

from hyperline_sync.config.models import PipelineConfig
from hyperline_sync.state.ledger import DONE, Ledger

__all__ = ["MIN_HISTORY_DAYS", "TRAILING_DAYS", "partition_warning", "volume_warning"]

TRAILING_DAYS = 7
MIN_HISTORY_DAYS = 3


def volume_warning(
    day: dt.date, read: int, history: Mapping[dt.date, int], today: dt.date, min_share: float
) -> str | None:
    """Why `day`'s `read` lines look wrong next to `history` (lines read per synced day), or None."""
    if day >= today:
        return None
    if read == 0:
        busy = [d for d in (day - dt.timedelta(days=1), day + dt.timedelta(days=1)) if history.get(d, 0) > 0]
        if busy:
            return (f"no data for {day}, a complete day, while {busy[0]} has {history[busy[0]]} lines: check "
                    "source.url and source.source_id (or the schema), or whether Segment stopped delivering")
    trailing = [history[d] for n in range(1, TRAILING_DAYS + 1) if (d := day - dt.timedelta(days=n)) in history]
    if len(trailing) < MIN_HISTORY_DAYS:
        return None
    median = statistics.median(trailing)
    if read < min_share * median:
        return (f"{read} lines read for {day}, below {min_share:g} of the median of the {len(trailing)} days "
                f"before it ({median:g} lines): data missing from the source, or a wrong source setting?")
    return None


def partition_warning(
    ledger: Ledger, pipeline: PipelineConfig, day: dt.date, read_now: int, done_before: Iterable[str],
    today: dt.date | None = None,
) -> str | None:
    """`volume_warning` for a partition whose sync read `read_now` lines and skipped the units
    `done_before` (synced by earlier runs: their lines are counted from the ledger)."""
    today = today or dt.datetime.now(dt.UTC).date()
    if day >= today:
        return None  # no ledger reads for today's partial day, every hour
    skipped = set(done_before)
    read = read_now
    if skipped:
        read += sum(o["read"] for o in ledger.objects(pipeline.name, day.isoformat()) if o["key"] in skipped)
    around = [(day + dt.timedelta(days=n)).isoformat() for n in range(-TRAILING_DAYS, 2) if n]
    history = {
        dt.date.fromisoformat(name): state.counts.read
        for name, state in ledger.partitions(pipeline.name, around).items()
        if state.status == DONE
    }
    return volume_warning(day, read, history, today, pipeline.tuning.min_volume_share)
