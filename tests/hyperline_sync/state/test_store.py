"""The state store on a local folder and on S3 (moto's server): files, logs, and a partition's sync
resumed after an outage with its state in S3; an unreachable store fails the partition before sending."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from hyperline_sync.config.models import PipelineConfig, TuningConfig
from hyperline_sync.pipeline.ports import HyperlineUnavailableError
from hyperline_sync.pipeline.sync import SyncJob, sync_partition
from hyperline_sync.pipeline.unit_sync import IN_FLIGHT_BATCHES
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state import store
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import Ledger
from hyperline_sync.state.store import RemotePath, StateStoreError, open_location
from tests.hyperline_sync.conftest import SAMPLE_DAYS
from tests.hyperline_sync.pipeline.test_sync import FailingAfter
from tests.recording_sender import Recorder


def s3_location(s3_client, aws_conn_id: str) -> RemotePath:
    bucket = f"state-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    location = open_location(f"s3://{bucket}/hyperline-sync", aws_conn_id)
    assert isinstance(location, RemotePath)
    return location


@pytest.fixture(params=["local", "s3"])
def location(request, tmp_path) -> store.Location:
    if request.param == "local":
        return tmp_path / "state"
    return s3_location(request.getfixturevalue("s3_client"), request.getfixturevalue("aws_conn_id"))


def keys(s3_client, location: RemotePath) -> dict[str, bytes]:
    backend = location.backend
    assert isinstance(backend, store.S3Backend)
    listed = s3_client.list_objects_v2(Bucket=backend.bucket).get("Contents", [])
    return {o["Key"]: s3_client.get_object(Bucket=backend.bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_files_are_written_whole_read_listed_and_removed(location) -> None:
    day = location / "it" / "ids" / "2024-01-01"
    assert store.read_bytes(day / "a.parquet") is None and store.list_files(day) == []
    store.write_bytes(day / "a.parquet", b"one")
    store.write_bytes(day / "a.parquet", b"two")  # replaced
    store.write_bytes(day / "sub" / "b.json", b"{}")
    assert store.read_bytes(day / "a.parquet") == b"two" and store.exists(day / "a.parquet")
    assert [e.name for e in store.list_files(day)] == ["a.parquet"]
    assert [(e.name, e.size) for e in store.list_files(day, recursive=True)] == [("a.parquet", 3), ("sub/b.json", 2)]
    with store.writer(day / "c.gz") as f:
        f.write(b"streamed")
    assert store.read_bytes(day / "c.gz") == b"streamed"
    store.remove(day / "a.parquet")
    store.remove(day / "a.parquet")  # already gone: fine
    store.remove_tree(location / "it")
    assert store.list_files(location, recursive=True) == []


def test_a_log_is_appended_cut_back_published_and_taken_back(location) -> None:
    log = location / "day" / "x.acked"
    assert not store.log_exists(log) and store.log_size(log) == 0 and store.log_read(log) == b""
    assert store.log_append(log, b"") == 0 and store.log_exists(log)  # created, empty
    assert store.log_append(log, b"a\n") == 2
    assert store.log_append(log, b"bc\n") == 5
    assert store.log_append(log, b"") == 5
    assert store.log_read(log) == b"a\nbc\n" and store.log_read(log, 2) == b"a\n"
    store.log_append(log, b"cut me\n")  # what a crash appended after the last checkpoint
    store.log_cut(log, 5)
    assert store.log_read(log) == b"a\nbc\n" and store.log_size(log) == 5
    published = location / "day" / "x.out"
    store.log_publish(log, published)
    assert store.read_bytes(published) == b"a\nbc\n" and not store.log_exists(log)
    store.log_adopt(published, log)
    assert store.log_read(log) == b"a\nbc\n" and not store.exists(published)
    store.log_cut(log, 0)
    assert not store.log_exists(log)


def test_on_s3_an_append_is_one_new_object_and_never_rewrites_one(s3_client, aws_conn_id) -> None:
    location = s3_location(s3_client, aws_conn_id)
    log = location / "x.acked"
    store.log_append(log, b"a\n")
    first = keys(s3_client, location)
    store.log_append(log, b"bc\n")
    second = keys(s3_client, location)
    assert first.items() <= second.items() and len(second) == 2
    assert sorted(second.values()) == [b"a\n", b"bc\n"]
    assert all(k.startswith("hyperline-sync/x.acked.parts/") for k in second)


def test_a_rerun_with_the_state_in_s3_resumes_after_what_hyperline_answered(
        sample_source, tmp_path, s3_client, aws_conn_id) -> None:
    """The scenario of test_sync's resume test, with ids, checkpoints and dead letters in S3."""
    day, chunk_size, batch_size = SAMPLE_DAYS[0], 400, 50
    config = PipelineConfig(name="it", source=sample_source,
                            tuning=TuningConfig(chunk_size=chunk_size, batch_size=batch_size))
    ledger = Ledger.sqlite(tmp_path / "ledger.db")
    location = s3_location(s3_client, aws_conn_id)

    def job(sender, run_id: str, state: store.Location, ledger: Ledger = ledger) -> SyncJob:
        return SyncJob(pipeline=config, ledger=ledger, source=ArchiveSource(config), state_dir=state,
                       output_dir=state / "out", run_id=run_id, owner=run_id, sender=sender)

    everything = Recorder()
    clean = sync_partition(job(everything, "clean", tmp_path / "clean", Ledger.sqlite(tmp_path / "clean.db")), day)
    down = FailingAfter(calls=13)
    with pytest.raises(HyperlineUnavailableError):
        sync_partition(job(down, "first", location), day)
    assert any(".checkpoint.json" in k for k in keys(s3_client, location))
    rerun = Recorder()
    outcome = sync_partition(job(rerun, "rerun", location), day)

    posts = Counter(e["record"]["id"] for e in down.events + rerun.events)
    assert set(posts) == {e["record"]["id"] for e in everything.events}
    assert 0 < sum(n - 1 for n in posts.values()) <= IN_FLIGHT_BATCHES * batch_size
    assert ledger.partitions("it")[day.isoformat()].counts == clean.counts and outcome.resumed > 0
    letters = [location / "out" / e.name for e in store.list_files(location / "out", recursive=True)
               if e.name.endswith(".jsonl.gz")]
    assert letters and all(str(p).startswith("s3://") for p in outcome.dead_letters)
    assert rows(letters) == rows(Path(p) for p in (tmp_path / "clean").rglob("*.jsonl.gz"))
    left = keys(s3_client, location)
    assert any(k.endswith(".parquet") for k in left)
    assert not [k for k in left if ".acked" in k or ".partial" in k or "checkpoint" in k]

    again = Recorder()  # the next run reads the ids from S3: nothing to send
    assert sync_partition(job(again, "again", location), day).counts.sent == 0 and again.events == []


