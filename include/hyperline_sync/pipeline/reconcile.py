"""Prove what Hyperline holds: compare what the pipeline sends for a range of received days with
what Hyperline returns, and optionally repair it.

For each received day, the expected events are derived again (`expected.expected_by_day`: the
sync's own code path, read-only, with the same dedup against earlier days). They are looked up by
record id (`record_id__in`, 100 ids a page, per event type since Hyperline requires one), and the
events found are compared field by field (customer_id, event_type, timestamp, record). An id not
found under its event type is looked up under the pipeline's other event types: stored under
another type, it is `different` and, when repaired, deleted first, so it is never held twice.
Hyperline ignores filters it does not know: every page is checked against the filters asked for,
and one that did not apply stops the reconcile (`FilterIgnoredError`) rather than trusting it.

Then, per event type, the events with timestamps inside the range's days are listed; those the
pipeline never sent (not expected and in no id file of the pipeline's state) are `unexpected`:
reported, never deleted. One the range expects under another type is `different` as above.

`repair` resends the missing and different events (Hyperline upserts on event_type + record.id),
then looks them up again: what is still not right is `still_wrong`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hyperline_sync.pipeline.ports import Sender
from hyperline_sync.pipeline.reconcile_report import ReconcileReport, epoch_ms, same_event
from hyperline_sync.pipeline.sent_ids import SentIds

log = logging.getLogger(__name__)

PAGE = 100  # ids per lookup: Hyperline's largest page


class EventPage(Protocol):
    @property
    def total(self) -> int: ...

    @property
    def events(self) -> list[dict[str, Any]]: ...

    def unfiltered(self, event_type: str, record_ids: Iterable[str] | None = None) -> list[dict[str, Any]]: ...


class HeldEvents(Protocol):
    """What Hyperline holds: `GET /v1/events` and `DELETE /v1/events` (the provider's hook fits)."""

    def list_events(self, event_type: str, **filters: Any) -> EventPage: ...

    def delete_events(self, record_ids: list[str]) -> int: ...


class FilterIgnoredError(RuntimeError):
    """Hyperline answered a listing without applying a filter it was asked for."""


@dataclass
class Reconciler:
    """Compares expected events with what `held` returns; `sender` is needed to repair."""

    held: HeldEvents
    sent_ids: SentIds
    sender: Sender | None = None
    report: ReconcileReport = field(default_factory=ReconcileReport)
    _expected: dict[str, dict] = field(default_factory=dict)  # every expected event of the range, by id
    _day_of: dict[str, str] = field(default_factory=dict)
    _to_resend: dict[str, dict] = field(default_factory=dict)
    _to_delete: set[str] = field(default_factory=set)

    def check_day(self, day: dt.date, events: list[dict], event_types: Sequence[str]) -> None:
        """Look up every expected event of the day; `event_types`: all the pipeline sends (for misfiled ids)."""
        partition = day.isoformat()
        by_type: dict[str, list[dict]] = defaultdict(list)
        for event in events:
            by_type[event["event_type"]].append(event)
            self._expected[event["record"]["id"]] = event
            self._day_of[event["record"]["id"]] = partition
        for event_type, expected in sorted(by_type.items()):
            stats = self.report.stats(partition, event_type)
            stats["expected"] += len(expected)
            missing: list[dict] = []
            for page in _pages(expected):
                found = self._lookup(event_type, [e["record"]["id"] for e in page])
                for event in page:
                    record_id = event["record"]["id"]
                    held = found.get(record_id)
                    if held is None:
                        missing.append(event)
                        continue
                    stats["found"] += 1
                    fields = same_event(event, held)
                    if fields:
                        self._different(partition, event_type, event, fields)
            self._missing(partition, event_type, missing, event_types)
        self.report.checked += len(events)
        self.report.checked_days.append(partition)

    def scan_unexpected(self, start: dt.date, end: dt.date, event_types: Sequence[str]) -> None:
        """List each event type's events with timestamps in [start, end) and judge the ones not expected."""
        since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
        until = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC) - dt.timedelta(milliseconds=1)
        for event_type in event_types:
            for held in self._listing(event_type, since, until):
                record_id = held["record_id"]
                expected = self._expected.get(record_id)
                if expected is not None and expected["event_type"] == event_type:
                    continue
                if expected is not None:  # the range sends it under another type: held twice
                    self._different(self._day_of[record_id], expected["event_type"], expected, ["event_type"])
                    self._to_delete.add(record_id)
                    continue
                if record_id in self.sent_ids:
                    continue  # sent from a received day outside the range
                self.report.stats(_day(held["timestamp"]), event_type)["unexpected"] += 1
                self.report.unexpected.append(record_id)

    def repair(self) -> None:
        """Delete what is held under a wrong type, resend the missing and different events, look again."""
        if not self._to_resend:
            return
        if self.sender is None:
            raise ValueError("a repair needs a sender")
        if self._to_delete:
            deleted = self.held.delete_events(sorted(self._to_delete))
            log.info("reconcile: deleted %d events held under another event type", deleted)
        events = list(self._to_resend.values())
        sent = self.sender.send_events(events, prevalidated=True)
        self.report.repaired = sent.accepted
        failed = {f.event["record"]["id"] for f in sent.failed if isinstance(f.event.get("record"), Mapping)}
        still = set(failed)
        by_type: dict[str, list[dict]] = defaultdict(list)
        for event in events:
            by_type[event["event_type"]].append(event)
        for event_type, group in by_type.items():
            for page in _pages(group):
                found = self._lookup(event_type, [e["record"]["id"] for e in page])
                still.update(e["record"]["id"] for e in page
                             if e["record"]["id"] not in found or same_event(e, found[e["record"]["id"]]))
        for event_type in {e["event_type"] for e in events}:  # nothing left under another type
            others = [e["record"]["id"] for e in events if e["event_type"] != event_type]
            for ids in _chunks(others):
                still.update(self._lookup(event_type, ids))
        self.report.still_wrong = sorted(still)

    # ------------------------------------------------------------------ lookups
    def _lookup(self, event_type: str, record_ids: list[str]) -> dict[str, dict]:
        page = self.held.list_events(event_type, record_ids=record_ids, take=PAGE)
        self.report.requests += 1
        stray = page.unfiltered(event_type, record_ids)
        if stray:
            raise FilterIgnoredError(
                f"Hyperline answered GET /v1/events?event_type={event_type}&record_id__in=... with events outside "
                f"the filter (e.g. {stray[0].get('event_type')}/{stray[0].get('record_id')}): the listing cannot be "
                "trusted, nothing was judged from it")
        return {e["record_id"]: e for e in page.events}

    def _listing(self, event_type: str, since: dt.datetime, until: dt.datetime) -> Iterator[dict]:
        low, high = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
        gte, lte = timestamp_text(since), timestamp_text(until)
        skip = 0
        while True:
            page = self.held.list_events(event_type, timestamp_gte=gte, timestamp_lte=lte,
                                         sort="timestamp", order="asc", take=PAGE, skip=skip)
            self.report.requests += 1
            outside = [e for e in page.events if not low <= epoch_ms(e["timestamp"]) <= high]
            stray = page.unfiltered(event_type) + outside
            if stray:
                raise FilterIgnoredError(
                    f"Hyperline answered GET /v1/events?event_type={event_type}&timestamp_gte={gte}&"
                    f"timestamp_lte={lte} with an event outside the filter ({stray[0].get('event_type')}/"
                    f"{stray[0].get('record_id')} at {stray[0].get('timestamp')}): the listing cannot be trusted")
            yield from page.events
            skip += len(page.events)
            if not page.events or skip >= page.total:
                return

    def _missing(self, partition: str, event_type: str, missing: list[dict], event_types: Sequence[str]) -> None:
        misfiled: dict[str, str] = {}
        ids = [e["record"]["id"] for e in missing]
        for other in event_types:
            if other == event_type:
                continue
            for page in _chunks([i for i in ids if i not in misfiled]):
                misfiled.update(dict.fromkeys(self._lookup(other, page), other))
        for event in missing:
            record_id = event["record"]["id"]
            if record_id in misfiled:
                self._different(partition, event_type, event, ["event_type"])
                self._to_delete.add(record_id)
                continue
            self.report.stats(partition, event_type)["missing"] += 1
            self.report.missing.append(record_id)
            self._to_resend[record_id] = event

    def _different(self, partition: str, event_type: str, event: dict, fields: list[str]) -> None:
        record_id = event["record"]["id"]
        if record_id in self._to_resend:
            return
        self.report.stats(partition, event_type)["different"] += 1
        self.report.different.append(record_id)
        self.report.note_difference(record_id, fields)
        self._to_resend[record_id] = event


def _pages(events: list[dict]) -> Iterator[list[dict]]:
    for start in range(0, len(events), PAGE):
        yield events[start:start + PAGE]


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), PAGE):
        yield ids[start:start + PAGE]


def timestamp_text(moment: dt.datetime) -> str:
    """A moment as Hyperline's filters take it: ISO 8601, milliseconds, `Z`."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _day(timestamp: Any) -> str:
    """The UTC day of an event's timestamp: where an unexpected event, which has no received day, is counted."""
    return timestamp_text(dt.datetime.fromtimestamp(epoch_ms(timestamp) / 1000, dt.UTC))[:10]
