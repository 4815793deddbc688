"""One partition end to end: claim, read, transform, dedup, send, checkpoint, report.

This is the single code path behind the DAG's mapped sync task and the `preview` command. For each
unit of the day not yet done (an archive object: key + ETag; see `sources`) it streams bounded,
transformed chunks through the messageId dedup, hands the events to the sender, writes every reject
to the unit's dead letters, and records the unit as done only once every event of it has
Hyperline's answer. Ids are committed for dedup at the same moment, so a rerun resumes from whole objects and
never mistakes an unsent event for a duplicate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from hyperline_provider.results import HyperlineUnavailableError
from hyperline_sync.config.models import PipelineConfig
from hyperline_sync.pipeline.breaker import CircuitBreaker
from hyperline_sync.pipeline.dedup import SeenIds
from hyperline_sync.pipeline.transform import ChunkResult
from hyperline_sync.sources.base import PartitionSource, Unit
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state.deadletter import ObjectDeadLetters, dead_letter_file, dead_letter_path
from hyperline_sync.state.ledger import DONE, FAILED, Counts, Ledger, PartitionBusyError
from hyperline_sync.state.report import PartitionOutcome, run_dir

log = logging.getLogger(__name__)

EVENT_FIELDS = ("customer_id", "event_type", "timestamp", "record")
RENEW_SECONDS = 60.0
GC_YOUNG_THRESHOLD = 50_000
_DRY_RUN_STATE = "state"  # the subfolder of dry_run_dir holding a dry run's ids


class SendOutcome(Protocol):
    accepted: int
    failed: list  # of objects with .event and .reason
    requests: int
    retries: int


class Sender(Protocol):
    """What the sync needs of a Hyperline client (HyperlineHook satisfies it)."""

    def send_events(self, events: Iterable[Mapping], *, prevalidated: bool = False) -> SendOutcome: ...


EventSink = Callable[[str, list[dict]], None]
"""Where a dry run puts the events it would send: (partition, events)."""


class PartitionFailedError(RuntimeError):
    """Some objects of the partition could not be synced; the message names them and why."""


@dataclass
class SyncJob:
    """Everything one partition sync needs; built by the DAG task or the CLI."""

    pipeline: PipelineConfig
    ledger: Ledger
    source: PartitionSource
    state_dir: Path
    output_dir: Path
    run_id: str
    owner: str
    sender: Sender | None = None
    event_sink: EventSink | None = None
    dry_run: bool = False
    resend: bool = False
    breaker: CircuitBreaker | None = None

    @property
    def claim_ttl(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.pipeline.tuning.claim_ttl_minutes)


def to_events(frame: pd.DataFrame) -> list[dict]:
    """Hyperline event dicts from the transform's columns (column-wise, no per-row pandas access;
    a dict display is twice as fast as dict(zip(...)) here)."""
    columns = [frame[name].tolist() for name in EVENT_FIELDS]
    return [
        {"customer_id": customer_id, "event_type": event_type, "timestamp": timestamp, "record": record}
        for customer_id, event_type, timestamp, record in zip(*columns, strict=True)
    ]


def dry_run_dir(output_dir: Path, pipeline: str, run_id: str) -> Path:
    """A dry run's own folder, so that it never touches real state: the events it would send
    (`<day>.jsonl.gz`), its dead letters (`dead_letters/`) and, in `state/`, the ids its days would
    have sent, read by its later days for dedup and removed by the run's summarize."""
    return run_dir(output_dir, pipeline, run_id) / "dry_run"


def discard_dry_run_state(output_dir: Path, pipeline: str, run_id: str) -> None:
    """Remove a dry run's id store once the run is over (its events and dead letters stay)."""
    shutil.rmtree(dry_run_dir(output_dir, pipeline, run_id) / _DRY_RUN_STATE, ignore_errors=True)


def _dry_run(job: SyncJob) -> Path:
    return dry_run_dir(job.output_dir, job.pipeline.name, job.run_id)


def units_to_sync(
    source: PartitionSource, ledger: Ledger, pipeline: str, day: dt.date, *, resend: bool = False
) -> tuple[list[Unit], list[Unit]]:
    """The day's units, and those not done at their current version (all of them with `resend`)."""
    units = source.list_units(day)
    done = {} if resend else ledger.done_objects(pipeline, day.isoformat())
    return units, [u for u in units if done.get(u.key) != u.etag]


