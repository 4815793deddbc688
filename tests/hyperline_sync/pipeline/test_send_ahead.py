"""The sync over a round trip: the next chunk's first slice goes out while the previous chunk's answers
are still coming, checkpoints stay in order, and what a fault makes a rerun post again stays within
IN_FLIGHT_BATCHES batches. The real hook against the emulator, which answers each request after
`latency_ms` (in the thread serving it, so concurrent requests wait together, as over a network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyperline_devtools.emulator import Emulator, Faults
from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig, TuningConfig
from hyperline_sync.orchestration.sender import make_sender
from hyperline_sync.pipeline.ports import HyperlineUnavailableError
from hyperline_sync.pipeline.sync import SyncJob, sync_partition
from hyperline_sync.pipeline.unit_sync import IN_FLIGHT_BATCHES, SLICE_BATCHES
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.checkpoint import UnitCheckpoint
from hyperline_sync.state.ledger import Ledger
from tests.hyperline_sync.conftest import HYPERLINE_CONN_ID, SAMPLE_DAYS

BATCH = 20
LATENCY_MS = 150  # far longer than transforming a chunk of CHUNK lines: the next chunk is always ready
CHUNK = 100  # ~70 events: 4 batches of BATCH, 2 slices


def job(source: S3ArchiveSourceConfig, state: Path, run_id: str) -> SyncJob:
    tuning = TuningConfig(chunk_size=CHUNK, batch_size=BATCH, send_max_attempts=2, send_backoff_seconds=0.001)
    pipeline = PipelineConfig(name="ahead", source=source, hyperline_conn_id=HYPERLINE_CONN_ID, tuning=tuning)
    return SyncJob(pipeline=pipeline, ledger=Ledger.sqlite(state / "ledger.db"), source=ArchiveSource(pipeline),
                   state_dir=state, output_dir=state / "out", run_id=run_id, owner=run_id,
                   sender=make_sender(pipeline))


@pytest.fixture
def checkpoints(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, int, int]]:
    """Every checkpoint written, in order: (unit, "slice" or "chunk", settled chunks, the unit's read)."""
    written: list[tuple[int, str, int, int]] = []
    save_slice, save_chunk = UnitCheckpoint.save_slice, UnitCheckpoint.save_chunk

    def spy_slice(self: UnitCheckpoint, chunks: int, counts: Any, *args: Any) -> None:
        written.append((id(self), "slice", chunks, counts.read))
        save_slice(self, chunks, counts, *args)

    def spy_chunk(self: UnitCheckpoint, chunks: int, counts: Any, *args: Any) -> None:
        written.append((id(self), "chunk", chunks, counts.read))
        save_chunk(self, chunks, counts, *args)

    monkeypatch.setattr(UnitCheckpoint, "save_slice", spy_slice)
    monkeypatch.setattr(UnitCheckpoint, "save_chunk", spy_chunk)
    return written


def test_the_next_chunk_goes_out_while_the_previous_ones_answers_come_and_checkpoints_stay_in_order(
        sample_source, emulator: Emulator, checkpoints, tmp_path: Path) -> None:
    emulator.set_faults(Faults(latency_ms=LATENCY_MS))

    outcome = sync_partition(job(sample_source, tmp_path, "ahead"), SAMPLE_DAYS[0])

    assert outcome.counts.balanced and outcome.counts.sent == len(emulator.events) > 0
    # One slice of a chunk and the first of the next were on the wire together, never more.
    assert emulator.stats()["max_concurrent"] == IN_FLIGHT_BATCHES == 2 * SLICE_BATCHES
    assert max(emulator.post_counts.values()) == 1
    # Per unit: slices of chunk c are saved after chunk c-1 was, chunk c once, and the counts only grow.
    units: dict[int, list[tuple[str, int, int]]] = {}
    for unit, kind, chunks, read in checkpoints:
        units.setdefault(unit, []).append((kind, chunks, read))
    assert len(units) > 1
    for saved in units.values():
        settled, read = 0, 0
        for kind, chunks, now_read in saved:
            assert chunks == (settled if kind == "slice" else settled + 1), saved
            assert now_read >= read
            settled, read = (chunks if kind == "chunk" else settled), now_read
        assert settled > 2  # several chunks per unit: the boundaries were crossed


def test_what_an_outage_makes_a_rerun_post_again_stays_within_the_batches_in_flight(
        sample_source, emulator: Emulator, tmp_path: Path) -> None:
    day = SAMPLE_DAYS[1]
    sync_partition(job(sample_source, tmp_path / "clean", "clean"), day)
    expected = set(emulator.events)
    emulator.reset()
    # 9 requests answered, then Hyperline is down until the rerun: the chunk in flight and the next
    # one's first slice were on the wire.
    emulator.set_faults(Faults(latency_ms=LATENCY_MS, script=("ok",) * 9 + ("503",) * 40))

    with pytest.raises(HyperlineUnavailableError):
        sync_partition(job(sample_source, tmp_path / "state", "first"), day)
    emulator.set_faults(Faults())
    sync_partition(job(sample_source, tmp_path / "state", "rerun"), day)

    assert set(emulator.events) == expected
    posted_again = sum(n - 1 for n in emulator.post_counts.values())
    assert posted_again <= IN_FLIGHT_BATCHES * BATCH
