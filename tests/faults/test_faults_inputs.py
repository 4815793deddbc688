"""Corrupt or unreadable inputs: each becomes a clear per-object error or dead-letter entry, the other
objects still sync, the counts say what happened, and memory stays bounded.

Objects added to the archive are named `zz-*.gz` so they sort after the day's real objects: the
manifest's first-received copies stay first.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
import uuid
from pathlib import Path
from random import Random
from typing import Any

import orjson
import pytest

from hyperline_devtools.sample_archive import day_folder_ms
from hyperline_devtools.sample_messages import MessageWriter
from hyperline_sync.pipeline.sync import PartitionFailedError
from hyperline_sync.state.ledger import DONE, FAILED
from tests.faults.harness import DAYS, PIPELINE, RANGE, SOURCE_ID, Harness, upload

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]  # a hang fails in minutes


def fresh_events(h: Harness, seed: int, day: dt.date, count: int) -> list[tuple[str, bytes]]:
    """(messageId, NDJSON line) of `count` new deliverable track calls, writeKey included."""
    writer = MessageWriter(SOURCE_ID, seed, h.manifest.write_key)
    lines = []
    for i in range(count):
        message, _, _ = writer.track(day_folder_ms(day) + 60_000 + i)
        lines.append((message["messageId"], orjson.dumps(message)))
    assert not {i for i, _ in lines} & set(h.manifest.expected_events)
    return lines


def ndjson(lines: list[tuple[str, bytes]]) -> bytes:
    return b"\n".join(line for _, line in lines) + b"\n"


def folder(day: dt.date, base: str = "logs/") -> str:
    return f"{base}segment-logs/{SOURCE_ID}/{day_folder_ms(day)}/"


def report_vs_ledger(h: Harness, report: dict) -> None:
    """On a run from scratch, each partition's counts in the report are the ledger's."""
    states = h.ledger().partitions(PIPELINE)
    for part in report["partitions"]:
        assert part["counts"] == states[part["partition"]].counts.as_dict(), part["partition"]


def test_corrupt_and_forbidden_objects_fail_alone_while_the_rest_syncs(
        harness: Harness, s3_client: Any, moto_server: str, bucket_name: str, monkeypatch):
    """5. A truncated gzip, a zero-byte object, a .gz that is bzip2, gzip magic then garbage, and an
    object the pipeline's IAM user may not read (moto with IAM enforced), spread over the 3 days."""
    from moto.core.authorization import enable_iam_authentication

    h = harness
    upload(s3_client, bucket_name, h.manifest.root)
    truncated = fresh_events(h, 101, DAYS[0], 6000)
    whole = gzip.compress(ndjson(truncated), mtime=0)
    denied = fresh_events(h, 202, DAYS[2], 300)
    not_gzip = bz2.compress(ndjson(fresh_events(h, 303, DAYS[1], 200)))
    bad = {
        folder(DAYS[0]) + "zz-truncated.gz": whole[: len(whole) * 6 // 10],
        folder(DAYS[1]) + "zz-empty.gz": b"",
        folder(DAYS[1]) + "zz-not-gzip.gz": not_gzip,
        folder(DAYS[2]) + "zz-bad-magic.gz": b"\x1f\x8b\x08\x00" + Random(5).randbytes(4000),
        folder(DAYS[2]) + "zz-denied.gz": gzip.compress(ndjson(denied), mtime=0),
    }
    for key, body in bad.items():
        s3_client.put_object(Bucket=bucket_name, Key=key, Body=body)

    # The pipeline reads as an IAM user allowed to list and read the bucket, except one object.
    iam = iam_client(moto_server)
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read-archive", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{bucket_name}", f"arn:aws:s3:::{bucket_name}/*"]},
            {"Effect": "Deny", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{bucket_name}/{folder(DAYS[2])}zz-denied.gz"},
        ]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    h.evidence.secrets["IAM user secret"] = key["SecretAccessKey"]
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_IAM", json.dumps({
        "conn_type": "aws", "login": key["AccessKeyId"], "password": key["SecretAccessKey"],
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1",
                  "config_kwargs": {"s3": {"addressing_style": "path"}}}}))
    h.configure(source_url=f"s3://{bucket_name}/logs", aws_conn_id="moto_iam")
    with enable_iam_authentication():
        run = h.run(RANGE)
    assert run.state == "failed"

    report = h.report(run.run_id)
    assert report["failed_partitions"] == [day.isoformat() for day in DAYS]
    errors = {p["partition"]: p["error"] for p in report["partitions"]}
    assert "zz-truncated.gz: truncated gzip stream (unexpected end of object)" in errors[DAYS[0].isoformat()]
    assert "zz-bad-magic.gz: corrupt gzip data" in errors[DAYS[2].isoformat()]
    assert "zz-denied.gz: access denied" in errors[DAYS[2].isoformat()]
    assert "zz-not-gzip.gz: not gzip: starts with bytes 42 5a 68" in errors[DAYS[1].isoformat()]  # bzip2's "BZh"

    ledger = h.ledger()
    objects = {o["key"].rsplit("/", 1)[1]: o for d in DAYS for o in ledger.objects(PIPELINE, d.isoformat())}
    for name in ("zz-truncated.gz", "zz-bad-magic.gz", "zz-denied.gz", "zz-not-gzip.gz"):
        assert objects[name]["status"] == FAILED and objects[name]["error"], name
    assert objects["zz-empty.gz"]["status"] == DONE and objects["zz-empty.gz"]["read"] == 0
    assert objects["zz-not-gzip.gz"]["read"] == 0  # never read as text, line by line
    assert "zz-not-gzip.gz.jsonl.gz" not in h.dead_letters(DAYS[1])

    # Hyperline: every event of the readable objects, plus what the truncated object yielded before
    # it broke off (a prefix of it, as many as the ledger says were sent), nothing of the others.
    stored = set(h.emulator.events)
    extra = stored - set(h.manifest.expected_events)
    assert set(h.manifest.expected_events) <= stored
    prefix = [i for i, _ in truncated[: len(extra)]]
    assert extra == set(prefix) and len(extra) == objects["zz-truncated.gz"]["sent"] > 0
    h.assert_exact(set(h.manifest.expected_events) | extra)
    assert max(h.emulator.post_counts.values()) == 1
    report_vs_ledger(h, report)
    assert report["balanced"] is True

    # The operator removes the broken objects and lifts the deny: the rerun of the failed partitions
    # reads only what is left to read.
    for name in ("zz-truncated.gz", "zz-bad-magic.gz", "zz-not-gzip.gz"):
        s3_client.delete_object(Bucket=bucket_name, Key=next(k for k in bad if k.endswith(name)))
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    h.assert_exact(set(h.manifest.expected_events) | extra | {i for i, _ in denied})
    assert max(h.emulator.post_counts.values()) == 1
    assert ledger.failed_partitions(PIPELINE) == []
    h.record("5. corrupt/forbidden objects (S3, IAM)", len(h.manifest.expected_events) + len(extra) + len(denied))


