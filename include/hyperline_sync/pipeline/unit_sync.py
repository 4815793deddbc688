"""The sync of one unit (an archive object, a warehouse slice): its chunks, counts, dead letters,
acknowledged ids and checkpoints (`state.checkpoint`), and the partition's guard against a Hyperline
that refuses everything.

A chunk's events are sent from a worker thread while the source reads and transforms the next
chunk: one send at a time, settled (counted, dead-lettered, breaker updated, checkpointed) in the
main thread before the next chunk is counted, so a checkpoint holds exactly the chunks before it and
at most two chunks of events are held at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hyperline_provider.results import HyperlineUnavailableError
from hyperline_sync.pipeline.dedup import SeenIds, id_file
from hyperline_sync.pipeline.transform import ChunkResult
from hyperline_sync.sources.base import Unit
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state.checkpoint import SavedProgress, UnitCheckpoint
from hyperline_sync.state.claims import ClaimHeartbeat
from hyperline_sync.state.deadletter import ObjectDeadLetters
from hyperline_sync.state.ledger import DONE, FAILED, Counts, PartitionBusyError
from hyperline_sync.state.report import PartitionOutcome

if TYPE_CHECKING:
    from hyperline_sync.pipeline.sync import SyncJob

log = logging.getLogger(__name__)

EVENT_FIELDS = ("customer_id", "event_type", "timestamp", "record")
MIN_REJECTED = 100  # refusals below this many never fail a partition as systemic


class PartitionFailedError(RuntimeError):
    """Some objects of the partition could not be synced; the message names them and why."""


class SystemicRejectionError(PartitionFailedError):
    """Hyperline refused most of a partition's events: a refusal of everything, not bad events."""


class RejectionGuard:
    """Fails the partition when Hyperline refuses more than `max_share` of the events it answered in
    this run of the partition, once at least MIN_REJECTED were refused. Checked after every chunk, so
    a Hyperline (or proxy) answering 400/422 to everything costs a chunk of bisection, not a day."""

    def __init__(self, max_share: float) -> None:
        self.max_share = max_share
        self.accepted = self.refused = 0

    def add(self, accepted: int, refused: int) -> None:
        self.accepted += accepted
        self.refused += refused
        answered = self.accepted + self.refused
        if self.refused >= MIN_REJECTED and self.refused > self.max_share * answered:
            raise SystemicRejectionError(
                f"Hyperline refused {self.refused} of the {answered} events it answered "
                f"({self.refused / answered:.0%}, over tuning.max_rejected_share = {self.max_share:g}): this "
                "looks like a refusal of everything (a proxy, the API or the endpoint), not bad events. The "
                "partition is not marked done; its dead letters are kept and a rerun sends the refused events again"
            )


def to_events(frame: pd.DataFrame) -> list[dict]:
    """Hyperline event dicts from the transform's columns (column-wise, no per-row pandas access;
    a dict display is twice as fast as dict(zip(...)) here)."""
    columns = [frame[name].tolist() for name in EVENT_FIELDS]
    return [
        {"customer_id": customer_id, "event_type": event_type, "timestamp": timestamp, "record": record}
        for customer_id, event_type, timestamp, record in zip(*columns, strict=True)
    ]


