"""Replay a day's dead letters after a fix (a mapping change, a customer created at Hyperline).

Dead letters are trimmed and scrubbed, so they are never sent themselves: each row names its unit
(`source_key`) and `line_no`, and those lines are read again **from the source**, transformed with
the pipeline's current mapping, filtered by the same messageId dedup as a sync and sent. Only units
still at the version the ledger has as done are replayed (a changed unit is re-read in full by the
next sync, which rewrites its dead letters).

Counts add up twice: `letters = read + missing` (missing: the unit is gone or changed, or the row
has no line number) and `read = sent + rejected + skipped + duplicates` (skipped: the mapping now
filters the line out). The day's dead-letter files then hold the rows not replayed, the missing
ones and the lines refused again, with their new reason. The ids sent are committed under their own
name next to the day's ids, so a later replay or sync never sends them twice. A replay is recorded
in the ledger with its own counts (`state.operations`); the partition's sync counts stay as they were.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from hyperline_sync.pipeline.dedup import SeenIds
from hyperline_sync.pipeline.unit_sync import PartitionFailedError, job_slice, to_events
from hyperline_sync.state import store
from hyperline_sync.state.claims import ClaimHeartbeat
from hyperline_sync.state.deadletter import dead_letter_file, dead_letters_root, read_dead_letters, scrub, scrub_raw
from hyperline_sync.state.operations import REPLAY, PartitionNotDoneError, hold_done_partition, record_operation
from hyperline_sync.state.report import PartitionOutcome
from hyperline_sync.state.schema import Counts, PartitionBusyError
from hyperline_sync.state.store import Location

if TYPE_CHECKING:
    from hyperline_sync.pipeline.sync import SyncJob

log = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    partition: str
    counts: Counts = field(default_factory=Counts)
    letters: int = 0
    missing: int = 0
    requests: int = 0
    dead_letters: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.counts.balanced and self.letters == self.counts.read + self.missing

    def as_outcome(self, dry_run: bool) -> PartitionOutcome:
        outcome = PartitionOutcome(self.partition, "dry_run" if dry_run else "done", counts=self.counts)
        outcome.requests, outcome.dead_letters = self.requests, self.dead_letters
        return outcome


def _letters_of(root: Location, partition: str) -> dict[str, list[dict]]:
    """source_key -> the dead-letter rows of that unit on the day."""
    rows: dict[str, list[dict]] = defaultdict(list)
    folder = root / partition
    for entry in store.list_files(folder):
        if not entry.name.endswith(".jsonl.gz"):
            continue
        for row in read_dead_letters(folder / entry.name):
            rows[row["source_key"]].append(row)
    return rows


def replay_dead_letters(job: SyncJob, day: dt.date, reason: str | None = None) -> ReplayResult:
    """Replay the day's dead letters (those of `reason` only, if given); a dry run sends nothing,
    rewrites nothing and records nothing."""
    partition, name = day.isoformat(), job.pipeline.name
    root = dead_letters_root(job.output_dir, name)
    by_unit = _letters_of(root, partition)
    result = ReplayResult(partition)
    wanted = {key: [r for r in rows if _of_reason(r["reason"], reason)] for key, rows in by_unit.items()}
    result.letters = sum(len(rows) for rows in wanted.values())
    if not result.letters:
        log.info("partition %s: no dead letters%s to replay", partition, f" of reason {reason}" if reason else "")
        return result
    if job.dry_run:
        _replay_units(job, day, by_unit, wanted, result, None)
        return result
    try:
        with hold_done_partition(job.ledger, name, partition, job.owner, job.claim_ttl):
            _check_neighbours(job, day)
            with ClaimHeartbeat(job.ledger, name, partition, job.owner, job.claim_ttl) as heartbeat:
                _replay_units(job, day, by_unit, wanted, result, heartbeat)
    except PartitionNotDoneError as exc:
        raise PartitionFailedError(str(exc)) from exc
    record_operation(job.ledger, name, REPLAY, partition=partition, run_id=job.run_id, counts=result.counts,
                     detail={"reason": reason, "letters": result.letters, "missing": result.missing,
                             "dead_letters": result.dead_letters})
    return result


def _of_reason(row_reason: str, reason: str | None) -> bool:
    """`reason` selects rows of that reason, detail after a colon ignored (`rejected_by_hyperline: ...`)."""
    return reason is None or row_reason == reason or row_reason.startswith(reason + ":")


def _check_neighbours(job: SyncJob, day: dt.date) -> None:
    """A messageId on two days must be sent from the earlier one: no run may sync a day within the
    dedup window while a replay sends (as for two syncs, see `sync._claim`)."""
    window = job.pipeline.tuning.dedup_window_days
    near = [(day + dt.timedelta(days=n)).isoformat() for n in range(-window, window + 1) if n]
    others = job.ledger.live_claims(job.pipeline.name, near, other_than=job.owner) if near else {}
    if others:
        raise PartitionBusyError(f"partition {day}: a run is syncing days within the dedup window "
                                 f"({', '.join(sorted(others))}); replay once it is over")


def _replay_units(job: SyncJob, day: dt.date, by_unit: dict[str, list[dict]], wanted: dict[str, list[dict]],
                  result: ReplayResult, heartbeat: ClaimHeartbeat | None) -> None:
    name, partition = job.pipeline.name, day.isoformat()
    units = {u.key: u for u in job.source.list_units(day)}
    done = job.ledger.done_objects(name, partition)
    seen = SeenIds(job.state_dir, name, day, job.pipeline.tuning.dedup_window_days, include_own_partition=True)
    for key, rows in sorted(wanted.items()):
        if not rows:
            continue
        unit = units.get(key)
        lines = {r["line_no"]: r for r in rows if r.get("line_no") is not None}
        missing = [r for r in rows if r.get("line_no") is None]
        if unit is None or done.get(key) != unit.etag:
            log.warning("partition %s: unit %s is %s: its %d dead letters are left for the next sync", partition,
                        key, "gone" if unit is None else "not done at its current version", len(rows))
            missing = rows
            lines = {}
        result.missing += len(missing)
        new_rows = _replay_unit(job, unit, key, lines, seen, result, heartbeat) if lines else []
        if job.dry_run:
            continue
        kept = [r for r in by_unit[key] if r not in rows] + missing + new_rows
        path = _rewrite(dead_letter_file(dead_letters_root(job.output_dir, name), partition, key), kept)
        if path is not None:
            result.dead_letters.append(str(path))


def _replay_unit(job: SyncJob, unit: Any, key: str, lines: Mapping[int, dict], seen: SeenIds,
                 result: ReplayResult, heartbeat: ClaimHeartbeat | None) -> list[dict]:
    """Send the unit's `lines` again; returns the dead-letter rows of those refused again."""
    counts, refused_rows, acked = Counts(read=len(lines)), [], []
    found = 0
    base = {"partition": result.partition, "source_key": key, "run_id": job.run_id}
    for chunk in job.source.chunks(unit, job.pipeline.tuning.chunk_size):
        for reject in chunk.rejects:
            if reject.get("line_no") in lines:
                found += 1
                counts.rejected += 1
                refused_rows.append(_row(base, reject["reason"], reject["line_no"], reject.get("event"),
                                         reject.get("raw")))
        events = chunk.events[chunk.events["line_no"].isin(list(lines))]
        found += len(events)
        fresh, duplicates = seen.filter(events)
        counts.duplicates += duplicates
        if fresh.empty:
            continue
        if job.dry_run:
            counts.sent += len(fresh)
            continue
        acked += _send(job, fresh, base, counts, refused_rows, result, heartbeat)
    counts.skipped = counts.read - found  # lines the mapping now filters out
    if not job.dry_run:
        seen.commit_object(f"{key}#replay:{job.run_id}", acked)
    result.counts.add(counts)
    log.info("unit %s: replayed %s", key, counts.as_dict())
    return refused_rows