def test_a_200mb_object_without_newlines_is_one_dead_letter_in_bounded_memory(harness: Harness, tmp_path: Path):
    """5. A 200 MB object with no newline, next to a real object of the same day (file:// archive),
    synced by the DAG's task body in a subprocess whose peak RSS is measured.

    The subprocess first syncs the day with the real object only (imports, connections, pandas warm),
    then the huge object appears; the kernel's peak-RSS mark (VmHWM) is reset and the day synced again.
    """
    h = harness
    day = DAYS[0]
    real_key = next(k for k, d in sorted(h.manifest.object_days.items()) if d == day)
    root = tmp_path / "archive"
    target = root / folder(day, base="")
    target.mkdir(parents=True)
    (target / Path(real_key).name).write_bytes((h.manifest.root / real_key).read_bytes())
    staged = tmp_path / "zz-huge.gz"
    block = (b'{"type":"track","writeKey":"' + h.manifest.write_key.encode() + b'","event":"' + b"x" * (1 << 20))
    block = block[: 1 << 20]
    with open(staged, "wb") as out:  # streamed: the test holds one 1 MiB block at a time
        for _ in range(200):
            out.write(block)
    assert staged.stat().st_size == 200 << 20
    h.configure(source_url=f"file://{root}")

    done = h.python(f"""
        import json, os
        from hyperline_sync.orchestration import tasks
        def status(field):
            with open("/proc/self/status") as f:
                return int(next(line for line in f if line.startswith(field + ":")).split()[1])
        warm = tasks.sync({PIPELINE!r}, [{day.isoformat()!r}], {{}}, "manual__huge")
        os.replace({str(staged)!r}, {str(target / "zz-huge.gz")!r})
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark
        before = status("VmRSS")
        result = tasks.sync({PIPELINE!r}, [{day.isoformat()!r}], {{}}, "manual__huge")
        print("MEMORY", json.dumps({{"before_kb": before, "peak_kb": status("VmHWM"), "warm": warm,
                                     "result": result}}))
    """)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    memory = json.loads(done.stdout.split("MEMORY", 1)[1])
    assert memory["warm"][0]["sent"] > 0 and memory["result"][0]["read"] == 1  # the huge object, alone
    growth_mb = (memory["peak_kb"] - memory["before_kb"]) / 1024
    print(f"200 MB object: peak RSS growth {growth_mb:.1f} MB")
    assert growth_mb < 64, f"peak RSS grew {growth_mb:.0f} MB while reading a 200 MB object"

    letters = h.dead_letters(day)["zz-huge.gz.jsonl.gz"]
    assert len(letters) == 1
    assert letters[0]["reason"] == "line_too_long" and letters[0]["line_no"] == 1
    assert len(letters[0]["raw"]) <= 2048 and h.manifest.write_key not in letters[0]["raw"]
    objects = {o["key"].rsplit("/", 1)[1]: o for o in h.ledger().objects(PIPELINE, day.isoformat())}
    huge = objects["zz-huge.gz"]
    assert (huge["status"], huge["read"], huge["rejected"], huge["sent"]) == (DONE, 1, 1, 0)
    assert memory["result"][0]["status"] == "done"
    expected = {i for i, e in h.manifest.expected_events.items() if e.key == real_key}
    h.assert_exact(expected)
    h.record(f"5. 200 MB object, no newline (RSS +{growth_mb:.0f} MB)", len(expected))


