"""The reconcile's counts mode: per event type and UTC day of event timestamp, how many events the
pipeline sent against how many Hyperline holds (`meta.total` of `GET /v1/events`), without looking
up a single id: about two requests per event type and day instead of one per 100 events.

Counts are by event timestamp, never by received day: late and future events are normal, so the
events of a timestamp day may come from received days before or after it. The expected events are
derived for the range widened by a margin on both sides (`margin_days`, by default the pipeline's
`dedup_window_days`); of the margin's days only the events the pipeline's state says were sent
(`SentIds`) count, so that a day not synced yet adds nothing. An id sent from two received days is
held once (Hyperline upserts on event type + record id): the last one sent counts.

Hyperline ignores filters it does not know: each window is asked twice with `take=1`, sorted by
timestamp ascending and descending, and the events returned must be of the type asked for and
inside the window. Ignoring `timestamp_gte` returns the type's earliest event (outside the window
whenever ignoring it changes the count), ignoring `timestamp_lte` its latest; the two totals must
agree. A filter that did not apply raises `FilterIgnoredError` naming it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from hyperline_sync.pipeline.reconcile import FilterIgnoredError, HeldEvents, timestamp_text
from hyperline_sync.pipeline.reconcile_report import ReconcileReport, epoch_ms
from hyperline_sync.pipeline.sent_ids import SentIds

DAY_MS = 86_400_000


def widened(days: Sequence[dt.date], margin_days: int, today: dt.date) -> list[dt.date]:
    """The received days whose events can carry timestamps in `days`: `margin_days` either side, none after today."""
    first = days[0] - dt.timedelta(days=margin_days)
    stop = min(days[-1] + dt.timedelta(days=margin_days + 1), today + dt.timedelta(days=1))
    return [first + dt.timedelta(days=i) for i in range((max(stop, days[-1] + dt.timedelta(days=1)) - first).days)]


class ExpectedCounts:
    """The events sent, as (event type, record id) -> timestamp in epoch ms; later received days win."""

    def __init__(self, core: Iterable[dt.date], sent_ids: SentIds) -> None:
        self.core = set(core)
        self.sent_ids = sent_ids
        self.held: dict[tuple[str, str], int] = {}
        self.types: set[str] = set()  # of every event derived, counted or not: the types asked about

    def add_day(self, day: dt.date, events: Iterable[dict]) -> None:
        margin = day not in self.core
        for event in events:
            record_id = event["record"]["id"]
            self.types.add(event["event_type"])
            if margin and record_id not in self.sent_ids:
                continue
            self.held[(event["event_type"], record_id)] = epoch_ms(event["timestamp"])

    def by_window(self, days: Sequence[dt.date]) -> Counter[tuple[str, str]]:
        """(UTC day of timestamp, event type) -> events, for timestamps inside `days` only."""
        low = _ms(days[0])
        high = _ms(days[-1]) + DAY_MS
        counts: Counter[tuple[str, str]] = Counter()
        for (event_type, _), moment in self.held.items():
            if low <= moment < high:
                counts[(_day_of(moment), event_type)] += 1
        return counts

    def event_types(self) -> list[str]:
        return sorted(self.types)


def compare_counts(held: HeldEvents, expected: ExpectedCounts, days: Sequence[dt.date],
                   report: ReconcileReport) -> None:
    """Fill `report.counts` with expected, found and difference per timestamp day and event type."""
    wanted = expected.by_window(days)
    for day in days:
        for event_type in expected.event_types():
            found = held_total(held, event_type, day, report)
            count = wanted.get((day.isoformat(), event_type), 0)
            report.counts.setdefault(day.isoformat(), {})[event_type] = {
                "expected": count, "found": found, "difference": found - count}
        report.checked_days.append(day.isoformat())


def held_total(held: HeldEvents, event_type: str, day: dt.date, report: ReconcileReport) -> int:
    """Hyperline's count of `event_type` events with timestamps on `day`, once the filters are seen to apply."""
    low, high = _ms(day), _ms(day) + DAY_MS - 1
    since, until = _text(low), _text(high)
    totals = []
    for order in ("asc", "desc"):
        page = held.list_events(event_type, timestamp_gte=since, timestamp_lte=until, sort="timestamp",
                                order=order, take=1)
        report.requests += 1
        ignored = _ignored(page.events, event_type, low, high)
        if ignored:
            raise FilterIgnoredError(
                f"Hyperline ignored the filter {ignored} of GET /v1/events?event_type={event_type}&timestamp_gte="
                f"{since}&timestamp_lte={until}&sort=timestamp&order={order}&take=1 (it answered "
                f"{_describe(page.events[0])}): its count cannot be trusted")
        totals.append(page.total)
    if totals[0] != totals[1]:
        raise FilterIgnoredError(f"Hyperline counted {totals[0]} then {totals[1]} {event_type} events on {day} "
                                 "for one filter: the count cannot be trusted")
    return totals[0]


def _ignored(events: list[dict[str, Any]], event_type: str, low: int, high: int) -> str | None:
    for event in events:
        if event.get("event_type") != event_type:
            return "event_type"
        try:
            moment = epoch_ms(event.get("timestamp"))
        except (TypeError, ValueError):
            return "timestamp_gte/timestamp_lte (an event without a readable timestamp)"
        if moment < low:
            return "timestamp_gte"
        if moment > high:
            return "timestamp_lte"
    return None


def _describe(event: dict[str, Any]) -> str:
    return f"{event.get('event_type')}/{event.get('record_id')} at {event.get('timestamp')}"


def _ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


def _text(moment: int) -> str:
    return timestamp_text(dt.datetime.fromtimestamp(moment / 1000, dt.UTC))


def _day_of(moment: int) -> str:
    return _text(moment)[:10]