def sync_partition(job: SyncJob, day: dt.date) -> PartitionOutcome:
    """Sync one received day.

    Raises PartitionFailedError when objects could not be read (the others are still synced), and
    lets the sender's errors (Hyperline unreachable, bad credentials) through after recording them.
    """
    if job.sender is None and not job.dry_run:
        raise ValueError("a sync that is not a dry run needs a sender")
    partition = day.isoformat()
    started = time.monotonic()
    if not job.dry_run:
        # Claim before reading which objects are done: read earlier, another run could finish them
        # in between, and this run would sync them again.
        _claim(job, day)
    outcome = PartitionOutcome(partition, "dry_run" if job.dry_run else DONE)
    errors: list[str] = []
    try:
        objects, todo = units_to_sync(job.source, job.ledger, job.pipeline.name, day, resend=job.resend)
        outcome.objects_total, outcome.objects_skipped = len(objects), len(objects) - len(todo)
        log.info("partition %s: %d objects, %d already done, %d to sync%s", partition, len(objects),
                 len(objects) - len(todo), len(todo), " (dry run)" if job.dry_run else "")
        seen = SeenIds(job.state_dir, job.pipeline.name, day, job.pipeline.tuning.dedup_window_days,
                       include_own_partition=not job.resend,
                       dry_run_dir=_dry_run(job) / _DRY_RUN_STATE if job.dry_run else None)
        renewal = _ClaimRenewal(job, partition)
        with _gc_relaxed():
            for obj in todo:
                unit = _ObjectSync(job, obj, seen, outcome, renewal)
                try:
                    counts = unit.run()
                except UnitReadError as exc:
                    outcome.counts.add(unit.counts)  # what was read (and sent) before it broke off, as in the ledger
                    errors.append(f"{obj.key}: {exc}")
                    log.error("partition %s: object %s failed: %s", partition, obj.key, exc)
                    continue
                outcome.counts.add(counts)
                outcome.objects_synced += 1
        if not errors:  # every unit of the day is done: its data is synced up to the newest unit's
            outcome.watermark = max((u.watermark for u in objects if u.watermark is not None), default=None)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(AttributeError):
            exc.partition_outcome = outcome  # what this run did before the error, for the run report
        raise
    finally:
        outcome.seconds = round(time.monotonic() - started, 3)
        if errors:
            outcome.status, outcome.error = FAILED, "; ".join(errors)
        if not job.dry_run:
            job.ledger.finish(job.pipeline.name, partition, job.owner, outcome.status, outcome.error,
                              watermark=outcome.watermark)
            outcome.ledger_totals = job.ledger.partitions(job.pipeline.name, [partition])[partition].counts
    if errors:
        failed = PartitionFailedError(f"partition {partition} failed: {outcome.error}")
        failed.partition_outcome = outcome
        raise failed
    return outcome


