"""Checkpoints inside a unit: what a resumed rerun may skip, cut back to the last save."""

from __future__ import annotations

from hyperline_sync.state.checkpoint import UnitCheckpoint, read_acked
from hyperline_sync.state.ledger import Counts


def test_a_resume_gets_the_saved_progress_and_nothing_written_after_it(tmp_path):
    first = UnitCheckpoint(tmp_path / "ids" / "k.parquet", "etag-1", 100)
    first.save_slice(0, Counts(read=2, sent=2), ["a", "b"], [], 0)
    first.save_chunk(1, Counts(read=3, sent=2, skipped=1), 10)
    first.save_slice(1, Counts(read=5, sent=3, skipped=1, rejected=1), ["c\nwith a newline"], ['"quoted'], 12)
    with open(first.chunk_acked, "ab") as f:  # a slice whose checkpoint was never written (the worker died)
        f.write(b"d\ne")
    saved = UnitCheckpoint(tmp_path / "ids" / "k.parquet", "etag-1", 100).load()
    assert (saved.chunks, saved.counts, saved.letters_bytes) == (1, Counts(read=5, sent=3, skipped=1, rejected=1), 12)
    assert saved.answered == {"c\nwith a newline", '"quoted'}
    assert read_acked(first.acked) == ["a", "b"]  # what the dedup reads: the settled chunks' ids


def test_another_version_starts_over_and_keeps_the_delivered_ids_known(tmp_path):
    UnitCheckpoint(tmp_path / "k.parquet", "etag-1", 100).save_chunk(1, Counts(read=1, sent=1), 0)
    first = UnitCheckpoint(tmp_path / "k.parquet", "etag-1", 100)
    first.save_slice(1, Counts(read=2, sent=2), ["a"], [], 0)
    first.save_chunk(2, Counts(read=2, sent=2), 0)
    again = UnitCheckpoint(tmp_path / "k.parquet", "etag-2", 100)
    assert again.load() is None and not again.path.exists()
    assert again.acked_ids() == ["a"]
    assert UnitCheckpoint(tmp_path / "k.parquet", "etag-1", 50).load() is None  # another chunk size: no resume


def test_a_chunk_with_nothing_to_send_is_saved_in_a_folder_not_made_yet(tmp_path):
    checkpoint = UnitCheckpoint(tmp_path / "ids" / "2026-03-01" / "k.parquet", "etag-1", 100)
    checkpoint.save_chunk(1, Counts(read=4, duplicates=4), 0)
    assert checkpoint.load().counts == Counts(read=4, duplicates=4)
