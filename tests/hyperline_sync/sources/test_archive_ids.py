"""sources.archive.ids: the messageIds of an object's track lines, as the transform would find them."""

from __future__ import annotations

import gzip
import hashlib
from datetime import date
from pathlib import Path

import orjson
import pytest

from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.pipeline.transform import transform_chunk
from hyperline_sync.sources.archive.ids import object_message_ids
from hyperline_sync.sources.archive.listing import ArchiveObject, list_partition
from hyperline_sync.sources.archive.reading import CorruptObjectError, iter_line_chunks
from hyperline_sync.sources.archive.store import LocalStore
from tests.hyperline_sync.sources.test_archive import source_for

DAY = date(2026, 1, 5)


def test_only_the_top_level_messageid_of_track_lines_is_taken(tmp_path: Path) -> None:
    lines = [
        {"type": "track", "event": "a", "messageId": "m1", "properties": {"messageId": "nested"}},
        {"type": "identify", "messageId": "m2"},
        {"type": "track", "messageId": 7},
        {"type": "track", "messageId": "   "},
        {"type": "track", "context": {"messageId": "ctx"}},
        {"type": "track", "messageId": "m3"},
    ]
    raw = b"\n".join(orjson.dumps(line) for line in lines) + b"\n{not json\n[1, 2]\n"
    raw += b'{"type": "track", "messageId": "bad-utf8", "event": "\xff"}\n'
    raw += b'{"type": "track", "messageId": "deep", "properties": ' + b'[' * 1000 + b']' * 1000 + b'}\n'
    data = gzip.compress(raw)
    (tmp_path / "o.gz").write_bytes(data)
    obj = ArchiveObject("o.gz", len(data), hashlib.md5(data).hexdigest(), DAY)
    assert object_message_ids(LocalStore(tmp_path), obj, 4) == ["m1", "m3"]


def test_the_ids_cover_every_event_the_transform_passes_on(tmp_path: Path) -> None:
    """On the generator's nasty archive (malformed lines, odd types, duplicates): every message_id
    the transform yields is among the ids read, which hold nothing else but track lines' ids."""
    generate_archive(tmp_path, "src1", [DAY], 3000, seed=5, objects_per_day=2)
    store = LocalStore(tmp_path)
    for obj in list_partition(store, source_for(tmp_path), DAY):
        ids = object_message_ids(store, obj, 500)
        transformed = [i for chunk in iter_line_chunks(store, obj, 500)
                       for i in transform_chunk(chunk, MappingConfig()).events["message_id"].tolist()]
        assert transformed and set(transformed) <= set(ids)
        assert len(ids) - len(transformed) < 0.05 * len(ids)  # the rest: missing customer ids, bad timestamps


def test_of_a_truncated_object_the_ids_are_those_its_own_sync_reads_before_the_break(tmp_path: Path) -> None:
    lines = [orjson.dumps({"type": "track", "event": "e", "messageId": f"m{i}", "userId": "u",
                           "timestamp": "2026-01-05T10:00:00.000Z"}) for i in range(3000)]
    whole = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    data = whole[: len(whole) * 6 // 10]
    (tmp_path / "t.gz").write_bytes(data)
    obj = ArchiveObject("t.gz", len(data), hashlib.md5(data).hexdigest(), DAY)
    store = LocalStore(tmp_path)
    synced: list[str] = []
    with pytest.raises(CorruptObjectError, match="truncated"):
        for chunk in iter_line_chunks(store, obj, 250):
            synced.extend(transform_chunk(chunk, MappingConfig()).events["message_id"].tolist())
    assert 0 < len(synced) < 3000
    assert object_message_ids(store, obj, 250) == synced
