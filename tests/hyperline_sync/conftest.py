"""Fixtures of the domain tests.

- `ledger`: a fresh ledger on SQLite and, as a second case, on the real Postgres.
- `sample_archive`: SampleManifest of a nasty 3-day archive on disk (session).
- `sample_source`: S3ArchiveSourceConfig reading it through file:// (session).
- `moto_server`, `aws_conn_id`, `s3_client`: in tests/conftest.py (shared with the DAG tests).
- `s3_sample_source`: S3ArchiveSourceConfig of the same archive uploaded to a bucket (session).
- `run_partition`: runs one day through the real `sync_partition`, with a recording sender -> PartitionRun.
- `hyperline_emulator`: the Hyperline emulator (in-process) and the connection HYPERLINE_CONN_ID to it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from hyperline_devtools.emulator import Emulator
from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig, TuningConfig
from hyperline_sync.pipeline.sync import SyncJob, sync_partition
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import Ledger
from tests.recording_sender import Recorder

SAMPLE_SOURCE_ID = "itSrc0001"
SAMPLE_DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(3)]
SAMPLE_EVENTS_PER_DAY = 1500
SAMPLE_BUCKET = "segment-archive"
SAMPLE_PREFIX = "acme/prod"
HYPERLINE_KEY = "test_sender_secret_81d2"
HYPERLINE_CONN_ID = "hyperline_sender"


@pytest.fixture
def hyperline_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The emulator, and a ``hyperline`` connection HYPERLINE_CONN_ID to it (an AIRFLOW_CONN_* variable)."""
    with Emulator(api_key=HYPERLINE_KEY) as emu:
        conn = {"conn_type": "hyperline", "host": emu.url, "password": HYPERLINE_KEY}
        monkeypatch.setenv(f"AIRFLOW_CONN_{HYPERLINE_CONN_ID.upper()}", json.dumps(conn))
        yield emu


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
    """What one partition's real sync (`sync_partition`) produced: its counts, what it sent (in
    order), its dead letters, and each object's counts from the ledger."""

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
    """`run(source, day, state_dir, *, chunk_lines=97, window_days=7, resend=False, mapping=None,
    pipeline="it")`: `sync_partition` over one day with a recording sender instead of HTTP."""

    def run(
        source: S3ArchiveSourceConfig,
        day: date,
        state_dir: Path,
        *,
        chunk_lines: int = 97,
        window_days: int = 7,
        resend: bool = False,
        mapping: MappingConfig | None = None,
        pipeline: str = "it",
    ) -> PartitionRun:
        config = PipelineConfig(name=pipeline, source=source, mapping=mapping or MappingConfig(),
                                tuning=TuningConfig(chunk_size=chunk_lines, dedup_window_days=window_days))
        ledger, sender, run_id = Ledger.sqlite(state_dir / "ledger.db"), Recorder(), f"it-{uuid.uuid4().hex[:8]}"
        job = SyncJob(pipeline=config, ledger=ledger, source=ArchiveSource(config), state_dir=state_dir,
                      output_dir=state_dir / "out", run_id=run_id, owner=run_id, sender=sender, resend=resend)
        outcome = sync_partition(job, day)
        # without run_id, so that the dead letters of two runs can be compared
        rejects = [{k: v for k, v in row.items() if k != "run_id"}
                   for path in outcome.dead_letters for row in read_dead_letters(Path(path))]
        counts = outcome.counts
        return PartitionRun(
            read=counts.read, events=counts.sent, rejected=counts.rejected, skipped=counts.skipped,
            duplicates=counts.duplicates, dropped_properties=outcome.dropped_properties,
            reasons=Counter(row["reason"] for row in rejects), delivered=sender.events, rejects=rejects,
            per_object={row["key"]: {name: row[name] for name in ("read", "sent", "rejected", "skipped", "duplicates")}
                        for row in ledger.objects(pipeline, day.isoformat()) if row["run_id"] == run_id},
        )

    return run


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path) -> Ledger:
    """A fresh ledger on SQLite and, as a second case, on the real Postgres."""
    if request.param == "sqlite":
        return Ledger.sqlite(tmp_path / "ledger.db")
    return Ledger(request.getfixturevalue("postgres_url"))
