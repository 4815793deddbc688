"""One partition end to end: claim, read, transform, dedup, send, checkpoint, report.

This is the single code path behind the DAG's mapped sync task and the `preview` command. For each
unit of the day not yet done (an archive object: key + ETag; see `sources`) it streams bounded,
transformed chunks through the messageId dedup, hands the events to the sender, writes every reject
to the unit's dead letters, and records the unit as done only once every event of it has
Hyperline's answer (`unit_sync`). After every settled chunk the unit is checkpointed
(`state.checkpoint`), so a rerun resumes after what Hyperline already answered and never mistakes an
unsent event for a duplicate. The partition's claim belongs to one task attempt and is renewed by a
heartbeat while it syncs (`state.claims`); every error text is redacted (`ports.redact_secrets`)
before it reaches the ledger, the outcome or a log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hyperline_sync.config.models import PipelineConfig
from hyperline_sync.insight.usage import UsageTally
from hyperline_sync.pipeline.breaker import CircuitBreaker
from hyperline_sync.pipeline.dedup import SeenIds
from hyperline_sync.pipeline.id_index import pending_earlier_ids, units_to_sync
from hyperline_sync.pipeline.ports import Sender
from hyperline_sync.pipeline.unit_pool import UnitPool
from hyperline_sync.pipeline.unit_sync import (
    PartitionFailedError,
    RejectionGuard,
    SystemicRejectionError,
    UnitSync,
    to_events,
)
from hyperline_sync.pipeline.volume import partition_warning
from hyperline_sync.redact import redact_secrets
from hyperline_sync.sources.base import ArchiveSource, PartitionSource, Unit
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state import store
from hyperline_sync.state.claims import ClaimHeartbeat
from hyperline_sync.state.deadletter import dead_letter_file, dead_letter_path
from hyperline_sync.state.ledger import DONE, FAILED, Ledger, PartitionBusyError
from hyperline_sync.state.report import PartitionOutcome, run_dir
from hyperline_sync.state.store import Location

log = logging.getLogger(__name__)

__all__ = ["PartitionFailedError", "Sender", "SyncJob", "SystemicRejectionError", "discard_dry_run_state",
           "dry_run_dir", "sync_partition", "to_events", "units_to_sync"]

GC_YOUNG_THRESHOLD = 50_000
_DRY_RUN_STATE = "state"  # the subfolder of dry_run_dir holding a dry run's ids


EventSink = Callable[[str, list[dict]], None]
"""Where a dry run puts the events it would send: (partition, events)."""


@dataclass
class SyncJob:
    """Everything one partition sync needs; built by the DAG task or the CLI."""

    pipeline: PipelineConfig
    ledger: Ledger
    source: PartitionSource
    state_dir: Location  # a folder, or a prefix in object storage (`state.store`)
    output_dir: Location
    run_id: str
    owner: str
    sender: Sender | None = None
    event_sink: EventSink | None = None
    dry_run: bool = False
    resend: bool = False
    breaker: CircuitBreaker | None = None
    secrets: tuple[str, ...] = ()  # removed from every error text (the Hyperline API key)
    usage: UsageTally | None = None  # what is sent (a dry run: written), per customer and event type
    run_days: frozenset[str] = frozenset()  # every day the run syncs: earlier ones are indexed (`id_index`)

    @property
    def claim_ttl(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.pipeline.tuning.claim_ttl_minutes)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.secrets)


def dry_run_dir(output_dir: Location, pipeline: str, run_id: str) -> Location:
    """A dry run's own folder, so that it never touches real state: the events it would send
    (`<day>.jsonl.gz`), its dead letters (`dead_letters/`) and, in `state/`, the ids its days would
    have sent, read by its later days for dedup and removed by the run's summarize."""
    return run_dir(output_dir, pipeline, run_id) / "dry_run"


