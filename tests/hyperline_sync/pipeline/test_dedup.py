"""messageId dedup: in a chunk, across chunks, across objects and partitions; the id files."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hyperline_sync.pipeline.dedup import SeenIds, _SortedHashes, hash_ids, id_file

DAY = date(2026, 1, 10)


def events(*ids: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": list(ids),
            "customer_id": ["c"] * len(ids),
            "event_type": ["API Call"] * len(ids),
            "timestamp": ["2026-01-10T00:00:00.000Z"] * len(ids),
            "record": [{"id": i} for i in ids],
            "line_no": np.arange(1, len(ids) + 1),
        }
    )


def kept(seen: SeenIds, *ids: str) -> tuple[list[str], int]:
    fresh, duplicates = seen.filter(events(*ids))
    return fresh["message_id"].tolist(), duplicates


def commit(state: Path, day: date, key: str, ids: list[str], pipeline: str = "p") -> Path:
    return SeenIds(state, pipeline, day, 0).commit_object(key, ids)


def test_first_copy_in_a_chunk_wins(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path, "p", DAY, 7)
    fresh, duplicates = seen.filter(events("a", "b", "a", "c", "b"))
    assert fresh["message_id"].tolist() == ["a", "b", "c"]
    assert fresh["line_no"].tolist() == [1, 2, 4]
    assert list(fresh.columns) == list(events().columns)
    assert duplicates == 2


def test_ids_from_earlier_chunks_of_the_run_are_duplicates(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path, "p", DAY, 7)
    assert kept(seen, "a", "b") == (["a", "b"], 0)
    assert kept(seen, "b", "c") == (["c"], 1)
    assert kept(seen, "a", "c", "d") == (["d"], 2)
    assert seen.duplicates == 3


def test_an_all_new_chunk_and_an_empty_chunk(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path, "p", DAY, 7)
    frame = events("x", "y")
    fresh, duplicates = seen.filter(frame)
    assert fresh is frame and duplicates == 0
    assert seen.filter(events())[1] == 0


def test_earlier_days_inside_the_window_count(tmp_path: Path) -> None:
    commit(tmp_path, DAY - timedelta(days=3), "k1", ["old-3"])
    commit(tmp_path, DAY - timedelta(days=8), "k2", ["old-8"])

    assert kept(SeenIds(tmp_path, "p", DAY, 7), "old-3", "old-8", "new") == (["old-8", "new"], 1)
    assert kept(SeenIds(tmp_path, "p", DAY, 2), "old-3") == (["old-3"], 0)
    assert kept(SeenIds(tmp_path, "p", DAY, 0), "old-3") == (["old-3"], 0)


def test_later_days_are_never_consulted(tmp_path: Path) -> None:
    # D+1 was synced first; D's copy must still be sent: it overwrites D+1's, so the first wins.
    commit(tmp_path, DAY + timedelta(days=1), "later", ["x"])
    assert kept(SeenIds(tmp_path, "p", DAY, 7), "x") == (["x"], 0)


def test_committed_objects_of_the_partition_unless_resending(tmp_path: Path) -> None:
    first = SeenIds(tmp_path, "p", DAY, 7)
    kept(first, "a", "b")
    first.commit_object("obj-1", ["a", "b"])

    assert kept(SeenIds(tmp_path, "p", DAY, 7), "a", "c") == (["c"], 1)
    assert kept(SeenIds(tmp_path, "p", DAY, 7, include_own_partition=False), "a", "c") == (["a", "c"], 0)


def test_pipelines_do_not_share_ids(tmp_path: Path) -> None:
    commit(tmp_path, DAY - timedelta(days=1), "k", ["a"], pipeline="other")
    assert kept(SeenIds(tmp_path, "p", DAY, 7), "a") == (["a"], 0)


def test_commit_writes_one_parquet_per_object_atomically(tmp_path: Path) -> None:
    key = "segment-logs/src/1768003200000/obj.gz"
    path = commit(tmp_path, DAY, key, ["a", "b"])
    assert path == id_file(tmp_path, "p", DAY, key)
    assert path.parent == tmp_path / "p" / "ids" / DAY.isoformat()
    assert pq.read_table(path).column("message_id").to_pylist() == ["a", "b"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_rewritten_object_keeps_the_ids_it_already_sent(tmp_path: Path) -> None:
    # GDPR re-copy: the new version's events were sent before, so none is delivered this time.
    key = "segment-logs/src/1768003200000/obj.gz"
    first = SeenIds(tmp_path, "p", DAY, 7)
    kept(first, "a", "b")
    first.commit_object(key, ["a", "b"])
    again = SeenIds(tmp_path, "p", DAY, 7)
    assert kept(again, "a") == ([], 1)
    again.commit_object(key, [])

    next_day = SeenIds(tmp_path, "p", DAY + timedelta(days=1), 7)
    assert next_day.known_count == 2
    assert kept(next_day, "a", "b", "c") == (["c"], 2)


def test_commit_of_an_object_without_events(tmp_path: Path) -> None:
    commit(tmp_path, DAY, "empty", [])
    assert SeenIds(tmp_path, "p", DAY, 7).known_count == 0


def test_files_from_another_hash_function_are_rehashed_from_their_ids(tmp_path: Path) -> None:
    folder = tmp_path / "p" / "ids" / (DAY - timedelta(days=1)).isoformat()
    folder.mkdir(parents=True)
    table = pa.table({"message_id": ["a", "b"], "h": pa.array([1, 2], type=pa.uint64())})
    pq.write_table(table.replace_schema_metadata({b"hyperline_sync.hash_probe": b"12345"}), folder / "x.parquet")

    assert kept(SeenIds(tmp_path, "p", DAY, 7), "a", "b", "c") == (["c"], 2)


def test_hashes_are_stable_uint64() -> None:
    ids = [f"ajs-next-{i:032x}" for i in range(1000)]
    first, again = hash_ids(ids), hash_ids(np.array(ids, dtype=object))
    assert first.dtype == np.uint64
    assert np.array_equal(first, again)
    assert len(set(first.tolist())) == len(ids)
    assert hash_ids([]).size == 0


def test_sorted_hashes_behave_like_a_set() -> None:
    rng = random.Random(4)
    reference: set[int] = set()
    hashes = _SortedHashes(np.array([rng.getrandbits(64) for _ in range(50)], dtype=np.uint64))
    reference.update(hashes.levels[0].tolist())
    for _ in range(40):
        batch = np.array([rng.getrandbits(64) for _ in range(rng.randrange(0, 30))], dtype=np.uint64)
        probe = np.concatenate([batch, np.array(rng.sample(sorted(reference), 5), dtype=np.uint64)])
        assert hashes.contains(probe).tolist() == [int(h) in reference for h in probe.tolist()]
        hashes.add(batch)
        reference.update(batch.tolist())
    assert len(hashes) == len(reference)
    assert len(hashes.levels) <= 8  # merged as it grows, not one array per add


@pytest.mark.parametrize("window", [0, 1, 7])
def test_window_days_are_the_days_just_before(tmp_path: Path, window: int) -> None:
    for back in range(1, 10):
        commit(tmp_path, DAY - timedelta(days=back), f"k{back}", [f"id{back}"])
    fresh, _ = kept(SeenIds(tmp_path, "p", DAY, window), *[f"id{back}" for back in range(1, 10)])
    assert fresh == [f"id{back}" for back in range(window + 1, 10)]


def test_a_dry_runs_store_is_read_for_earlier_days_and_written_instead_of_the_state(tmp_path):
    state, scratch = tmp_path / "state", tmp_path / "dry"
    commit(state, DAY - timedelta(days=1), "real-earlier", ["a"])
    commit(state, DAY, "real-own", ["b"])
    SeenIds(state, "p", DAY - timedelta(days=1), 0, dry_run_dir=scratch).commit_object("dry-earlier", ["c"])
    SeenIds(state, "p", DAY, 0, dry_run_dir=scratch).commit_object("dry-own", ["d"])  # an earlier attempt
    assert not id_file(state, "p", DAY, "dry-own").exists() and id_file(scratch, "p", DAY, "dry-own").exists()

    seen = SeenIds(state, "p", DAY, 1, dry_run_dir=scratch)
    # The day's own dry-run ids are not known: a retried dry-run task reads all its objects again.
    assert kept(seen, "a", "b", "c", "d", "e") == (["d", "e"], 3)
