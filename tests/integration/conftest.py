"""Shared integration fixtures: a generated nasty archive, moto's S3 server over HTTP on 127.0.0.1,
an Airflow AWS connection to it, the archive uploaded there, and a partition runner.

Fixtures (reusable by DAG end-to-end tests):
- `sample_archive`: SampleManifest of a nasty 3-day archive on disk (session).
- `sample_source`: S3ArchiveSourceConfig reading it through file:// (session).
- `moto_server`, `aws_conn_id`, `s3_client`: in tests/conftest.py (shared with the DAG tests).
- `s3_sample_source`: S3ArchiveSourceConfig of the same archive uploaded to a bucket (session).
- `run_partition`: runs one day through archive -> transform -> dedup (no HTTP) -> PartitionRun.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from hyperline_sync.archive import ArchiveObject, iter_line_chunks, list_partition, open_store
from hyperline_sync.config import S3ArchiveSourceConfig
from hyperline_sync.dedup import SeenIds
from hyperline_sync.mapping import MappingConfig
from hyperline_sync.sample_archive import SampleManifest, generate_archive
from hyperline_sync.transform import transform_chunk

SAMPLE_SOURCE_ID = "itSrc0001"
SAMPLE_DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(3)]
SAMPLE_EVENTS_PER_DAY = 1500
SAMPLE_BUCKET = "segment-archive"
SAMPLE_PREFIX = "acme/prod"


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    root = tmp_path_factory.mktemp("sample-archive")
    return generate_archive(root, SAMPLE_SOURCE_ID, SAMPLE_DAYS, SAMPLE_EVENTS_PER_DAY, seed=42, objects_per_day=3)


@pytest.fixture(scope="session")
def sample_source(sample_archive: SampleManifest) -> S3ArchiveSourceConfig:
    return S3ArchiveSourceConfig(url=f"file://{sample_archive.root}", source_id=sample_archive.source_id)


@pytest.fixture(scope="session")
def s3_sample_source(sample_archive: SampleManifest, s3_client: Any, aws_conn_id: str) -> S3ArchiveSourceConfig:
    """The sample archive (decoys included) uploaded under s3://segment-archive/acme/prod/."""
    s3_client.create_bucket(Bucket=SAMPLE_BUCKET)
    for path in sorted(sample_archive.root.rglob("*")):
        if path.is_file() and path.name != "sample-manifest.json":
            key = f"{SAMPLE_PREFIX}/{path.relative_to(sample_archive.root).as_posix()}"
            s3_client.put_object(Bucket=SAMPLE_BUCKET, Key=key, Body=path.read_bytes())
    return S3ArchiveSourceConfig(
        url=f"s3://{SAMPLE_BUCKET}/{SAMPLE_PREFIX}", source_id=sample_archive.source_id, aws_conn_id=aws_conn_id
    )


@dataclass
class PartitionRun:
    """What one partition produced, summed over its objects, plus each object's own counts."""

    objects: list[ArchiveObject]
    read: int = 0
    events: int = 0
    rejected: int = 0
    skipped: int = 0
    duplicates: int = 0
    dropped_properties: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    per_object: dict[str, dict[str, int]] = field(default_factory=dict)


RunPartition = Callable[..., PartitionRun]


@pytest.fixture
def run_partition() -> RunPartition:
    """`run(source, day, state_dir, *, chunk_lines=97, window_days=7, include_own_partition=True,
    mapping=None, pipeline="it")`: the sync's data path without HTTP; every event is "accepted"."""

    def run(
        source: S3ArchiveSourceConfig,
        day: date,
        state_dir: Path,
        *,
        chunk_lines: int = 97,
        window_days: int = 7,
        include_own_partition: bool = True,
        mapping: MappingConfig | None = None,
        pipeline: str = "it",
    ) -> PartitionRun:
        store = open_store(source)
        seen = SeenIds(state_dir, pipeline, day, window_days, include_own_partition)
        result = PartitionRun(objects=list_partition(store, source, day))
        for obj in result.objects:
            counts = Counter()
            delivered_ids: list[str] = []
            for chunk in iter_line_chunks(store, obj, chunk_lines):
                chunk_result = transform_chunk(chunk, mapping or MappingConfig())
                fresh, duplicates = seen.filter(chunk_result.events)
                counts.update(
                    read=chunk_result.read,
                    events=len(fresh),
                    rejected=chunk_result.rejected,
                    skipped=chunk_result.skipped,
                    duplicates=duplicates,
                    dropped_properties=chunk_result.dropped_properties,
                )
                result.reasons.update(reject["reason"] for reject in chunk_result.rejects)
                result.rejects.extend(chunk_result.rejects)
                result.delivered.extend(fresh.to_dict("records"))
                delivered_ids.extend(fresh["message_id"].tolist())
            seen.commit_object(obj.key, delivered_ids)
            result.per_object[obj.key] = {
                name: counts[name]
                for name in ("read", "events", "rejected", "skipped", "duplicates", "dropped_properties")
            }
            for name, value in counts.items():
                setattr(result, name, getattr(result, name) + value)
        return result

    return run
