"""Which received-day partitions a run covers.

A run's days come, in order of precedence, from an explicit `partitions` list (a rerun; the word
"failed" expands to what the ledger says failed), a manual `start`/`end` range (end exclusive), the
run's data interval (scheduled runs and Airflow backfills), or `run_after` when a manual run has no
logical date. Scheduled windows also cover `lookback_days` before them, because Segment keeps
writing into a day folder for a while after midnight.

Airflow caps a mapped task at `max_map_length` (1024) instances, so long ranges are packed into
groups of consecutive days, each group one mapped task.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence

MAX_MAPPED_TASKS = 1000  # under Airflow's default max_map_length of 1024, with headroom
FAILED_KEYWORD = "failed"


class PlanError(ValueError):
    """The run's parameters do not describe a valid set of days."""


def parse_day(value: str | dt.date, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise PlanError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def day_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Days in [start, end)."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def days_for_window(window_start: dt.datetime, window_end: dt.datetime, lookback_days: int) -> list[dt.date]:
    """Received days overlapping [window_start, window_end), plus `lookback_days` days before."""
    first = window_start.astimezone(dt.UTC).date() - dt.timedelta(days=lookback_days)
    # The window's end is exclusive: an interval ending at midnight does not touch the next day.
    last = (window_end.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()
    last = max(last, window_start.astimezone(dt.UTC).date())
    return day_range(first, last + dt.timedelta(days=1))


def plan_days(
    *,
    params: dict,
    data_interval: tuple[dt.datetime, dt.datetime] | None,
    run_after: dt.datetime,
    lookback_days: int,
    failed_partitions: Callable[[], Iterable[str]],
    max_days: int = 3660,
) -> list[dt.date]:
    """The sorted, distinct days this run syncs."""
    explicit = params.get("partitions") or []
    if isinstance(explicit, str):
        explicit = [p for p in explicit.replace(",", " ").split() if p]
    if explicit:
        days: set[dt.date] = set()
        for item in explicit:
            if str(item).strip().lower() == FAILED_KEYWORD:
                days.update(parse_day(p, "partitions (from the ledger)") for p in failed_partitions())
            else:
                days.add(parse_day(item, "partitions"))
        return sorted(days)

    start, end = params.get("start"), params.get("end")
    if start or end:
        if not (start and end):
            raise PlanError("start and end go together: give both (end is exclusive) or neither")
        first, stop = parse_day(start, "start"), parse_day(end, "end")
        if stop <= first:
            raise PlanError(f"end ({stop}) must be after start ({first}); end is exclusive")
        days_list = day_range(first, stop)
    elif data_interval is not None:
        days_list = days_for_window(*data_interval, lookback_days)
    else:
        days_list = days_for_window(run_after - dt.timedelta(hours=1), run_after, lookback_days)

    if len(days_list) > max_days:
        raise PlanError(f"the range holds {len(days_list)} days, more than the {max_days} one run may sync")
    return days_list


def group_days(days: Sequence[dt.date], max_groups: int = MAX_MAPPED_TASKS) -> list[list[str]]:
    """Pack days into at most `max_groups` runs of consecutive days (one mapped task each)."""
    if not days:
        return []
    size = math.ceil(len(days) / max_groups)
    return [[d.isoformat() for d in days[i : i + size]] for i in range(0, len(days), size)]


def group_label(group: Sequence[str]) -> str:
    """What the UI shows for a mapped task: `2026-11-01`, or `2026-11-01..2026-11-03` for a group."""
    return group[0] if len(group) == 1 else f"{group[0]}..{group[-1]}"
