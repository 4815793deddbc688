"""The archive over a real S3 API (moto's server over HTTP on 127.0.0.1) through an Airflow AWS
connection: the same archive must give the same objects, counts, events and rejects as file://."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hyperline_devtools.sample_archive import SampleManifest
from hyperline_sync.config.models import S3ArchiveSourceConfig
from hyperline_sync.sources.archive.listing import ArchiveObject, days_with_data, list_partition, partition_prefix
from hyperline_sync.sources.archive.reading import iter_line_chunks
from hyperline_sync.sources.archive.store import ArchiveReadError, S3Store, open_store

RunPartition = Callable[..., Any]  # the `run_partition` fixture (tests/hyperline_sync/conftest.py)
DAY = date(2026, 3, 1)


def relative(key: str, source: S3ArchiveSourceConfig) -> str:
    return key.removeprefix(f"{source.prefix}/")


def test_open_store_reaches_moto_through_the_airflow_connection(
    s3_sample_source: S3ArchiveSourceConfig, moto_server: str
) -> None:
    store = open_store(s3_sample_source)
    assert isinstance(store, S3Store)
    assert store.client.meta.endpoint_url == moto_server
    assert (store.bucket, store.base) == ("segment-archive", "acme/prod/")


def test_listing_matches_the_local_copy(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, s3_sample_source: S3ArchiveSourceConfig
) -> None:
    s3, local = open_store(s3_sample_source), open_store(sample_source)
    assert days_with_data(s3, s3_sample_source) == days_with_data(local, sample_source) == sample_archive.days
    for day in sample_archive.days:
        on_s3 = list_partition(s3, s3_sample_source, day)
        on_disk = list_partition(local, sample_source, day)
        assert on_s3, day
        assert [(relative(o.key, s3_sample_source), o.size, o.etag, o.day) for o in on_s3] == [
            (o.key, o.size, o.etag, o.day) for o in on_disk
        ]
        assert all(o.key.startswith("acme/prod/segment-logs/") for o in on_s3)


def test_partitions_give_identical_results_over_s3_and_file(
    sample_archive: SampleManifest,
    sample_source: S3ArchiveSourceConfig,
    s3_sample_source: S3ArchiveSourceConfig,
    run_partition: RunPartition,
    tmp_path: Path,
) -> None:
    for day in sample_archive.days:
        on_s3 = run_partition(s3_sample_source, day, tmp_path / "s3", chunk_lines=250)
        on_disk = run_partition(sample_source, day, tmp_path / "file", chunk_lines=250)
        expected = sample_archive.by_day[day]

        assert on_s3.read == on_s3.events + on_s3.rejected + on_s3.skipped + on_s3.duplicates
        assert (on_s3.read, on_s3.events, on_s3.duplicates) == (expected.read, expected.events, expected.duplicates)
        assert on_s3.delivered == on_disk.delivered
        assert on_s3.reasons == on_disk.reasons == expected.rejected
        assert {relative(k, s3_sample_source): v for k, v in on_s3.per_object.items()} == on_disk.per_object
        s3_rejects = [{**r, "source_key": relative(r["source_key"], s3_sample_source)} for r in on_s3.rejects]
        assert s3_rejects == on_disk.rejects


@pytest.fixture
def scratch(s3_client: Any, aws_conn_id: str, request: pytest.FixtureRequest) -> S3ArchiveSourceConfig:
    bucket = f"scratch-{request.node.name.replace('_', '-')[:40].lower()}"
    s3_client.create_bucket(Bucket=bucket)
    return S3ArchiveSourceConfig(url=f"s3://{bucket}", source_id="src1", aws_conn_id=aws_conn_id)


def upload(s3_client: Any, source: S3ArchiveSourceConfig, day: date, name: str, data: bytes) -> ArchiveObject:
    store = open_store(source)
    key = f"{partition_prefix(store, source, day)}{name}"
    s3_client.put_object(Bucket=source.bucket, Key=key, Body=data)
    return next(o for o in list_partition(store, source, day) if o.key == key)


def read(source: S3ArchiveSourceConfig, obj: ArchiveObject, chunk_lines: int = 1000) -> list[bytes]:
    return [line for chunk in iter_line_chunks(open_store(source), obj, chunk_lines) for line in chunk.lines]


def test_plain_and_gzip_objects_read_the_same(scratch: S3ArchiveSourceConfig, s3_client: Any) -> None:
    day = DAY
    lines = [f'{{"n":{i}}}'.encode() for i in range(100)]
    body = b"\n".join(lines) + b"\n"
    assert read(scratch, upload(s3_client, scratch, day, "a.gz", gzip.compress(body))) == lines
    assert read(scratch, upload(s3_client, scratch, day, "b.gz", body)) == lines


def test_missing_object_is_a_read_error(scratch: S3ArchiveSourceConfig) -> None:
    obj = ArchiveObject("segment-logs/src1/1772323200000/gone.gz", 1, "abc", DAY)
    with pytest.raises(ArchiveReadError) as caught:
        read(scratch, obj)
    assert caught.value.reason == "object not found"


def test_an_object_rewritten_after_listing_is_refused(scratch: S3ArchiveSourceConfig, s3_client: Any) -> None:
    day = DAY
    obj = upload(s3_client, scratch, day, "a.gz", gzip.compress(b'{"v":1}\n'))
    s3_client.put_object(Bucket=scratch.bucket, Key=obj.key, Body=gzip.compress(b'{"v":2}\n'))  # GDPR re-copy
    with pytest.raises(ArchiveReadError, match="changed since it was listed"):
        read(scratch, obj)


def test_truncated_object_fails_after_the_lines_before_it(scratch: S3ArchiveSourceConfig, s3_client: Any) -> None:
    day = DAY
    lines = [f'{{"n":{i},"pad":"{"p" * 300}"}}'.encode() for i in range(20_000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    obj = upload(s3_client, scratch, day, "cut.gz", data[: len(data) // 2])
    seen: list[bytes] = []
    with pytest.raises(ArchiveReadError, match="truncated gzip stream"):
        for chunk in iter_line_chunks(open_store(scratch), obj, 500):
            seen.extend(chunk.lines)
    assert seen and seen == lines[: len(seen)]


def test_missing_bucket_is_a_listing_error(aws_conn_id: str) -> None:
    source = S3ArchiveSourceConfig(url="s3://no-such-bucket", source_id="src1", aws_conn_id=aws_conn_id)
    with pytest.raises(ArchiveReadError, match="bucket not found"):
        list_partition(open_store(source), source, DAY)