def rows(paths) -> list[dict]:
    found = [{k: v for k, v in row.items() if k != "run_id"} for p in paths for row in read_dead_letters(p)]
    return sorted(found, key=lambda r: (r["source_key"], r["line_no"] or 0, r["reason"]))


def test_an_unreachable_state_store_fails_the_partition_before_sending(sample_source, tmp_path, aws_conn_id) -> None:
    config = PipelineConfig(name="it", source=sample_source)
    ledger, sender = Ledger.sqlite(tmp_path / "ledger.db"), Recorder()
    missing = open_location("s3://no-such-bucket-here/hyperline-sync", aws_conn_id)
    job = SyncJob(pipeline=config, ledger=ledger, source=ArchiveSource(config), state_dir=missing,
                  output_dir=missing / "reports", run_id="r", owner="r", sender=sender)
    with pytest.raises(StateStoreError) as failed:
        sync_partition(job, SAMPLE_DAYS[0])
    assert "s3://no-such-bucket-here/hyperline-sync" in str(failed.value) and "NoSuchBucket" in str(failed.value)
    assert "testing" not in str(failed.value)  # the connection's keys
    assert sender.events == [] and ledger.partitions("it") == {}
    assert ledger.done_objects("it", SAMPLE_DAYS[0].isoformat()) == {}
