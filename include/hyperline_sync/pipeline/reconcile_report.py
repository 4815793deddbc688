"""What a reconcile found: counts per received day and event type, the ids, and how events compare.

The report is what `hyperline-sync reconcile --output` writes (`reconcile.json`): `checked`,
`missing`, `different`, `unexpected` (record ids), `repaired`, `still_wrong`, `days` (per received
day and event type: expected, found, missing, different; unexpected events, which have no received
day, are counted under their timestamp's UTC day), `checked_days`, `complete` and `error`. A counts
reconcile (`counts_only`) fills `counts` instead: per UTC day of event timestamp and event type,
expected, found (Hyperline's `meta.total`) and difference (found - expected); its `checked_days` are
those timestamp days and `derived_days` the received days whose events it counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_DIFFERENCES = 1000  # ids whose differing fields are listed (all are in `different`)
COMPARED = ("customer_id", "event_type", "timestamp", "record")
STATS = ("expected", "found", "missing", "different", "unexpected")


@dataclass
class ReconcileReport:
    pipeline: str = ""
    start: str = ""
    end: str = ""
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    repaired: int = 0
    still_wrong: list[str] = field(default_factory=list)
    repair: bool = False
    days: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    differences: dict[str, list[str]] = field(default_factory=dict)
    checked_days: list[str] = field(default_factory=list)
    counts_only: bool = False
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    derived_days: list[str] = field(default_factory=list)
    requests: int = 0
    complete: bool = False
    error: str | None = None

    def stats(self, day: str, event_type: str) -> dict[str, int]:
        return self.days.setdefault(day, {}).setdefault(event_type, dict.fromkeys(STATS, 0))

    def note_difference(self, record_id: str, fields: list[str]) -> None:
        if len(self.differences) < MAX_DIFFERENCES:
            self.differences[record_id] = fields

    @property
    def exact(self) -> bool:
        """Hyperline holds what the pipeline sends (after a repair: once repaired); unexpected events aside.
        Counts only: every count of Hyperline equals the count sent."""
        if self.counts_only:
            return all(s["difference"] == 0 for types in self.counts.values() for s in types.values())
        if self.repair:
            return not self.still_wrong
        return not self.missing and not self.different

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "exact": self.exact}


def epoch_ms(timestamp: Any) -> int:
    """A timestamp (ISO 8601 with a zone, or epoch milliseconds) as epoch milliseconds."""
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        return int(timestamp)
    parsed = dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return round(parsed.timestamp() * 1000)


def same_event(sent: dict, held: dict) -> list[str]:
    """The fields in which what Hyperline holds differs from what the pipeline sends (none: the same).

    Timestamps compare as instants (Hyperline may answer `...00.000Z` for `...00Z`), numbers by value.
    """
    fields = []
    for name in COMPARED:
        if name == "timestamp":
            try:
                if epoch_ms(sent[name]) != epoch_ms(held.get(name)):
                    fields.append(name)
            except (TypeError, ValueError):
                fields.append(name)
        elif not _equal(sent.get(name), held.get(name)):
            fields.append(name)
    return fields


def _equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b  # 3 and 3.0 are one number in JSON
    return a == b and type(a) is type(b)
