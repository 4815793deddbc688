"""The sync of one unit (an archive object, a warehouse slice): its chunks, counts, dead letters,
acknowledged ids and checkpoints (`state.checkpoint`), and the partition's guard against a Hyperline
that refuses everything.

A chunk's events are sent from a worker thread while the source reads and transforms the next
chunk, in slices of SLICE_BATCHES batches, each checkpointed as soon as Hyperline answered it. The
chunks are settled (counted, their transform rejects dead-lettered, checkpointed whole) in order, in
the main thread.

So that a round trip does not drain the wire at every chunk, up to CHUNKS_IN_FLIGHT chunks are sent
at once, each from its own thread: a chunk's first slice goes out while the earlier chunks' answers
are still coming, and its answer is accounted and checkpointed only once the chunk before it is
settled, so checkpoints stay in order. At most IN_FLIGHT_BATCHES batches are thus posted and not yet
checkpointed: what a fault can make a rerun post again. At most CHUNKS_IN_FLIGHT + 1 chunks of events
are held at once (those being sent, and the one the source is reading).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from hyperline_sync.pipeline.corrections import UnitCorrections
from hyperline_sync.pipeline.dedup import SeenIds, id_file
from hyperline_sync.pipeline.ports import HyperlineUnavailableError
from hyperline_sync.pipeline.transform import ChunkResult, to_events
from hyperline_sync.sources.base import Unit
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state.checkpoint import SavedProgress, UnitCheckpoint
from hyperline_sync.state.claims import ClaimHeartbeat
from hyperline_sync.state.deadletter import ObjectDeadLetters
from hyperline_sync.state.ledger import DONE, FAILED, Counts, PartitionBusyError
from hyperline_sync.state.report import PartitionOutcome
from hyperline_sync.state.store import Location

if TYPE_CHECKING:
    from hyperline_sync.pipeline.sync import SyncJob

log = logging.getLogger(__name__)

MIN_REJECTED = 100  # refusals below this many never fail a partition as systemic
SLICE_BATCHES = 2  # batches per send (the hook's max_in_flight), checkpointed together
CHUNKS_IN_FLIGHT = 2  # chunks being sent at once: a round trip is hidden behind the other's send
IN_FLIGHT_BATCHES = CHUNKS_IN_FLIGHT * SLICE_BATCHES  # one slice each on the wire: what a rerun may post again


class _Sending(NamedTuple):
    """A chunk being sent: its send, its counts and transform rejects (settled with it), and whether
    the chunk before it is settled (``turn``)."""

    future: Future[None]
    chunk: Counts
    rejects: list[dict]
    turn: Future[bool]

ChunkReader = Callable[[Unit, int], Iterator[ChunkResult]]
"""(unit, chunk_size) -> the unit's transformed chunks: a source's `chunks`, or a `UnitPool`'s."""


class PartitionFailedError(RuntimeError):
    """Some objects of the partition could not be synced; the message names them and why."""

    partition_outcome: PartitionOutcome | None = None  # what the run did before it failed


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


def job_slice(job: SyncJob) -> int:
    """Events per send: a fault mid-chunk costs a rerun this slice, not the chunk."""
    return job.pipeline.tuning.batch_size * SLICE_BATCHES


