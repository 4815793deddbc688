"""An object that is neither gzip nor uncompressed NDJSON fails alone, as "not gzip", on disk and on S3
(moto's server): it is never read as text and dead-lettered line by line as if it were data."""

from __future__ import annotations

import bz2
import gzip
from collections.abc import Callable
from datetime import date
from pathlib import Path
from random import Random
from typing import Any

import pytest

from hyperline_sync.config.models import S3ArchiveSourceConfig
from hyperline_sync.pipeline.sync import PartitionFailedError
from hyperline_sync.sources.archive.listing import list_partition, partition_prefix
from hyperline_sync.sources.archive.reading import iter_line_chunks
from hyperline_sync.sources.archive.store import ArchiveReadError, open_store
from hyperline_sync.state.ledger import DONE, FAILED, Ledger

RunPartition = Callable[..., Any]  # the `run_partition` fixture (tests/hyperline_sync/conftest.py)
DAY = date(2026, 3, 1)
LINES = [
    f'{{"type":"track","event":"API Call","messageId":"m-{i}","userId":"u","timestamp":"2026-03-01T10:00:00.000Z"}}'
    .encode() for i in range(50)
]
NDJSON = b"\n".join(LINES) + b"\n"
NOT_GZIP = {
    "bzip2": bz2.compress(NDJSON),
    "binary": Random(7).randbytes(3000),
    "text": b"hello, this is not an archive\n" * 20,
}


@pytest.fixture(params=["file", "s3"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> S3ArchiveSourceConfig:
    if request.param == "file":
        return S3ArchiveSourceConfig(url=f"file://{tmp_path / 'archive'}", source_id="src1")
    s3_client, aws_conn_id = request.getfixturevalue("s3_client"), request.getfixturevalue("aws_conn_id")
    bucket = f"not-gzip-{abs(hash(request.node.name)) % 10**8}"
    s3_client.create_bucket(Bucket=bucket)
    return S3ArchiveSourceConfig(url=f"s3://{bucket}/logs", source_id="src1", aws_conn_id=aws_conn_id)


def put(source: S3ArchiveSourceConfig, request: pytest.FixtureRequest, name: str, data: bytes) -> str:
    key = f"{partition_prefix(open_store(source), source, DAY)}{name}"
    if source.scheme == "file":
        path = source.local_root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        request.getfixturevalue("s3_client").put_object(Bucket=source.bucket, Key=key, Body=data)
    return key


@pytest.mark.parametrize("kind", sorted(NOT_GZIP))
def test_an_object_that_is_not_gzip_is_a_read_error(
    source: S3ArchiveSourceConfig, request: pytest.FixtureRequest, kind: str
) -> None:
    key = put(source, request, "a.gz", NOT_GZIP[kind])
    obj = next(o for o in list_partition(open_store(source), source, DAY) if o.key == key)
    with pytest.raises(ArchiveReadError, match="not gzip: starts with bytes ") as caught:
        list(iter_line_chunks(open_store(source), obj, 100))
    assert caught.value.key == key


@pytest.mark.parametrize("body", [NDJSON, b"\n\r\n" + NDJSON, b""], ids=["ndjson", "blank-first", "empty"])
def test_uncompressed_ndjson_and_empty_objects_are_still_read(
    source: S3ArchiveSourceConfig, request: pytest.FixtureRequest, body: bytes
) -> None:
    key = put(source, request, "plain.gz", body)
    obj = next(o for o in list_partition(open_store(source), source, DAY) if o.key == key)
    lines = [line for chunk in iter_line_chunks(open_store(source), obj, 100) for line in chunk.lines]
    assert lines == (LINES if body else [])


def test_the_sync_fails_the_object_names_it_and_syncs_the_others(
    source: S3ArchiveSourceConfig, request: pytest.FixtureRequest, run_partition: RunPartition, tmp_path: Path
) -> None:
    good = put(source, request, "a.gz", gzip.compress(NDJSON))
    bad = put(source, request, "b.gz", NOT_GZIP["bzip2"])
    with pytest.raises(PartitionFailedError) as failed:
        run_partition(source, DAY, tmp_path / "state")
    assert f"{bad}: {bad}: not gzip" in str(failed.value) and good not in str(failed.value)
    objects = {o["key"]: o for o in Ledger.sqlite(tmp_path / "state" / "ledger.db").objects("it", DAY.isoformat())}
    assert (objects[good]["status"], objects[good]["sent"]) == (DONE, len(LINES))
    assert (objects[bad]["status"], objects[bad]["read"], objects[bad]["rejected"]) == (FAILED, 0, 0)
    assert "not gzip" in objects[bad]["error"]
    assert not list((tmp_path / "state" / "out").rglob("b.gz.jsonl.gz"))  # no dead letters of "lines" of it