def test_an_object_deleted_between_listing_and_reading_fails_alone(
        harness: Harness, s3_client: Any, bucket_name: str):
    """5. The last object of the day disappears after the listing (real S3, sync_partition level)."""
    from hyperline_sync.orchestration import tasks
    from hyperline_sync.pipeline.sync import SyncJob, sync_partition
    from hyperline_sync.sources.base import open_source

    h = harness
    day = DAYS[0]
    upload(s3_client, bucket_name, h.manifest.root)
    h.configure(source_url=f"s3://{bucket_name}/logs")
    config, pipeline = tasks.load_pipeline(PIPELINE)
    source = open_source(pipeline)
    listed: list[str] = []

    class DeletingSource:
        def list_units(self, d):
            units = source.list_units(d)
            listed.append(units[-1].key)
            s3_client.delete_object(Bucket=bucket_name, Key=units[-1].key)
            return units

        def chunks(self, unit, chunk_size):
            return source.chunks(unit, chunk_size)

    job = SyncJob(pipeline=pipeline, ledger=tasks.ledger_for(config), source=DeletingSource(),
                  state_dir=config.state.dir, output_dir=config.state.output_dir, run_id="manual__deleted",
                  owner="manual__deleted", sender=tasks.make_sender(pipeline))
    with pytest.raises(PartitionFailedError) as failed:
        sync_partition(job, day)
    gone = listed[0]
    assert f"{gone}: {gone}: object not found" in str(failed.value)
    objects = {o["key"]: o for o in job.ledger.objects(PIPELINE, day.isoformat())}
    assert objects[gone]["status"] == FAILED and objects[gone]["read"] == 0
    assert all(o["status"] == DONE for k, o in objects.items() if k != gone)
    state = job.ledger.partitions(PIPELINE)[day.isoformat()]
    assert state.status == FAILED and gone in state.last_error
    expected = {i for i, e in h.manifest.expected_events.items()
                if e.day == day and e.key != gone.removeprefix("logs/")}
    h.assert_exact(expected)
    h.record("5. object deleted between listing and reading", len(expected))


def iam_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")



def test_reruns_of_a_truncated_object_post_nothing_again(harness: Harness, tmp_path: Path):
    """5b. A truncated gzip stays in the archive and the failed partition is rerun three times: each
    rerun reads the object again up to the break, but what Hyperline acknowledged before it is not sent
    again (file:// archive of one day)."""
    h = harness
    day = DAYS[0]
    root = tmp_path / "archive"
    target = root / folder(day, base="")
    target.mkdir(parents=True)
    for key, d in h.manifest.object_days.items():
        if d == day:
            (target / Path(key).name).write_bytes((h.manifest.root / key).read_bytes())
    truncated = fresh_events(h, 404, day, 6000)
    whole = gzip.compress(ndjson(truncated), mtime=0)
    (target / "zz-truncated.gz").write_bytes(whole[: len(whole) * 6 // 10])
    h.configure(source_url=f"file://{root}")
    one_day = {"start": day.isoformat(), "end": DAYS[1].isoformat()}

    first = h.run(one_day)
    assert first.state == "failed"
    sent_before_break = h.ledger().objects(PIPELINE, day.isoformat())[-1]
    assert sent_before_break["key"].endswith("zz-truncated.gz") and sent_before_break["sent"] > 0
    for _ in range(3):
        rerun = h.run({"partitions": ["failed"]})
        assert rerun.state == "failed"
        part = h.report(rerun.run_id)["partitions"][0]
        assert "zz-truncated.gz: truncated gzip stream" in part["error"]
        assert part["resumed"] > 0 and part["counts"]["sent"] == 0  # read again up to the break, not sent
    expected = {i for i, e in h.manifest.expected_events.items() if e.day == day}
    expected |= {i for i, _ in truncated[: sent_before_break["sent"]]}
    h.assert_exact(expected)
    assert h.posted_again() == 0
    row = {o["key"]: o for o in h.ledger().objects(PIPELINE, day.isoformat())}[sent_before_break["key"]]
    assert (row["status"], row["sent"], row["read"]) == (FAILED, sent_before_break["sent"], sent_before_break["read"])
    h.record("5b. truncated gzip left in place, rerun x3", len(expected))
