"""The sync DAG end to end on a warehouse source: real DagRuns (dag.test) reading a Segment-shaped
schema on the real Postgres through an Airflow connection, sending to the Hyperline emulator on
127.0.0.1, with the ledger in SQLite. The DAG code is the archive's; only the config differs.

What is asserted comes from the rows as inserted (each with its expected outcome, written by hand in
tests/hyperline_sync/sources/test_warehouse_postgres.py) and from what the emulator received.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dag_runs import DagHarness, pipeline_with_emulator
from tests.hyperline_sync.sources.test_warehouse_postgres import (
    CONN_ID,
    D1,
    D2,
    DUPLICATE,
    SCHEMA,
    SENT,
    SKIPPED,
    Row,
    SegmentWarehouse,
    at,
    bulk,
    nasty,
)

API_KEY = "test_wh_e2e_key"
PIPELINE = "wh_e2e"
D3 = D2 + dt.timedelta(days=1)
RANGE = {"start": D1.isoformat(), "end": D3.isoformat()}

pytestmark = pytest.mark.slow


@dataclass
class Harness(DagHarness):
    warehouse: Any  # SegmentWarehouse, or fake_snowflake.SnowflakeWarehouse

    def partitions(self, dag_run) -> dict[str, dict]:
        return {p["partition"]: p for p in self.report(dag_run)["partitions"]}


def pipeline() -> dict:
    """The pipeline of every scenario (also run on Snowflake: test_sync_dag_warehouse_snowflake.py)."""
    return {
        "name": PIPELINE,
        "source": {"kind": "warehouse", "conn_id": CONN_ID, "schema": SCHEMA,
                   "events": ["api_call", "storage_used", "debug_ping"], "lookback_days": 3},
        "hyperline_conn_id": "hyperline_wh_e2e",
        "mapping": {"events": {"exclude": ["Debug Ping"]}},
        "tuning": {"retries": 0, "chunk_size": 40, "batch_size": 25},
    }


@pytest.fixture
def harness(postgres_url, tmp_path, monkeypatch) -> Harness:
    warehouse = SegmentWarehouse(postgres_url).create()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_uri)
    with pipeline_with_emulator(pipeline(), API_KEY, tmp_path, monkeypatch) as (state_dir, emulator):
        yield Harness(PIPELINE, emulator, state_dir, warehouse)
    warehouse.engine.dispose()


def assert_delivered_exactly(h: Harness, rows: list[Row]) -> None:
    """Hyperline holds exactly the deliverable rows, field by field, each posted once."""
    expected = {r.id: r.expected_event() for r in rows if r.expect == SENT}
    assert set(h.emulator.events) == set(expected)
    for message_id, event in expected.items():
        got = h.emulator.events[message_id]
        assert (got["customer_id"], got["event_type"], got["timestamp"], got["record"]) == event, message_id
    assert set(h.emulator.post_counts.values()) == {1}


def test_a_range_run_delivers_every_row_once_then_reruns_skip_and_dry_run_sends_nothing(harness):
    h = harness
    rows = h.warehouse.insert(bulk(D1, 30, [0, 6, 13, 23], "a") + nasty(D1) + bulk(D2, 30, [2, 14], "b"))

    first = h.run(RANGE)
    assert first.state == "success"
    assert_delivered_exactly(h, rows)

    report = h.report(first)
    outcomes = Counter(r.expect for r in rows)
    rejected = sum(n for k, n in outcomes.items() if k not in (SENT, DUPLICATE, SKIPPED))
    assert report["balanced"] is True
    assert report["totals"]["read"] == len(rows)
    assert report["totals"]["sent"] == outcomes[SENT]
    assert report["totals"]["duplicates"] == outcomes[DUPLICATE]
    assert report["totals"]["skipped"] == outcomes[SKIPPED]
    assert report["totals"]["rejected"] == rejected
    assert [p["partition"] for p in report["partitions"]] == [D1.isoformat(), D2.isoformat()]
    for partition in report["partitions"]:
        c = partition["counts"]
        assert c["read"] == c["sent"] + c["rejected"] + c["skipped"] + c["duplicates"]

    letters = h.dead_letters()
    assert len(letters) == rejected
    assert all(row["reason"] and row["source_key"].startswith(f"{SCHEMA}.api_call@") for row in letters)

    # Again over the same range: every slice is done (same etag), nothing is read or sent.
    requests = h.emulator.requests
    second = h.run(RANGE)
    assert second.state == "success"
    assert h.report(second)["totals"]["read"] == 0
    assert h.emulator.requests == requests

    # Dry run with resend: every event is read and written to the dry-run files, none is sent.
    dry = h.run({**RANGE, "dry_run": True, "resend": True})
    assert dry.state == "success"
    assert h.emulator.requests == requests
    outputs = [p["dry_run_output"] for p in h.report(dry)["partitions"]]
    written = [json.loads(line) for path in outputs for line in gzip.decompress(Path(path).read_bytes()).splitlines()]
    assert sorted(e["record"]["id"] for e in written) == sorted(r.id for r in rows if r.expect == SENT)
    assert set(h.emulator.post_counts.values()) == {1}


def test_late_rows_arrive_with_the_first_scheduled_run_after_their_load(harness):
    h = harness
    on_time = h.warehouse.insert(bulk(D1, 20, [3, 15], "on-time"))
    # Rows received on D1 whose load is under way when the first run lists D1: their load hour has
    # not ended (uuid_ts in the warehouse's current hour), so the run must not read them yet.
    loading_hour = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    in_flight = h.warehouse.insert([
        Row("api_call", f"in-flight-{i}", at(D1, 21, i), loading_hour, props={"endpoint": "/in-flight"})
        for i in range(3)
    ])

    first = h.run(logical_date=dt.datetime.combine(D2, dt.time(10), tzinfo=dt.UTC))
    assert first.state == "success"
    assert first.data_interval_end - first.data_interval_start == dt.timedelta(hours=1)
    # The scheduled run covers its day plus lookback_days (3) before it: D1 among them.
    assert list(h.partitions(first)) == [(D2 - dt.timedelta(days=n)).isoformat() for n in (3, 2, 1, 0)]
    assert_delivered_exactly(h, on_time)

    # Segment loads more D1 rows 30 h late, after the first run; the in-flight load completes.
    late = h.warehouse.insert([
        Row("storage_used", f"late-{i}", at(D1, 10, i), at(D2, 16, 20), props={"region": "eu"}) for i in range(4)
    ] + [Row("api_call", "on-time-3-1", at(D1, 3, 59), at(D2, 16, 20), expect=DUPLICATE)])  # a replayed copy
    h.warehouse.sql(f"update {SCHEMA}.api_call set uuid_ts = '{at(D2, 16, 40).isoformat()}' "
                    "where id like 'in-flight-%'")
    requests = h.emulator.requests

    second = h.run(logical_date=dt.datetime.combine(D2, dt.time(17), tzinfo=dt.UTC))
    assert second.state == "success"
    assert_delivered_exactly(h, on_time + in_flight + late)
    assert h.emulator.requests > requests
    d1 = h.partitions(second)[D1.isoformat()]
    assert d1["counts"] == {"read": len(late) + len(in_flight), "sent": 7, "rejected": 0, "skipped": 0,
                            "duplicates": 1}
    assert d1["objects_synced"] == 2  # the late slice and the completed in-flight slice, nothing else
    assert sum(p["counts"]["read"] for p in h.report(second)["partitions"]) == len(late) + len(in_flight)


def test_a_failed_slice_fails_its_partition_and_a_rerun_of_failed_partitions_completes(harness):
    h = harness
    rows = h.warehouse.insert(bulk(D1, 12, [4], "f") + bulk(D2, 12, [4], "g"))
    h.warehouse.insert([Row("api_call", "inf", at(D2, 8), at(D2, 9, 30), props={"started_at": "infinity"})])

    failed = h.run(RANGE)
    assert failed.state == "failed"
    report = h.report(failed)
    assert report["failed_partitions"] == [D2.isoformat()]
    assert f"{SCHEMA}.api_call@2026-03-02T09" in h.partitions(failed)[D2.isoformat()]["error"]
    assert h.ledger().failed_partitions(PIPELINE) == [D2.isoformat()]
    assert_delivered_exactly(h, rows)  # everything else was delivered

    h.warehouse.sql(f"update {SCHEMA}.api_call set started_at = '{at(D2, 7).isoformat()}' where id = 'inf'")
    requests = h.emulator.requests
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    assert list(h.partitions(rerun)) == [D2.isoformat()]
    assert h.partitions(rerun)[D2.isoformat()]["counts"]["read"] == 1  # only the fixed slice is read again
    assert h.emulator.requests == requests + 1
    fixed = Row("api_call", "inf", at(D2, 8), at(D2, 9, 30), props={"started_at": at(D2, 7)})
    assert_delivered_exactly(h, [*rows, fixed])
    assert h.ledger().failed_partitions(PIPELINE) == []