def discard_dry_run_state(output_dir: Location, pipeline: str, run_id: str) -> None:
    """Remove a dry run's id store once the run is over (its events and dead letters stay)."""
    with contextlib.suppress(OSError):
        store.remove_tree(dry_run_dir(output_dir, pipeline, run_id) / _DRY_RUN_STATE)


def _dry_run(job: SyncJob) -> Location:
    return dry_run_dir(job.output_dir, job.pipeline.name, job.run_id)


def sync_partition(job: SyncJob, day: dt.date) -> PartitionOutcome:
    """Sync one received day.

    Raises PartitionFailedError when objects could not be read (the others are still synced) or
    when Hyperline refused most events (SystemicRejectionError), PartitionBusyError when another
    attempt holds the day or took the claim over, and lets the sender's errors (Hyperline
    unreachable, bad credentials) through after recording them, redacted.
    """
    if job.sender is None and not job.dry_run:
        raise ValueError("a sync that is not a dry run needs a sender")
    partition = day.isoformat()
    started = time.monotonic()
    # Before the claim and before anything is sent: progress that cannot be saved must not be made.
    # A dry run writes only below the output folder, so it needs no write access to the state.
    folders = [job.output_dir] if job.dry_run else [job.state_dir, job.output_dir]
    for folder in {str(f): f for f in folders}.values():
        store.check_writable(folder, f"{partition}-{os.getpid()}")
    if not job.dry_run:
        # Claim before reading which objects are done: read earlier, another run could finish them
        # in between, and this run would sync them again.
        _claim(job, day)
    outcome = PartitionOutcome(partition, "dry_run" if job.dry_run else DONE)
    errors: list[str] = []
    heartbeat = None if job.dry_run else ClaimHeartbeat(job.ledger, job.pipeline.name, partition, job.owner,
                                                        job.claim_ttl)
    try:
        with heartbeat or contextlib.nullcontext():
            objects, todo = _sync_units(job, day, outcome, errors, heartbeat)
        if not errors:  # every unit of the day is done: its data is synced up to the newest unit's
            outcome.watermark = max((u.watermark for u in objects if u.watermark is not None), default=None)
            outcome.warning = partition_warning(job.ledger, job.pipeline, day, outcome.counts.read,
                                                {u.key for u in objects} - {u.key for u in todo})
            if outcome.warning:
                log.warning("partition %s: %s", partition, outcome.warning)
                if job.pipeline.tuning.empty_partition == "fail":
                    errors.append(outcome.warning)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(AttributeError):  # what this run did before the error, for the run report
            exc.partition_outcome = outcome  # type: ignore[attr-defined]
        raise
    finally:
        outcome.seconds = round(time.monotonic() - started, 3)
        if errors:
            outcome.status, outcome.error = FAILED, job.redact("; ".join(errors))
        if not job.dry_run:
            job.ledger.finish(job.pipeline.name, partition, job.owner, outcome.status, outcome.error,
                              watermark=outcome.watermark)
            outcome.ledger_totals = job.ledger.partitions(job.pipeline.name, [partition])[partition].counts
    if errors:
        failed = PartitionFailedError(f"partition {partition} failed: {outcome.error}")
        failed.partition_outcome = outcome
        raise failed
    return outcome


