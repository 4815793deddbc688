"""id_index: which earlier days a day reads ids from, and what happens when it cannot read them
(file:// archive, SQLite ledger, the real sync with a recording sender)."""

from __future__ import annotations

import gzip
import uuid
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest

from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig, TuningConfig
from hyperline_sync.pipeline.id_index import EarlierDayUnreadableError, index_root
from hyperline_sync.pipeline.sync import PartitionFailedError, SyncJob, sync_partition
from hyperline_sync.sources.archive.listing import day_folder
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.ledger import Ledger
from tests.recording_sender import Recorder

DAYS = [date(2026, 6, 1) + timedelta(days=i) for i in range(3)]
SOURCE_ID = "idxSrc"


@pytest.fixture
def archive(tmp_path: Path) -> SampleManifest:
    return generate_archive(tmp_path / "archive", SOURCE_ID, DAYS, 600, seed=11, objects_per_day=2)


def job(archive: SampleManifest, state: Path, run_days: list[date], sender: Recorder | None = None) -> SyncJob:
    config = PipelineConfig(name="idx", source=S3ArchiveSourceConfig(url=archive.root.as_uri(), source_id=SOURCE_ID),
                            tuning=TuningConfig(chunk_size=100, dedup_window_days=2))
    run_id = f"manual__{uuid.uuid4().hex[:8]}"
    return SyncJob(pipeline=config, ledger=Ledger.sqlite(state / "ledger.db"), source=ArchiveSource(config),
                   state_dir=state, output_dir=state / "out", run_id=run_id, owner=f"{run_id}#{len(run_days)}",
                   sender=sender or Recorder(), run_days=frozenset(d.isoformat() for d in run_days))


def indexed_days(state: Path) -> list[str]:
    root = index_root(state, "idx")
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_later_day_synced_first_reads_the_earlier_day_of_its_run_once(archive: SampleManifest, tmp_path: Path):
    state, sender = tmp_path / "state", Recorder()
    sync_partition(job(archive, state, DAYS, sender), DAYS[1])
    assert indexed_days(state) == [DAYS[0].isoformat()]  # the first day is not synced yet: its ids were read
    files = sorted(index_root(state, "idx").rglob("*.parquet"))
    assert len(files) == 2  # one per object
    stamps = [f.stat().st_mtime_ns for f in files]
    sync_partition(job(archive, state, DAYS, sender), DAYS[2])  # needs the first day's again: read from the index
    assert [f.stat().st_mtime_ns for f in files] == stamps
    sync_partition(job(archive, state, DAYS, sender), DAYS[0])
    ids = [e["record"]["id"] for e in sender.events]
    assert len(ids) == len(set(ids)) == len(archive.expected_events)  # each id once, every one of them


def test_days_outside_the_run_and_done_days_are_not_read(archive: SampleManifest, tmp_path: Path):
    state = tmp_path / "state"
    sync_partition(job(archive, state, [DAYS[1]]), DAYS[1])  # the first day is not in this run, nobody syncs it
    assert indexed_days(state) == []
    sync_partition(job(archive, state, DAYS), DAYS[0])
    sync_partition(job(archive, state, DAYS), DAYS[2])  # earlier days done: their committed ids are enough
    assert indexed_days(state) == []


def test_an_unreadable_earlier_day_fails_the_later_one_until_it_is_fixed(archive: SampleManifest, tmp_path: Path):
    state, sender = tmp_path / "state", Recorder()
    folder = archive.root / "segment-logs" / SOURCE_ID / day_folder(DAYS[0])
    corrupt = bytearray(gzip.compress(b'{"type": "track"}\n' * 5000))
    corrupt[len(corrupt) // 2] ^= 0xFF
    (folder / "zz-corrupt.gz").write_bytes(bytes(corrupt))
    with pytest.raises(EarlierDayUnreadableError, match=f"earlier day {DAYS[0]} .*zz-corrupt.gz.*corrupt gzip"):
        sync_partition(job(archive, state, DAYS, sender), DAYS[1])
    assert sender.events == []  # nothing sent while it could not tell
    ledger = Ledger.sqlite(state / "ledger.db")
    assert ledger.partitions("idx")[DAYS[1].isoformat()].status == "failed"
    (folder / "zz-corrupt.gz").unlink()
    outcome = sync_partition(job(archive, state, DAYS, sender), DAYS[1])
    assert outcome.status == "done" and outcome.counts.sent == len(sender.events) > 0


def test_only_the_objects_an_earlier_day_has_not_finished_are_read(archive: SampleManifest, tmp_path: Path):
    state, sender = tmp_path / "state", Recorder()
    folder = archive.root / "segment-logs" / SOURCE_ID / day_folder(DAYS[0])
    late = folder / "zz-late.gz"
    late.write_bytes(b"not gzip")
    with pytest.raises(PartitionFailedError, match=r"zz-late\.gz"):
        sync_partition(job(archive, state, DAYS, sender), DAYS[0])  # its two good objects are done
    # The late object now holds copies of two of the second day's messages, received earlier.
    second = [line for line in archive_lines(archive, DAYS[1]) if _sent_copy(line, archive)][:2]
    assert len(second) == 2
    late.write_bytes(gzip.compress(b"\n".join(second) + b"\n"))
    sync_partition(job(archive, state, DAYS, sender), DAYS[1])
    assert len(list(index_root(state, "idx").rglob("*.parquet"))) == 1  # the late object alone
    sync_partition(job(archive, state, DAYS, sender), DAYS[0])
    ids = [e["record"]["id"] for e in sender.events]
    assert len(ids) == len(set(ids)) and {_id(line) for line in second} <= set(ids)


def _id(line: bytes) -> str:
    return orjson.loads(line)["messageId"]


def _sent_copy(line: bytes, archive: SampleManifest) -> bool:
    """A line whose message is sent from the second day (a valid track event, not a duplicate)."""
    try:
        expected = archive.expected_events.get(_id(line))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return False
    return expected is not None and expected.day == DAYS[1]


def archive_lines(archive: SampleManifest, day: date) -> list[bytes]:
    folder = archive.root / "segment-logs" / SOURCE_ID / day_folder(day)
    return [line for path in sorted(folder.glob("*.gz")) for line in gzip.decompress(path.read_bytes()).splitlines()]