@contextlib.contextmanager
def _gc_relaxed() -> Iterator[None]:
    """Run the cyclic GC's youngest generation every GC_YOUNG_THRESHOLD allocations, not 700.

    A chunk in flight keeps tens of thousands of containers alive (records, event dicts, frames);
    at the default threshold the collector rescans them over and over: ~0.5 s of CPU per 1M lines
    (bench/bench_pipeline.py). Events hold no cycles, and garbage that has some is still collected,
    a little later. Process-wide while it lasts; the previous thresholds are restored.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG_THRESHOLD, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _claim(job: SyncJob, day: dt.date) -> None:
    """Claim the partition, then make sure no other run syncs a day within the dedup window.

    A messageId seen on two days must end at Hyperline as the earlier day's copy. One run syncs its
    days oldest first, but two runs (a backfill and the hourly run) syncing neighbouring days at once
    would each send their copy, and the later day's could land last. Both claim, then look: at
    least one of two such runs sees the other and backs off (PartitionBusyError, retried later).
    """
    name, partition, window = job.pipeline.name, day.isoformat(), job.pipeline.tuning.dedup_window_days
    previous = job.ledger.claim(name, partition, job.owner, job.claim_ttl, run_id=job.run_id)
    near = [(day + dt.timedelta(days=n)).isoformat() for n in range(-window, window + 1) if n]
    others = job.ledger.live_claims(name, near, other_than_run=job.run_id) if near else {}
    if others:
        job.ledger.release(name, partition, job.owner, previous)
        held = ", ".join(f"{p} by {holder}" for p, holder in sorted(others.items()))
        raise PartitionBusyError(
            f"partition {partition} of pipeline {name} waits: another run is syncing a partition within the "
            f"{window}-day dedup window ({held}); a messageId on both days must be sent from the earlier one"
        )


class _ClaimRenewal:
    """Keeps the partition's claim alive while it is synced: renewed every RENEW_SECONDS (or a
    quarter of the TTL if shorter), not every chunk, whose ledger commit cost ~3 ms each."""

    def __init__(self, job: SyncJob, partition: str) -> None:
        self.job, self.partition = job, partition
        self.every = min(RENEW_SECONDS, job.claim_ttl.total_seconds() / 4)
        self.last = time.monotonic()

    def due(self) -> None:
        """Renew if it is time; raises PartitionBusyError if the claim was lost meanwhile."""
        if self.job.dry_run or time.monotonic() - self.last < self.every:
            return
        job = self.job
        job.ledger.renew(job.pipeline.name, self.partition, job.owner, job.claim_ttl)
        self.last = time.monotonic()


class _ObjectSync:
    """The sync of one unit (an archive object): its chunks, counts, dead letters and delivered ids.

    A chunk's events are sent from a worker thread while the main thread reads and transforms the
    next chunk: one send at a time, settled (counted, dead-lettered, breaker updated) in the main
    thread before the next starts, so at most two chunks of events are held at once.
    """

    def __init__(
        self, job: SyncJob, obj: Unit, seen: SeenIds, outcome: PartitionOutcome, renewal: _ClaimRenewal
    ) -> None:
        self.job, self.obj, self.seen, self.outcome, self.renewal = job, obj, seen, outcome, renewal
        self.partition = obj.day.isoformat()
        letters = (dead_letter_file(_dry_run(job) / "dead_letters", self.partition, obj.key) if job.dry_run
                   else dead_letter_path(job.output_dir, job.pipeline.name, self.partition, obj.key))
        self.letters = ObjectDeadLetters(
            letters,
            self.partition, obj.key, job.run_id,
        )
        self.counts = Counts()
        self.delivered: list[str] = []
        self.in_flight: tuple[Future[SendOutcome], pd.DataFrame] | None = None

    def run(self) -> Counts:
        job, obj = self.job, self.obj
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-send") as pool:
            try:
                for result in job.source.chunks(obj, job.pipeline.tuning.chunk_size):
                    self._chunk(result, pool)
                    self.renewal.due()
                self._settle()
            except BaseException as exc:
                if self.in_flight is not None:
                    # Count what the send in flight delivered, as if it had ended before the error.
                    with contextlib.suppress(Exception):
                        self._settle()
                self.letters.discard()
                if isinstance(exc, UnitReadError) and not job.dry_run:
                    job.ledger.record_object(job.pipeline.name, self.partition, obj.key, obj.etag, FAILED,
                                             self.counts, job.run_id, error=str(exc))
                raise
        path = self.letters.close()
        if path is not None:
            self.outcome.dead_letters.append(str(path))
        self.seen.commit_object(obj.key, self.delivered)  # a dry run's go to its own store
        if not job.dry_run:
            job.ledger.record_object(job.pipeline.name, self.partition, obj.key, obj.etag, DONE, self.counts,
                                     job.run_id)
        log.info("object %s: %s", obj.key, self.counts.as_dict())
        return self.counts

    def _chunk(self, result: ChunkResult, pool: ThreadPoolExecutor) -> None:
        job, counts = self.job, self.counts
        for reject in result.rejects:
            self.letters.add(reject["reason"], reject.get("line_no"), event=reject.get("event"),
                             raw=reject.get("raw"))
        fresh, duplicates = self.seen.filter(result.events)
        counts.read += result.read
        counts.skipped += result.skipped
        counts.rejected += result.rejected
        counts.duplicates += duplicates
        self.outcome.dropped_properties += result.dropped_properties
        if fresh.empty:
            return
        events = to_events(fresh)
        if job.dry_run:
            counts.sent += len(events)
            self.delivered.extend(fresh["message_id"].tolist())  # into the dry run's own store
            if job.event_sink is not None:
                job.event_sink(self.partition, events)
            return
        self._settle()
        if job.breaker is not None:
            job.breaker.check()
        future = pool.submit(job.sender.send_events, events, prevalidated=True)
        self.in_flight = future, fresh

    def _settle(self) -> None:
        """Wait for the send in flight, if any, and account for its outcome."""
        if self.in_flight is None:
            return
        (future, fresh), self.in_flight = self.in_flight, None
        breaker = self.job.breaker
        try:
            sent = future.result()
        except HyperlineUnavailableError as exc:
            if breaker is not None:
                breaker.failure(exc)
            raise
        if breaker is not None:
            breaker.success()
        self.outcome.requests += sent.requests
        self.outcome.retries += sent.retries
        ids = fresh["message_id"].tolist()
        failed_ids = {_record_id(f.event) for f in sent.failed}
        if failed_ids:
            line_of = dict(zip(ids, fresh["line_no"].tolist(), strict=True))
            for failure in sent.failed:
                self.letters.add(failure.reason, line_of.get(_record_id(failure.event)), event=failure.event)
        self.counts.sent += sent.accepted
        self.counts.rejected += len(sent.failed)
        self.delivered.extend(i for i in ids if i not in failed_ids)


def _record_id(event: Mapping) -> object:
    """The event's record.id, or None when the event is too broken to have one."""
    record = event.get("record")
    return record.get("id") if isinstance(record, Mapping) else None
