"""sync: the relaxed GC while a partition syncs, and a rerun resuming after what Hyperline answered
(claim renewal: state/test_claims.py).

(The sync is also tested end to end: tests/hyperline_sync/sources, tests/dags and tests/faults.)
"""

from __future__ import annotations

import gc
import threading
from collections import Counter
from pathlib import Path

import pytest

from hyperline_provider.results import SendResult
from hyperline_sync.config.models import PipelineConfig, TuningConfig
from hyperline_sync.pipeline.ports import HyperlineUnavailableError
from hyperline_sync.pipeline.sync import GC_YOUNG_THRESHOLD, SyncJob, _gc_relaxed, sync_partition
from hyperline_sync.pipeline.unit_sync import IN_FLIGHT_BATCHES
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import Ledger
from tests.hyperline_sync.conftest import SAMPLE_DAYS
from tests.recording_sender import Recorder


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(thresholds) -> None:
    with _gc_relaxed():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_it_is_restored_after_an_error_and_never_lowered(thresholds) -> None:
    gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 5, 5)
    with pytest.raises(RuntimeError), _gc_relaxed():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 5, 5)
        raise RuntimeError("boom")
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 5, 5)


class FailingAfter(Recorder):
    """Accepts `calls` sends, then posts half of each later one and gives up (Hyperline went down).
    Called from the sync's send threads at once."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls
        self.lock = threading.Lock()

    def send_events(self, events, *, prevalidated: bool = False):
        with self.lock:
            failing = self.calls == 0
            self.calls = max(self.calls - 1, 0)
        if failing:
            events = list(events)
            self.events.extend(events[: len(events) // 2])
            raise HyperlineUnavailableError("Hyperline at http://127.0.0.1 unavailable: HTTP 503", SendResult())
        return super().send_events(events, prevalidated=prevalidated)


def job_for(source, state_dir: Path, sender, run_id: str, chunk_size: int, batch_size: int) -> SyncJob:
    config = PipelineConfig(name="it", source=source, tuning=TuningConfig(chunk_size=chunk_size, batch_size=batch_size))
    return SyncJob(pipeline=config, ledger=Ledger.sqlite(state_dir / "ledger.db"), source=ArchiveSource(config),
                   state_dir=state_dir, output_dir=state_dir / "out", run_id=run_id, owner=run_id,
                   sender=sender)


def rows(paths) -> list[dict]:
    found = [{k: v for k, v in row.items() if k != "run_id"} for p in paths for row in read_dead_letters(Path(p))]
    return sorted(found, key=lambda r: (r["source_key"], r["line_no"] or 0, r["reason"]))


@pytest.mark.parametrize(("chunk_size", "batch_size"), [(97, 500), (400, 50)])
def test_a_rerun_resumes_after_what_hyperline_answered_and_keeps_the_dead_letters(
        sample_source, tmp_path, chunk_size: int, batch_size: int) -> None:
    """(97, 500): a chunk is one send; (400, 50): a chunk is sent in slices of 2 batches, and the
    outage hits a chunk mid-way (its answered slices are not sent again either)."""
    day = SAMPLE_DAYS[0]
    everything = Recorder()
    clean = sync_partition(job_for(sample_source, tmp_path / "clean", everything, "clean", chunk_size, batch_size),
                           day)

    down = FailingAfter(calls=13)  # mid-way through the day's second object
    with pytest.raises(HyperlineUnavailableError) as failed:
        sync_partition(job_for(sample_source, tmp_path / "state", down, "first", chunk_size, batch_size), day)
    first = failed.value.partition_outcome
    rerun = Recorder()
    job = job_for(sample_source, tmp_path / "state", rerun, "rerun", chunk_size, batch_size)
    outcome = sync_partition(job, day)

    posts = Counter(e["record"]["id"] for e in down.events + rerun.events)
    assert set(posts) == {e["record"]["id"] for e in everything.events}
    again = sum(n - 1 for n in posts.values())
    # Only what the sends in flight had posted (a chunk sent ahead may have been answered, but not
    # checkpointed, before the chunk before it gave up).
    assert 0 < again <= IN_FLIGHT_BATCHES * batch_size
    # The ledger's counts are those of a sync in one go. Each run's own counts add up; the rerun read
    # again, without sending or counting them, the lines the first run had settled (`resumed`).
    state = job.ledger.partitions("it")[day.isoformat()]
    assert state.status == "done" and state.counts == clean.counts
    assert first.counts.balanced and outcome.counts.balanced and outcome.resumed > 0
    assert first.counts.read + outcome.counts.read == clean.counts.read
    assert first.counts.sent + outcome.counts.sent == clean.counts.sent
    # Dead letters: the rows of the part done before the outage are still there, next to the rerun's.
    assert rows((tmp_path / "state").rglob("*.jsonl.gz")) == rows((tmp_path / "clean").rglob("*.jsonl.gz"))
    assert not list((tmp_path / "state").rglob("*.acked")) and not list((tmp_path / "state").rglob("*.partial"))
