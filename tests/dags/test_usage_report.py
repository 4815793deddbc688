"""A run's usage.csv and report.html from real DagRuns: the usage adds up to what the Hyperline
emulator stored (events it refused are not usage), a dry run's to what it wrote, and the rejects by
reason to the rejected count."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from hyperline_devtools.emulator import Faults
from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from hyperline_sync.insight.usage import read_usage, usage_totals
from hyperline_sync.state.report import run_dir
from tests.dag_runs import DagHarness, pipeline_with_emulator
from tests.hyperline_sync.insight.test_html_report import network_references

DAYS = [dt.date(2026, 7, 1), dt.date(2026, 7, 2)]
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}
PIPELINE = "usage"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> SampleManifest:
    return generate_archive(tmp_path_factory.mktemp("archive"), "usageSrc02", DAYS, 400, seed=21, objects_per_day=2)


@pytest.fixture
def harness(archive, tmp_path, monkeypatch):
    pipeline = {
        "name": PIPELINE,
        "source": {"kind": "s3_archive", "url": f"file://{archive.root}", "source_id": archive.source_id},
        "hyperline_conn_id": "hyperline_usage",
        "tuning": {"retries": 0, "chunk_size": 150, "batch_size": 40},
        "report": {"sum_properties": {"API Call": ["ms", "bytes"]}},
    }
    with pipeline_with_emulator(pipeline, "usage_secret_key", tmp_path, monkeypatch) as (state_dir, emulator):
        yield DagHarness(PIPELINE, emulator, state_dir)


def usage_of(h: DagHarness, dag_run) -> tuple[Path, dict]:
    folder = run_dir(h.state_dir / "reports", PIPELINE, dag_run.run_id)
    return folder, h.report(dag_run)


def per_key(events) -> tuple[dict, dict]:
    """(customer, event type) -> events, and customer -> summed `ms` of its API Calls."""
    counts = Counter((e["customer_id"], e["event_type"]) for e in events)
    ms: Counter[str] = Counter()
    for e in events:
        if e["event_type"] == "API Call" and type(e["record"].get("ms")) in (int, float):
            ms[e["customer_id"]] += Decimal(repr(e["record"]["ms"]))
    return dict(counts), {c: v for c, v in ms.items() if v}


def table_of(usage) -> tuple[dict, dict]:
    totals = usage_totals(usage)
    counts = {(c, t): n for c, t, n in totals[["customer_id", "event_type", "events"]].itertuples(index=False)}
    calls = totals[totals["event_type"] == "API Call"]
    return counts, {c: Decimal(s) for c, s in zip(calls["customer_id"], calls["sum_ms"], strict=True) if s}


def test_the_usage_is_what_hyperline_stored(archive, harness):
    h = harness
    refused = Counter(e.customer_id for e in archive.expected_events.values()).most_common(1)[0][0]
    h.emulator.set_faults(Faults(reject_customer_ids=frozenset({refused})))
    dag_run = h.run(RANGE)
    assert dag_run.state == "success"
    folder, report = usage_of(h, dag_run)
    usage = read_usage(folder / "usage.csv")

    stored = list(h.emulator.events.values())
    assert stored and refused not in {e["customer_id"] for e in stored}
    assert int(usage["events"].sum()) == report["totals"]["sent"] == len(stored)
    assert table_of(usage) == per_key(stored)
    assert {day: int(n) for day, n in usage.groupby("day")["events"].sum().items()} == \
        {p["partition"]: p["counts"]["sent"] for p in report["partitions"]}

    reasons: Counter[str] = Counter()
    for part in report["partitions"]:
        reasons.update(part["rejects"])
    assert sum(reasons.values()) == report["totals"]["rejected"] > 0
    by_hyperline = sum(1 for e in archive.expected_events.values() if e.customer_id == refused)
    assert reasons == archive.totals.rejected + Counter({"rejected_by_hyperline": by_hyperline})

    page = (folder / "report.html").read_text()
    assert page.count("<svg") == 4 and network_references(page) == []
    assert "rejected_by_hyperline" in page and "(adds up)" in page
    assert "usage_secret_key" not in page and "usage_secret_key" not in (folder / "usage.csv").read_text()


def test_a_dry_runs_usage_is_what_it_wrote(harness):
    h = harness
    dag_run = h.run({**RANGE, "dry_run": True})
    assert dag_run.state == "success" and h.emulator.requests == 0
    folder, report = usage_of(h, dag_run)
    written = [json.loads(line) for p in report["partitions"] if p["dry_run_output"]
               for line in gzip.decompress(Path(p["dry_run_output"]).read_bytes()).splitlines()]
    usage = read_usage(folder / "usage.csv")
    assert int(usage["events"].sum()) == report["totals"]["sent"] == len(written)
    assert table_of(usage) == per_key(written)
    assert "dry run" in (folder / "report.html").read_text()
