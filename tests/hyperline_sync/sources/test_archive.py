"""Local archive store: partition listing, ETags, and streaming objects in line chunks."""

from __future__ import annotations

import gzip
import hashlib
import os
import tracemalloc
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.config.models import S3ArchiveSourceConfig
from hyperline_sync.sources.archive import reading
from hyperline_sync.sources.archive.listing import ArchiveObject, day_folder, days_with_data, list_partition
from hyperline_sync.sources.archive.reading import MAX_LINE_BYTES, LineChunk, iter_line_chunks
from hyperline_sync.sources.archive.store import ArchiveReadError, LocalStore, open_store

DAY = date(2026, 1, 5)
KEY = f"segment-logs/src1/{day_folder(DAY)}/obj.gz"


def source_for(root: Path, source_id: str = "src1") -> S3ArchiveSourceConfig:
    return S3ArchiveSourceConfig(url=f"file://{root}", source_id=source_id)


def put(root: Path, key: str, data: bytes) -> ArchiveObject:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ArchiveObject(key, len(data), hashlib.md5(data).hexdigest(), DAY)


def read_all(root: Path, obj: ArchiveObject, chunk_lines: int = 1000) -> list[LineChunk]:
    return list(iter_line_chunks(LocalStore(root), obj, chunk_lines))


def numbered(chunks: list[LineChunk]) -> list[tuple[int, bytes]]:
    return [pair for chunk in chunks for pair in zip(chunk.numbers(), chunk.lines, strict=True)]


def test_day_folder_is_epoch_milliseconds_of_utc_midnight() -> None:
    assert day_folder(date(2024, 6, 10)) == "1717977600000"  # the example in docs/segment-formats.md, "Object keys"
    assert day_folder(DAY) == str(int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000))


def test_open_store_for_a_file_url(tmp_path: Path) -> None:
    store = open_store(source_for(tmp_path))
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path


def test_list_partition_keeps_only_gz_objects_of_the_day_folder(tmp_path: Path) -> None:
    manifest = generate_archive(tmp_path, "src1", [DAY], 400, objects_per_day=3)
    objects = list_partition(LocalStore(tmp_path), source_for(tmp_path), DAY)

    expected = sorted(key for key, day in manifest.object_days.items() if day == DAY)
    assert [obj.key for obj in objects] == expected
    assert not {obj.key for obj in objects} & set(manifest.decoy_keys)
    for obj in objects:
        data = (tmp_path / obj.key).read_bytes()
        assert (obj.size, obj.etag, obj.day) == (len(data), hashlib.md5(data).hexdigest(), DAY)


def test_a_rewritten_object_gets_a_new_etag(tmp_path: Path) -> None:
    put(tmp_path, KEY, gzip.compress(b'{"a":1}\n'))
    before = list_partition(LocalStore(tmp_path), source_for(tmp_path), DAY)[0]
    put(tmp_path, KEY, gzip.compress(b'{"a":2}\n'))  # same size, same second
    after = list_partition(LocalStore(tmp_path), source_for(tmp_path), DAY)[0]
    assert before.size == after.size
    assert before.etag != after.etag


def test_empty_or_absent_day_folder_of_a_source_with_other_days_lists_nothing(tmp_path: Path) -> None:
    put(tmp_path, f"segment-logs/src1/{day_folder(date(2026, 1, 4))}/x.gz", b"")
    (tmp_path / "segment-logs" / "src1" / day_folder(date(2026, 1, 6))).mkdir()
    for day in (DAY, date(2026, 1, 6)):
        assert list_partition(LocalStore(tmp_path), source_for(tmp_path), day) == []


@pytest.mark.parametrize("source_id", ["src1", "other"])
def test_a_source_without_any_day_folder_is_an_error_naming_where_it_looked(tmp_path: Path, source_id: str) -> None:
    """A wrong url or source id must not pass for a quiet day, every hour."""
    put(tmp_path, f"segment-logs/other-source/{day_folder(DAY)}/x.gz", b"")
    (tmp_path / "segment-logs" / "src1").mkdir()  # the source's folder exists, without day folders
    if source_id == "other":
        source_id = "src2"  # no folder at all
    with pytest.raises(ArchiveReadError) as caught:
        list_partition(LocalStore(tmp_path), source_for(tmp_path, source_id), DAY)
    where = f"file://{tmp_path}/segment-logs/{source_id}/"
    assert caught.value.key == where
    assert str(caught.value) == f"{where}: no day folders of source {source_id!r}: check source.url and " \
                                "source.source_id"


def test_missing_archive_root_is_an_error_not_an_empty_day(tmp_path: Path) -> None:
    with pytest.raises(ArchiveReadError, match="archive folder not found"):
        list_partition(LocalStore(tmp_path / "typo"), source_for(tmp_path / "typo"), DAY)


def test_days_with_data_lists_day_folders_in_range(tmp_path: Path) -> None:
    days = [date(2026, 1, 3), date(2026, 1, 5), date(2026, 1, 9)]
    for day in days:
        put(tmp_path, f"segment-logs/src1/{day_folder(day)}/x.gz", b"")
    (tmp_path / "segment-logs/src1/1767571200001").mkdir()  # not midnight
    (tmp_path / "segment-logs/src1/notaday").mkdir()
    store, source = LocalStore(tmp_path), source_for(tmp_path)

    assert days_with_data(store, source) == days
    assert days_with_data(store, source, date(2026, 1, 4), date(2026, 1, 9)) == days[1:]
    assert days_with_data(store, source, end=date(2026, 1, 4)) == days[:1]


