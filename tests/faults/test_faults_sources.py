"""What is read, end to end through real DAG runs on moto S3: a poison line is one dead letter, not a
day blocked for good; a wrong source id fails loudly instead of syncing "nothing" as a success."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from hyperline_sync.state.ledger import DONE, FAILED
from tests.faults.harness import DAYS, PIPELINE, RANGE, Harness, upload
from tests.faults.test_faults_inputs import folder, fresh_events, ndjson

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_line_nested_1000_deep_is_dead_lettered_and_the_day_syncs(
        harness: Harness, s3_client: Any, bucket_name: str):
    """2. Good lines around a line nested 1,000 deep (msgspec raises RecursionError on it)."""
    h = harness
    upload(s3_client, bucket_name, h.manifest.root)
    good = fresh_events(h, 404, DAYS[1], 300)
    poison = (b'{"type":"track","event":"API Call","messageId":"poison-1","userId":"u",'
              b'"writeKey":"' + h.manifest.write_key.encode() + b'","properties":{"x":'
              + b"[" * 1000 + b"1" + b"]" * 1000 + b"}}")
    body = ndjson(good[:150]) + poison + b"\n" + ndjson(good[150:])
    key = folder(DAYS[1]) + "zz-poison.gz"
    s3_client.put_object(Bucket=bucket_name, Key=key, Body=gzip.compress(body, mtime=0))
    h.configure(source_url=f"s3://{bucket_name}/logs")

    run = h.run(RANGE)
    assert run.state == "success"

    h.assert_exact(set(h.manifest.expected_events) | {i for i, _ in good})
    poisoned = {o["key"]: o for o in h.ledger().objects(PIPELINE, DAYS[1].isoformat())}[key]
    assert (poisoned["status"], poisoned["read"], poisoned["sent"], poisoned["rejected"]) == (DONE, 301, 300, 1)
    [letter] = h.dead_letters(DAYS[1])["zz-poison.gz.jsonl.gz"]
    assert (letter["reason"], letter["line_no"]) == ("too_deep", 151)
    assert h.manifest.write_key not in letter["raw"]
    h.assert_report_matches_ledger(h.report(run.run_id))
    h.record("2. a line nested 1,000 deep", len(h.manifest.expected_events) + len(good))


def test_a_wrong_source_id_fails_every_day_naming_where_it_looked(harness: Harness, bucket_name: str):
    """4a. The archive exists, the source id is wrong: no day folder under segment-logs/<source_id>/."""
    h = harness
    h.configure(source_id="wrongSource")
    run = h.run(RANGE)
    assert run.state == "failed"

    where = f"{h.source_url}/segment-logs/wrongSource/"
    report = h.report(run.run_id)
    assert report["failed_partitions"] == [day.isoformat() for day in DAYS]
    for part in report["partitions"]:
        assert f"{where}: no day folders of source 'wrongSource'" in part["error"], part
    states = h.ledger().partitions(PIPELINE)
    assert all(states[d.isoformat()].status == FAILED and where in states[d.isoformat()].last_error for d in DAYS)
    assert not h.emulator.events
    h.record("4a. wrong source id", 0)
