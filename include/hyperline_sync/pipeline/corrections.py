"""Corrections from the source: a unit that comes back at another version (a new ETag of an archive
object, a new version of a warehouse slice) after it was synced.

The dedup keeps such a unit from sending again what it already sent, so a changed event or one that
disappeared would otherwise stay at Hyperline as first sent. Every done unit leaves a manifest of
what Hyperline holds from it (`state.sent_manifest`); when the unit is synced at another version, its
events are compared with it by record id (`pipeline.corrections`):

- `off`: no manifest, no comparison;
- `report`: the changed and gone ids are listed in the run report and audited as `reported`;
  nothing changes at Hyperline (and the manifest keeps what Hyperline holds);
- `retract`: changed events are sent again (an event whose event_type changed is deleted first, so
  it is never held twice) and gone ones are deleted (`DELETE /v1/events`). When the run's deletions
  would pass `tuning.corrections_approval_over`, they are audited as `pending_approval` instead and
  left to the DAG's approval task (`orchestration.corrections_approval`).

A dry run compares and reports what would change, and writes nothing. Every correction made is a row
of the ledger's audit table (`state.audit`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from hyperline_sync.pipeline.transform import to_events
from hyperline_sync.state import audit
from hyperline_sync.state.sent_manifest import (
    Entry,
    Manifest,
    frame_hashes,
    manifest_path,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:
    from hyperline_sync.pipeline.sync import SyncJob
    from hyperline_sync.sources.base import Unit
    from hyperline_sync.state.report import PartitionOutcome

log = logging.getLogger(__name__)

MAX_LISTED = 1000  # ids per kind listed in a run report (all are in the audit table)
CHANGED, GONE = "changed", "gone"


class Retractor(Protocol):
    """A sender that can also delete (the orchestration's hook sender)."""

    def send_events(self, events: Iterable[dict], *, prevalidated: bool = False) -> Any: ...

    def delete_events(self, record_ids: list[str]) -> int: ...


@dataclass
class UnitCorrections:
    job: SyncJob
    unit: Unit
    old: Manifest | None
    seen: dict[str, Entry] = field(default_factory=dict)
    events: dict[str, dict] = field(default_factory=dict)  # of changed ids, the new event

    @classmethod
    def for_unit(cls, job: SyncJob, unit: Unit) -> UnitCorrections | None:
        if job.pipeline.corrections == "off":
            return None
        path = manifest_path(job.state_dir, job.pipeline.name, unit.day.isoformat(), unit.key)
        return cls(job, unit, read_manifest(path))

    @property
    def comparing(self) -> bool:
        """Only a unit synced before at another version is compared (a resend of the same one is not)."""
        return self.old is not None and self.old.etag != self.unit.etag

    def observe(self, frame: pd.DataFrame, hashes: np.ndarray | None = None) -> None:
        """Every transformed event of the unit, chunk by chunk (before the dedup, resumed chunks
        included), with their `frame_hashes` if the reader computed them already."""
        if frame.empty:
            return
        digests = (frame_hashes(frame) if hashes is None else hashes).tolist()
        # record.id is the messageId (`record.build_record`): the events are built only if they changed
        ids, types = frame["message_id"].tolist(), frame["event_type"].tolist()
        changed: dict[str, int] = {}  # the row of its first copy
        for row, (record_id, event_type, digest) in enumerate(zip(ids, types, digests, strict=True)):
            entry = (event_type, digest)
            self.seen.setdefault(record_id, entry)
            if self.comparing and self.old is not None and record_id in self.old.entries and \
                    self.old.entries[record_id] != entry and record_id not in self.events:
                changed.setdefault(record_id, row)
        if changed:
            self.events.update(zip(changed, to_events(frame.iloc[list(changed.values())]), strict=True))

    def finish(self, acked: Iterable[str], outcome: PartitionOutcome) -> None:
        """Apply the corrections (as `corrections` says) and write the unit's manifest; before the unit is
        recorded done, so that a failure here leaves it to be synced again."""
        job = self.job
        entries = dict(self.old.entries) if self.old is not None else {}
        entries.update({i: self.seen[i] for i in acked if i in self.seen})
        if self.comparing and self.old is not None:
            gone = sorted(i for i in self.old.entries if i not in self.seen)
            changed = sorted(self.events)
            if gone or changed:
                self._apply(changed, gone, entries, outcome)
        if not job.dry_run:
            write_manifest(manifest_path(job.state_dir, job.pipeline.name, self.unit.day.isoformat(), self.unit.key),
                           Manifest(self.unit.etag, entries))

    def _apply(self, changed: list[str], gone: list[str], entries: dict[str, Entry],
               outcome: PartitionOutcome) -> None:
        job, mode = self.job, self.job.pipeline.corrections
        summary = outcome_corrections(outcome)
        summary["changed"] += len(changed)
        summary["gone"] += len(gone)
        _listed(summary, "changed_ids", changed)
        _listed(summary, "gone_ids", gone)
        log.warning("object %s changed at the source after it was synced: %d events changed, %d gone (%s%s)",
                    self.unit.key, len(changed), len(gone), mode, ", dry run" if job.dry_run else "")
        if job.dry_run:
            summary["would_" + ("resend" if mode == "retract" else "report")] += len(changed)
            summary["would_" + ("delete" if mode == "retract" else "report")] += len(gone)
            return
        if mode == "report":
            self._audit(CHANGED, audit.REPORTED, changed)
            self._audit(GONE, audit.REPORTED, gone)
            return
        sender = _retractor(job)
        retyped = [i for i in changed if self.old is not None and self.old.entries[i][0] != self.seen[i][0]]
        if retyped:
            sender.delete_events(retyped)
        if changed:
            sent = sender.send_events([self.events[i] for i in changed], prevalidated=True)
            refused = {f.event["record"]["id"] for f in sent.failed}
            resent = [i for i in changed if i not in refused]
            entries.update({i: self.seen[i] for i in resent})
            summary["resent"] += self._audit(CHANGED, audit.RESENT, resent)
            if refused:
                log.error("object %s: Hyperline refused %d corrected events: %s", self.unit.key, len(refused),
                          ", ".join(sorted(refused)[:20]))
        for record_id in gone:
            entries.pop(record_id, None)
        already = audit.count(job.ledger.engine, job.pipeline.name, job.run_id, (audit.DELETED, audit.PENDING_APPROVAL))
        if already + len(gone) > job.pipeline.tuning.corrections_approval_over:
            summary["pending_approval"] += self._audit(GONE, audit.PENDING_APPROVAL, gone)
            return
        if gone:
            sender.delete_events(gone)
        summary["deleted"] += self._audit(GONE, audit.DELETED, gone)

    def _audit(self, change: str, action: str, record_ids: list[str]) -> int:
        job = self.job
        return audit.record(job.ledger.engine, job.pipeline.name, job.run_id, self.unit.day.isoformat(),
                            self.unit.key, change, action, record_ids)


def outcome_corrections(outcome: PartitionOutcome) -> dict[str, Any]:
    if outcome.corrections is None:
        outcome.corrections = {name: 0 for name in ("changed", "gone", "resent", "deleted", "pending_approval",
                                                    "would_resend", "would_delete", "would_report")}
        outcome.corrections.update(changed_ids=[], gone_ids=[])
    return outcome.corrections


def _listed(summary: dict[str, Any], name: str, ids: list[str]) -> None:
    room = MAX_LISTED - len(summary[name])
    summary[name].extend(ids[:max(room, 0)])


def _retractor(job: SyncJob) -> Retractor:
    sender = job.sender
    if sender is None or not hasattr(sender, "delete_events"):
        raise ValueError("corrections: retract needs a sender that can delete events at Hyperline")
    return sender  # type: ignore[return-value]