def _send(job: SyncJob, fresh: pd.DataFrame, base: dict, counts: Counts, refused_rows: list[dict],
          result: ReplayResult, heartbeat: ClaimHeartbeat | None) -> list[str]:
    events, ids, line_nos = to_events(fresh), fresh["message_id"].tolist(), fresh["line_no"].tolist()
    acked: list[str] = []
    step, sender = job_slice(job), job.sender
    if sender is None:
        raise ValueError("a replay that is not a dry run needs a sender")
    for start in range(0, len(events), step):
        if job.breaker is not None:
            job.breaker.check()
        if heartbeat is not None:
            heartbeat.check()
        sent = sender.send_events(events[start:start + step], prevalidated=True)
        result.requests += sent.requests
        refused = {_record_id(f.event): f.reason for f in sent.failed}
        for event, message_id, line_no in zip(events[start:start + step], ids[start:start + step],
                                              line_nos[start:start + step], strict=True):
            if message_id in refused:
                refused_rows.append(_row(base, refused[message_id], int(line_no), event, None))
            else:
                acked.append(message_id)
        counts.sent += sent.accepted
        counts.rejected += len(sent.failed)
    return acked


def _record_id(event: Mapping) -> object:
    record = event.get("record") if isinstance(event, Mapping) else None
    return record.get("id") if isinstance(record, Mapping) else None


def _row(base: dict, reason: str, line_no: int, event: Mapping | None, raw: bytes | str | None) -> dict:
    row: dict[str, Any] = {"reason": reason, **base, "line_no": line_no}
    if event is not None:
        row["event"] = scrub(event)
    if raw is not None:
        row["raw"] = scrub_raw(raw)
    return row


def _rewrite(path: Location, rows: list[dict]) -> Location | None:
    """Replace a unit's dead-letter file with `rows` (atomically); remove it when none are left."""
    if not rows:
        store.remove(path)
        return None
    data = b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows)
    store.write_bytes(path, gzip.compress(data, compresslevel=5, mtime=0))
    return path