class UnitSync:
    """One unit: `prepare()` (before the partition's dedup ids are loaded), then `run(seen)`."""

    def __init__(self, job: SyncJob, unit: Unit, outcome: PartitionOutcome, letters: Path,
                 heartbeat: ClaimHeartbeat | None, guard: RejectionGuard) -> None:
        self.job, self.unit, self.outcome, self.heartbeat, self.guard = job, unit, outcome, heartbeat, guard
        self.partition = unit.day.isoformat()
        self.chunk_size = job.pipeline.tuning.chunk_size
        self.letters = ObjectDeadLetters(letters, self.partition, unit.key, job.run_id)
        self.checkpoint = None if job.dry_run else UnitCheckpoint(
            id_file(job.state_dir, job.pipeline.name, unit.day, unit.key), unit.etag, self.chunk_size)
        self.saved: SavedProgress | None = None
        self.counts = Counts()  # this run's
        self.chunks = 0  # settled chunks from the unit's start, resumed ones included
        self.acked: list[str] = []  # ids delivered since the last checkpoint (a dry run: all of them)
        self.in_flight: tuple[Future[Any], pd.DataFrame, Counts] | None = None

    @property
    def unit_counts(self) -> Counts:
        """The unit's counts over all its attempts: the resumed part's, then this run's."""
        total = Counts()
        if self.saved is not None:
            total.add(self.saved.counts)
        total.add(self.counts)
        return total

    def prepare(self) -> None:
        """Pick the saved progress up (or start over), cutting its files back to the checkpoint."""
        if self.checkpoint is not None:
            if self.job.resend:
                self.checkpoint.clear()
            else:
                self.saved = self.checkpoint.load()
        self.chunks = self.saved.chunks if self.saved else 0
        self.letters.resume(self.saved.letters_bytes if self.saved else 0)
        if self.saved:
            log.info("object %s: resuming after %d chunks already answered by Hyperline (%s)", self.unit.key,
                     self.chunks, self.saved.counts.as_dict())

    def run(self, seen: SeenIds) -> Counts:
        """Sync the unit; its counts (this run's) are added to the outcome whatever happens."""
        job, resumed = self.job, self.chunks
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-send") as pool:
            try:
                for index, result in enumerate(job.source.chunks(self.unit, self.chunk_size)):
                    if index < resumed:
                        seen.replay(result.events)  # answered by an earlier attempt: not sent again
                        self.outcome.resumed += result.read
                        continue
                    self._chunk(result, seen, pool)
                self._settle()
            except BaseException as exc:
                if self.in_flight is not None:
                    # Count what the send in flight delivered, as if it had ended before the error.
                    with contextlib.suppress(Exception):
                        self._settle()
                self.outcome.counts.add(self.counts)
                self._failed(exc)
                raise
        self.outcome.counts.add(self.counts)
        self._done(seen)
        return self.counts

    def _chunk(self, result: ChunkResult, seen: SeenIds, pool: ThreadPoolExecutor) -> None:
        job = self.job
        fresh, duplicates = seen.filter(result.events)
        self._settle()  # the previous chunk is settled (and checkpointed) before this one is counted
        for reject in result.rejects:
            self.letters.add(reject["reason"], reject.get("line_no"), event=reject.get("event"),
                             raw=reject.get("raw"))
        # Counted once settled: a chunk whose send never got an answer is in no count (nor checkpoint).
        chunk = Counts(read=result.read, skipped=result.skipped, rejected=result.rejected, duplicates=duplicates)
        self.outcome.dropped_properties += result.dropped_properties
        if fresh.empty:
            self.counts.add(chunk)
            self._checkpoint()
            return
        events = to_events(fresh)
        if job.dry_run:
            chunk.sent = len(events)
            self.counts.add(chunk)
            self.acked.extend(fresh["message_id"].tolist())  # into the dry run's own store
            if job.event_sink is not None:
                job.event_sink(self.partition, events)
            return
        if job.breaker is not None:
            job.breaker.check()
        if self.heartbeat is not None:
            self.heartbeat.check()  # a zombie whose claim was taken over must not send
        self.in_flight = pool.submit(job.sender.send_events, events, prevalidated=True), fresh, chunk

    def _settle(self) -> None:
        """Wait for the send in flight, if any, account for its outcome and checkpoint the chunk."""
        if self.in_flight is None:
            return
        (future, fresh, chunk), self.in_flight = self.in_flight, None
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
        chunk.sent += sent.accepted
        chunk.rejected += len(sent.failed)
        self.counts.add(chunk)
        self.acked.extend(i for i in ids if i not in failed_ids)
        self.guard.add(sent.accepted, len(sent.failed))
        self._checkpoint()

    def _checkpoint(self) -> None:
        self.chunks += 1
        if self.checkpoint is None:
            return
        if self.heartbeat is not None:
            self.heartbeat.check()  # another attempt may own these files now
        self.checkpoint.save(self.chunks, self.unit_counts, self.acked, self.letters.save())
        self.acked = []

    def _done(self, seen: SeenIds) -> None:
        job, unit = self.job, self.unit
        path = self.letters.close()
        if path is not None:
            self.outcome.dead_letters.append(str(path))
        if self.checkpoint is None:
            seen.commit_object(unit.key, self.acked)  # a dry run's go to its own store
        else:
            seen.commit_object(unit.key, self.checkpoint.acked_ids())
            job.ledger.record_object(job.pipeline.name, self.partition, unit.key, unit.etag, DONE,
                                     self.unit_counts, job.run_id)
            self.checkpoint.clear()
        log.info("object %s: %s", unit.key, self.unit_counts.as_dict())

    def _failed(self, exc: BaseException) -> None:
        """Keep what the failed unit settled: resumable, except after a systemic refusal, whose
        refused events must be sent again; its dead letters are published for the operator."""
        job = self.job
        published = isinstance(exc, SystemicRejectionError | UnitReadError) and not job.dry_run
        if not published:
            self.letters.discard()  # rows of a chunk whose send did not settle
            if job.dry_run or isinstance(exc, PartitionBusyError):
                return  # a zombie that lost its claim writes nothing: the new holder owns the unit
        else:
            path = self.letters.publish()  # the rows so far, the refused chunk's included
            if path is not None:
                self.outcome.dead_letters.append(str(path))
            if isinstance(exc, SystemicRejectionError):
                self.checkpoint.clear()
                self.letters.resume(0)
        with contextlib.suppress(Exception):  # best effort: the ledger itself may be what failed
            job.ledger.record_object(job.pipeline.name, self.partition, self.unit.key, self.unit.etag, FAILED,
                                     self.unit_counts, job.run_id, error=job.redact(f"{type(exc).__name__}: {exc}"))


def _record_id(event: Mapping) -> object:
    """The event's record.id, or None when the event is too broken to have one."""
    record = event.get("record")
    return record.get("id") if isinstance(record, Mapping) else None
