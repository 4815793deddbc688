"""The data path end to end on a generated nasty archive (file://): every line in one bucket,
counts equal to the generator's manifest for every partition and object, and the delivered events
equal to the manifest's expected first copies, field by field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from hyperline_devtools.sample_archive import SampleManifest
from hyperline_provider.events import validate_event
from hyperline_sync.config.models import S3ArchiveSourceConfig

RunPartition = Callable[..., Any]  # the `run_partition` fixture (tests/hyperline_sync/conftest.py)


def as_expected(events: list[dict]) -> dict[str, tuple]:
    return {e["record"]["id"]: (e["customer_id"], e["event_type"], e["timestamp"], e["record"]) for e in events}


def manifest_events(manifest: SampleManifest) -> dict[str, tuple]:
    return {
        message_id: (e.customer_id, e.event_type, e.timestamp, e.record)
        for message_id, e in manifest.expected_events.items()
    }


def run_all(run_partition: RunPartition, manifest: SampleManifest, source: S3ArchiveSourceConfig, state: Path) -> list:
    return [run_partition(source, day, state) for day in manifest.days]


def test_counts_add_up_and_match_the_manifest_for_every_partition(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    for day, run in zip(
        sample_archive.days, run_all(run_partition, sample_archive, sample_source, tmp_path), strict=True
    ):
        expected = sample_archive.by_day[day]
        assert run.read == run.events + run.rejected + run.skipped + run.duplicates
        assert (run.read, run.events, run.rejected, run.skipped, run.duplicates) == (
            expected.read,
            expected.events,
            expected.rejected_total,
            expected.skipped,
            expected.duplicates,
        ), day
        assert run.reasons == expected.rejected
        assert run.dropped_properties == expected.dropped_properties
        for key, counts in run.per_object.items():
            want = sample_archive.objects[key]
            assert counts["read"] == counts["sent"] + counts["rejected"] + counts["skipped"] + counts["duplicates"]
            assert (counts["read"], counts["sent"], counts["duplicates"], counts["skipped"]) == (
                want.read,
                want.events,
                want.duplicates,
                want.skipped,
            ), key


def test_delivered_events_are_the_manifest_first_copies(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    delivered = [
        event for run in run_all(run_partition, sample_archive, sample_source, tmp_path) for event in run.delivered
    ]
    ids = [event["record"]["id"] for event in delivered]
    assert len(ids) == len(set(ids)), "a messageId was delivered twice"
    assert as_expected(delivered) == manifest_events(sample_archive)
    assert not set(ids) & sample_archive.decoy_message_ids
    for event in delivered:
        assert isinstance(event["customer_id"], str) and isinstance(event["timestamp"], str)
        # the sync sends these `prevalidated`: the hook's own check must have nothing to say
        assert validate_event(event) is None, event


def test_the_result_does_not_depend_on_the_chunk_size(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    day = sample_archive.days[1]
    small = run_partition(sample_source, day, tmp_path / "a", chunk_lines=7)
    large = run_partition(sample_source, day, tmp_path / "b", chunk_lines=100_000)
    assert small.delivered == large.delivered
    assert small.per_object == large.per_object
    assert [(r["reason"], r["source_key"], r["line_no"]) for r in small.rejects] == [
        (r["reason"], r["source_key"], r["line_no"]) for r in large.rejects
    ]


def test_write_key_never_leaves_the_source(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    runs = run_all(run_partition, sample_archive, sample_source, tmp_path / "state")
    secret = sample_archive.write_key.encode()
    assert any(secret in (sample_archive.root / key).read_bytes() for key in sample_archive.objects)
    for run in runs:
        assert secret not in orjson.dumps({"events": run.delivered, "rejects": run.rejects})
    for id_file in (tmp_path / "state").rglob("*.parquet"):
        assert secret not in id_file.read_bytes()


def test_partitions_synced_newest_first_still_leave_the_first_copy_at_hyperline(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    hyperline: dict[str, dict] = {}  # Hyperline upserts on record.id: the last write wins
    for day in reversed(sample_archive.days):
        for event in run_partition(sample_source, day, tmp_path).delivered:
            hyperline[event["record"]["id"]] = event
    assert as_expected(list(hyperline.values())) == manifest_events(sample_archive)


def test_a_rerun_sends_nothing_again_and_resend_sends_the_partition_again(
    sample_archive: SampleManifest, sample_source: S3ArchiveSourceConfig, run_partition: RunPartition, tmp_path: Path
) -> None:
    first = run_all(run_partition, sample_archive, sample_source, tmp_path)
    day = sample_archive.days[-1]
    expected = sample_archive.by_day[day]

    rerun = run_partition(sample_source, day, tmp_path)
    assert (rerun.read, rerun.events, rerun.per_object) == (0, 0, {})  # every object done at its ETag

    resend = run_partition(sample_source, day, tmp_path, resend=True)
    assert (resend.events, resend.duplicates) == (expected.events, expected.duplicates)
    assert resend.delivered == first[-1].delivered
