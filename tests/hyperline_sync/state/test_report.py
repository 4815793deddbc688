"""Run reports: outcomes round-trip through files, totals add up, the table is readable."""

from __future__ import annotations

import orjson

from hyperline_sync.state.ledger import Counts
from hyperline_sync.state.report import (
    PartitionOutcome,
    build_report,
    read_outcomes,
    render_table,
    write_outcome,
    write_report,
)

RUN = "manual__2026-11-27T10:00:00+00:00"


def outcomes():
    return [
        PartitionOutcome("2026-11-01", "done", Counts(read=10, sent=6, rejected=2, skipped=1, duplicates=1), 2, 2),
        PartitionOutcome("2026-11-02", "failed", Counts(read=3, sent=3), 2, 1, error="a.gz: truncated gzip"),
    ]


def test_outcomes_round_trip_through_files(tmp_path):
    for outcome in outcomes():
        write_outcome(tmp_path, "demo", RUN, outcome)
    assert list(read_outcomes(tmp_path, "demo", RUN).values()) == outcomes()
    assert read_outcomes(tmp_path, "demo", "other-run") == {}


def test_report_totals_failures_and_balance(tmp_path):
    report = build_report(pipeline="demo", run_id=RUN, dry_run=False, params={}, outcomes=outcomes())
    assert report["status"] == "failed"
    assert report["failed_partitions"] == ["2026-11-02"]
    assert report["totals"] == {"read": 13, "sent": 9, "rejected": 2, "skipped": 1, "duplicates": 1}
    assert report["balanced"] is True
    path = write_report(tmp_path, report)
    assert orjson.loads(path.read_bytes())["totals"]["read"] == 13
    assert ":" not in path.parent.name


def test_unbalanced_counts_are_flagged():
    bad = [PartitionOutcome("2026-11-01", "done", Counts(read=5, sent=1))]
    assert build_report(pipeline="d", run_id="r", dry_run=False, params={}, outcomes=bad)["balanced"] is False


def test_table_has_a_row_per_partition_and_totals():
    table = render_table(outcomes()).splitlines()
    assert table[0].split()[:4] == ["partition", "status", "read", "sent"]
    assert table[2].split()[:3] == ["2026-11-01", "done", "10"]
    assert "truncated gzip" in table[3]
    assert table[-1].split()[:3] == ["TOTAL", "13", "9"]