def _sync_units(job: SyncJob, day: dt.date, outcome: PartitionOutcome, errors: list[str],
                heartbeat: ClaimHeartbeat | None) -> tuple[list[Unit], list[Unit]]:
    """Sync the day's units not done yet; a unit that cannot be read is an error, the others go on."""
    partition = day.isoformat()
    objects, todo = units_to_sync(job.source, job.ledger, job.pipeline.name, day, resend=job.resend)
    outcome.objects_total, outcome.objects_skipped = len(objects), len(objects) - len(todo)
    log.info("partition %s: %d objects, %d already done, %d to sync%s", partition, len(objects),
             len(objects) - len(todo), len(todo), " (dry run)" if job.dry_run else "")
    guard = RejectionGuard(job.pipeline.tuning.max_rejected_share)
    units = [UnitSync(job, obj, outcome, _letters_path(job, obj), heartbeat, guard) for obj in todo]
    if not units:
        return objects, todo
    for unit in units:  # before the day's ids are loaded: a resumed unit's acked ids are cut back first
        unit.prepare()
    with _unit_pool(job, todo) as pool:  # its workers start reading while the day's ids load
        own_store = _dry_run(job) / _DRY_RUN_STATE if job.dry_run else None
        # Before the committed ids are loaded: a unit done in between is then in those
        pending = pending_earlier_ids(job, day, own_store or job.state_dir)
        seen = SeenIds(job.state_dir, job.pipeline.name, day, job.pipeline.tuning.dedup_window_days,
                       include_own_partition=not job.resend, dry_run_dir=own_store, pending=pending)
        with _gc_relaxed():
            _run_units(job, partition, units, seen, pool, outcome, errors)
    return objects, todo


def _unit_pool(job: SyncJob, todo: list[Unit]) -> contextlib.AbstractContextManager[UnitPool | None]:
    """Worker processes reading the units ahead (`tuning.processes`, at most one per unit), or none:
    one process or one unit, or a source that cannot be read elsewhere (a warehouse) reads in this one."""
    processes = min(job.pipeline.tuning.processes, len(todo))
    if processes < 2 or not isinstance(job.source, ArchiveSource):
        return contextlib.nullcontext()
    log.info("partition %s: %d worker processes read its objects", todo[0].day.isoformat(), processes)
    return UnitPool(job.source.handover(), todo, processes, job.pipeline.tuning.chunk_size,
                    hash_content=job.pipeline.corrections != "off")


def _run_units(job: SyncJob, partition: str, units: list[UnitSync], seen: SeenIds, pool: UnitPool | None,
               outcome: PartitionOutcome, errors: list[str]) -> None:
    for unit in units:
        try:
            unit.run(seen, pool.chunks if pool is not None else None)
        except UnitReadError as exc:
            errors.append(f"{unit.unit.key}: {exc}")
            log.error("partition %s: object %s failed: %s", partition, unit.unit.key, job.redact(str(exc)))
            continue
        outcome.objects_synced += 1


def _letters_path(job: SyncJob, unit: Unit) -> Location:
    partition = unit.day.isoformat()
    if job.dry_run:
        return dead_letter_file(_dry_run(job) / "dead_letters", partition, unit.key)
    return dead_letter_path(job.output_dir, job.pipeline.name, partition, unit.key)


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
    """Claim the partition, then make sure no other run syncs a later day within the dedup window.

    A messageId seen on two days must end at Hyperline as the earlier day's copy, sent once. A later
    day drops the ids of the earlier days its run syncs or another run has claimed (`id_index`), so
    neighbouring days sync side by side. What it cannot know is an earlier day another run claims
    after it started: that day's copies could land first and be overwritten by the later day's.
    So an earlier day waits while another run holds a later one. Both claim, then look: at least one
    of two such runs sees the other (PartitionBusyError, retried later).
    """
    name, partition, window = job.pipeline.name, day.isoformat(), job.pipeline.tuning.dedup_window_days
    previous = job.ledger.claim(name, partition, job.owner, job.claim_ttl, run_id=job.run_id)
    later = [(day + dt.timedelta(days=n)).isoformat() for n in range(1, window + 1)]
    others = job.ledger.live_claims(name, later, other_than=job.owner, other_run_than=job.run_id) if later else {}
    if others:
        job.ledger.release(name, partition, job.owner, previous)
        held = ", ".join(f"{p} by {holder}" for p, holder in sorted(others.items()))
        raise PartitionBusyError(
            f"partition {partition} of pipeline {name} waits: another run is syncing a later partition within the "
            f"{window}-day dedup window ({held}); a messageId on both days must be sent from the earlier one, last"
        )