class UnitSync:
    """One unit: `prepare()` (before the partition's dedup ids are loaded), then `run(seen)`."""

    def __init__(self, job: SyncJob, unit: Unit, outcome: PartitionOutcome, letters: Location,
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
        self.answered: frozenset[str] = frozenset()  # of the chunk resumed mid-way, what was answered
        self.partial = Counts()  # the settled slices of the chunk in flight
        self.acked: list[str] = []  # a dry run's delivered ids (a real run's are in the checkpoint)
        self.in_flight: deque[_Sending] = deque()  # oldest first
        self.corrections = UnitCorrections.for_unit(job, unit)  # None with corrections: off

    @property
    def unit_counts(self) -> Counts:
        """The unit's counts over all its attempts: the resumed part's, then this run's."""
        total = Counts()
        if self.saved is not None:
            total.add(self.saved.counts)
        total.add(self.counts)
        total.add(self.partial)
        return total

    def prepare(self) -> None:
        """Pick the saved progress up (or start over), cutting its files back to the checkpoint."""
        if self.checkpoint is not None:
            if self.job.resend:
                self.checkpoint.clear()
            else:
                self.saved = self.checkpoint.load()
        self.chunks = self.saved.chunks if self.saved else 0
        self.answered = self.saved.answered if self.saved else frozenset()
        self.letters.resume(self.saved.letters_bytes if self.saved else 0)
        if self.saved:
            log.info("object %s: resuming after %d chunks already answered by Hyperline (%s)", self.unit.key,
                     self.chunks, self.saved.counts.as_dict())

    def run(self, seen: SeenIds, read: ChunkReader | None = None) -> Counts:
        """Sync the unit, its chunks from `read` (default: the job's source); its counts (this
        run's) are added to the outcome whatever happens."""
        job, resumed = self.job, self.chunks
        read = read or job.source.chunks
        with ThreadPoolExecutor(max_workers=CHUNKS_IN_FLIGHT, thread_name_prefix="sync-send") as pool:
            try:
                for index, result in enumerate(read(self.unit, self.chunk_size)):
                    if self.corrections is not None:
                        self.corrections.observe(result.events, result.content_hashes)
                    if index < resumed:
                        seen.replay(result.events)  # answered by an earlier attempt: not sent again
                        self.outcome.resumed += result.read
                        continue
                    self._chunk(result, seen, pool)
                self._settle()
            except BaseException as exc:
                if self.in_flight:
                    # Count what the sends in flight delivered, as if they had ended before the error.
                    with contextlib.suppress(Exception):
                        self._settle()
                self.counts.add(self.partial)  # the answered slices of a chunk cut short
                self.partial = Counts()
                self.outcome.counts.add(self.counts)
                self._failed(exc)
                raise
        self.outcome.counts.add(self.counts)
        self._done(seen)
        return self.counts

    def _chunk(self, result: ChunkResult, seen: SeenIds, pool: ThreadPoolExecutor) -> None:
        job = self.job
        fresh, duplicates = seen.filter(result.events)
        # Counted once settled: of a chunk whose send did not end, only the slices that did count.
        chunk = Counts(read=result.read, skipped=result.skipped, rejected=result.rejected, duplicates=duplicates)
        if self.answered:  # the chunk an earlier attempt was in: its answered slices are not sent again
            done = fresh["message_id"].isin(self.answered).to_numpy()
            chunk.read -= int(done.sum())
            self.outcome.resumed += int(done.sum())
            fresh, self.answered = fresh[~done], frozenset()
        self.outcome.dropped_properties += result.dropped_properties
        if not (fresh.empty or job.dry_run):
            self._send_ahead(to_events(fresh), fresh, chunk, result.rejects, pool)
            return
        self._settle()  # the previous chunk is settled (and checkpointed) before this one is counted
        if fresh.empty:
            self._chunk_done(chunk, result.rejects)
            return
        events = to_events(fresh)
        if job.dry_run:
            chunk.sent = len(events)
            if job.usage is not None:
                job.usage.add(self.partition, fresh)
            self.acked.extend(fresh["message_id"].tolist())  # into the dry run's own store
            if job.event_sink is not None:
                job.event_sink(self.partition, events)
            self._chunk_done(chunk, result.rejects)

    def _send_ahead(self, events: list[dict], fresh: pd.DataFrame, chunk: Counts, rejects: list[dict],
                    pool: ThreadPoolExecutor) -> None:
        """Start sending the chunk while the earlier ones' answers are still coming. The oldest is settled
        first when CHUNKS_IN_FLIGHT are being sent, or when its send has ended (after a failure nothing
        more is posted)."""
        while self.in_flight and (len(self.in_flight) >= CHUNKS_IN_FLIGHT or self.in_flight[0].future.done()):
            self._settle_oldest()
        turn: Future[bool] = Future()  # True once the chunk before is settled; False: it failed
        if not self.in_flight:
            turn.set_result(True)
        self.in_flight.append(_Sending(pool.submit(self._send, events, fresh, turn), chunk, rejects, turn))

    def _send(self, events: list[dict], fresh: pd.DataFrame, turn: Future[bool]) -> None:
        """In a send thread: the chunk's events, a slice (SLICE_BATCHES batches) at a time, each
        slice accounted and checkpointed as soon as Hyperline has answered it. The first slice may go
        out before the chunk before is settled: its answer waits for `turn`, and is dropped (a rerun
        posts that slice again) when that chunk failed."""
        job, step = self.job, job_slice(self.job)
        assert job.sender is not None and self.checkpoint is not None  # a real run (not a dry run) sends
        ids, lines = fresh["message_id"].tolist(), fresh["line_no"].tolist()
        for start in range(0, len(events), step):
            if job.breaker is not None:
                job.breaker.check()
            if self.heartbeat is not None:
                self.heartbeat.check()  # a zombie whose claim was taken over must not send
            try:
                sent = job.sender.send_events(events[start:start + step], prevalidated=True)
            except HyperlineUnavailableError as exc:
                if turn.result() and job.breaker is not None:
                    job.breaker.failure(exc)
                raise
            if not turn.result():
                return
            if job.breaker is not None:
                job.breaker.success()
            acked, refused = self._account(sent, ids[start:start + step], lines[start:start + step])
            if job.usage is not None:
                job.usage.add(self.partition, fresh.iloc[start:start + step], refused)
            self.checkpoint.save_slice(self.chunks, self.unit_counts, acked, refused, self.letters.save())

    def _account(self, sent: Any, ids: list[str], lines: list[int]) -> tuple[list[str], list[str]]:
        self.outcome.requests += sent.requests
        self.outcome.retries += sent.retries
        failed_ids = {_record_id(f.event) for f in sent.failed}
        if failed_ids:
            line_of: dict[Any, int] = dict(zip(ids, lines, strict=True))
            for failure in sent.failed:
                self.letters.add(failure.reason, line_of.get(_record_id(failure.event)), event=failure.event)
                self._count_reason(failure.reason)
        self.partial.read += len(ids)
        self.partial.sent += sent.accepted
        self.partial.rejected += len(sent.failed)
        self.guard.add(sent.accepted, len(sent.failed))
        return [i for i in ids if i not in failed_ids], [i for i in ids if i in failed_ids]

    def _settle(self) -> None:
        """Settle every chunk in flight, oldest first."""
        while self.in_flight:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        """Wait for the oldest chunk in flight; once all of it is answered, count and checkpoint it, and
        let the next one account its answers. If it failed, the later ones' answers are dropped."""
        sending = self.in_flight.popleft()
        try:
            sending.future.result()  # its error, if any, once the slices answered before it are accounted
        except BaseException:
            for later in self.in_flight:
                later.turn.set_result(False)
            self.in_flight.clear()
            raise
        chunk = sending.chunk
        chunk.sent += self.partial.sent
        chunk.rejected += self.partial.rejected
        self.partial = Counts()
        self._chunk_done(chunk, sending.rejects)
        if self.in_flight:
            self.in_flight[0].turn.set_result(True)

    def _chunk_done(self, chunk: Counts, rejects: list[dict]) -> None:
        for reject in rejects:
            self.letters.add(reject["reason"], reject.get("line_no"), event=reject.get("event"),
                             raw=reject.get("raw"))
            self._count_reason(reject["reason"])
        self.counts.add(chunk)
        self.chunks += 1
        if self.checkpoint is None:
            return
        if self.heartbeat is not None:
            self.heartbeat.check()  # another attempt may own these files now
        self.checkpoint.save_chunk(self.chunks, self.unit_counts, self.letters.save())

    def _count_reason(self, reason: str) -> None:
        """Counted as the rejects are (a settled chunk, an answered slice): they add up to `rejected`."""
        self.outcome.rejects[reason] = self.outcome.rejects.get(reason, 0) + 1

    def _done(self, seen: SeenIds) -> None:
        job, unit = self.job, self.unit
        path = self.letters.close()
        if path is not None:
            self.outcome.dead_letters.append(str(path))
        # a dry run keeps its ids in memory; a real run's are in the checkpoint's log (read once: on S3
        # it is one GET per part)
        acked = self.acked if self.checkpoint is None else self.checkpoint.acked_ids()
        if self.corrections is not None:  # before the unit is done: a failure leaves it to be synced again
            self.corrections.finish(acked, self.outcome)
        seen.commit_object(unit.key, acked)  # a dry run's go to its own store
        if self.checkpoint is not None:
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
            if isinstance(exc, SystemicRejectionError) and self.checkpoint is not None:
                self.checkpoint.clear()
                self.letters.resume(0)
        with contextlib.suppress(Exception):  # best effort: the ledger itself may be what failed
            job.ledger.record_object(job.pipeline.name, self.partition, self.unit.key, self.unit.etag, FAILED,
                                     self.unit_counts, job.run_id, error=job.redact(f"{type(exc).__name__}: {exc}"))


def _record_id(event: Mapping) -> object:
    """The event's record.id, or None when the event is too broken to have one."""
    record = event.get("record")
    return record.get("id") if isinstance(record, Mapping) else None