@pytest.mark.parametrize("compress", [gzip.compress, lambda data: data], ids=["gzip", "plain"])
def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path: Path, compress) -> None:
    lines = [f'{{"n":{i}}}'.encode() for i in range(25)]
    obj = put(tmp_path, KEY, compress(b"\n".join(lines) + b"\n"))
    chunks = read_all(tmp_path, obj, chunk_lines=10)
    assert [len(chunk.lines) for chunk in chunks] == [10, 10, 5]
    assert [chunk.first_line_no for chunk in chunks] == [1, 11, 21]
    assert numbered(chunks) == list(enumerate(lines, start=1))
    assert all(chunk.key == KEY for chunk in chunks)


def test_concatenated_gzip_members_are_read_through(tmp_path: Path) -> None:
    members = [gzip.compress(f"line{i}\n".encode()) for i in range(5)]
    obj = put(tmp_path, KEY, b"".join(members) + b"\x00" * 8)  # zero padding after the last member
    assert [line for _, line in numbered(read_all(tmp_path, obj))] == [f"line{i}".encode() for i in range(5)]


def test_line_endings_stripped_empty_lines_skipped_numbering_kept(tmp_path: Path) -> None:
    obj = put(tmp_path, KEY, gzip.compress(b"a\r\nb\n\n\r\nc\nd"))  # no final newline
    chunks = read_all(tmp_path, obj, chunk_lines=3)
    assert numbered(chunks) == [(1, b"a"), (2, b"b"), (5, b"c"), (6, b"d")]
    assert chunks[0].line_nos is None or list(chunks[0].numbers()) == [1, 2, 5]


def test_a_line_over_the_cap_is_cut_and_the_next_lines_survive(tmp_path: Path) -> None:
    long_line = b"{" + b"x" * (MAX_LINE_BYTES + 5000)
    obj = put(tmp_path, KEY, gzip.compress(b"first\n" + long_line + b"\nlast\n"))
    lines = numbered(read_all(tmp_path, obj))
    assert [(no, len(line)) for no, line in lines] == [(1, 5), (2, MAX_LINE_BYTES + 1), (3, 4)]
    assert lines[1][1] == long_line[: MAX_LINE_BYTES + 1]


def test_a_huge_object_without_newlines_is_read_in_bounded_memory(tmp_path: Path) -> None:
    size = 64 << 20
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = b"z" * (1 << 20)
    data = b"".join(compressor.compress(block) for _ in range(size >> 20)) + compressor.flush()
    obj = put(tmp_path, KEY, data)

    tracemalloc.start()
    try:
        lines = numbered(read_all(tmp_path, obj))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(no, len(line)) for no, line in lines] == [(1, MAX_LINE_BYTES + 1)]
    assert peak < 12 * MAX_LINE_BYTES  # a few blocks and one capped line, never the 64 MiB line


def test_chunks_also_close_on_the_byte_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "CHUNK_BYTE_BUDGET", 100)
    obj = put(tmp_path, KEY, gzip.compress(b"".join(b"x" * 30 + b"\n" for _ in range(10))))
    chunks = read_all(tmp_path, obj, chunk_lines=1000)
    assert [len(chunk.lines) for chunk in chunks] == [4, 4, 2]


def test_chunk_lines_must_be_positive(tmp_path: Path) -> None:
    obj = put(tmp_path, KEY, b"")
    with pytest.raises(ValueError, match="chunk_lines"):
        read_all(tmp_path, obj, chunk_lines=0)


def test_an_empty_object_yields_no_chunks(tmp_path: Path) -> None:
    assert read_all(tmp_path, put(tmp_path, KEY, b"")) == []
    assert read_all(tmp_path, put(tmp_path, KEY, gzip.compress(b""))) == []


def test_truncated_gzip_fails_after_yielding_what_was_read(tmp_path: Path) -> None:
    lines = [f'{{"n":{i},"pad":"{"p" * 200}"}}'.encode() for i in range(20_000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    obj = put(tmp_path, KEY, data[: len(data) // 2])

    seen: list[tuple[int, bytes]] = []
    with pytest.raises(ArchiveReadError) as caught:
        for chunk in iter_line_chunks(LocalStore(tmp_path), obj, 1000):
            seen.extend(zip(chunk.numbers(), chunk.lines, strict=True))
    assert caught.value.key == KEY
    assert "truncated gzip stream" in caught.value.reason
    assert seen, "chunks read before the failure are yielded"
    assert seen == list(enumerate(lines, start=1))[: len(seen)]


def test_corrupt_gzip_data_is_a_read_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"hello world\n" * 1000))
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    obj = put(tmp_path, KEY, bytes(data))
    with pytest.raises(ArchiveReadError, match="corrupt gzip data"):
        read_all(tmp_path, obj)


def test_garbage_after_the_gzip_stream_is_a_read_error(tmp_path: Path) -> None:
    obj = put(tmp_path, KEY, gzip.compress(b"ok\n") + b"not gzip at all")
    with pytest.raises(ArchiveReadError, match="corrupt gzip data"):
        read_all(tmp_path, obj)


def test_missing_object_is_a_read_error(tmp_path: Path) -> None:
    obj = ArchiveObject(KEY, 10, "etag", DAY)
    with pytest.raises(ArchiveReadError) as caught:
        read_all(tmp_path, obj)
    assert (caught.value.key, caught.value.reason) == (KEY, "object not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_object_is_a_read_error(tmp_path: Path) -> None:
    obj = put(tmp_path, KEY, gzip.compress(b"x\n"))
    (tmp_path / KEY).chmod(0)
    with pytest.raises(ArchiveReadError, match="permission denied"):
        read_all(tmp_path, obj)


def test_a_folder_in_place_of_an_object_is_a_read_error(tmp_path: Path) -> None:
    (tmp_path / KEY).mkdir(parents=True)
    with pytest.raises(ArchiveReadError, match="read failed"):
        read_all(tmp_path, ArchiveObject(KEY, 0, "etag", DAY))
