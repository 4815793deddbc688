"""`hyperline-sync preview --summary/--html`: the usage of exactly the events written, and the report;
and what preview refuses: a range over MAX_DAYS days, a source it cannot read (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.insight.usage import read_usage, usage_totals
from hyperline_sync.orchestration.cli import main
from hyperline_sync.orchestration.cli.trial import MAX_DAYS
from hyperline_sync.sources.archive.listing import day_folder
from tests.hyperline_sync.insight.test_html_report import network_references

DAYS = [dt.date(2026, 5, 1), dt.date(2026, 5, 2)]
RANGE = ["--start", "2026-05-01", "--end", "2026-05-03"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return generate_archive(tmp_path_factory.mktemp("archive"), "usageSrc01", DAYS, 500, seed=5, objects_per_day=2)


def write_config(path: Path, archive, **pipeline) -> Path:
    path.write_text(yaml.safe_dump({
        "state": {"dir": str(path.parent / "real-state")},
        "pipelines": [{"name": "cli", "source": {"kind": "s3_archive", "url": f"file://{archive.root}",
                                                  "source_id": archive.source_id}, **pipeline}],
    }))
    return path


def test_the_summary_adds_up_to_the_events_written(archive, tmp_path):
    config = write_config(tmp_path / "p.yaml", archive, report={"sum_properties": {"API Call": ["ms", "bytes"]}})
    out, summary, html = tmp_path / "events.jsonl", tmp_path / "usage.csv", tmp_path / "report.html"
    assert main(["preview", "--config", str(config), "--pipeline", "cli", *RANGE, "--output", str(out),
                 "--summary", str(summary), "--html", str(html)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    usage = read_usage(summary)
    assert int(usage["events"].sum()) == len(written) == len(archive.expected_events)
    per_key = Counter((e["customer_id"], e["event_type"]) for e in written)
    totals = usage_totals(usage)
    assert {(c, t): n for c, t, n in totals[["customer_id", "event_type", "events"]].itertuples(index=False)} == \
        dict(per_key)
    for field in ("ms", "bytes"):
        expected: Counter[str] = Counter()
        for e in written:
            if e["event_type"] == "API Call" and type(e["record"].get(field)) in (int, float):
                expected[e["customer_id"]] += Decimal(repr(e["record"][field]))
        calls = totals[totals["event_type"] == "API Call"]
        assert {c: Decimal(s) for c, s in zip(calls["customer_id"], calls[f"sum_{field}"], strict=True)
                if s} == {c: v for c, v in expected.items() if v}
        assert totals.loc[totals["event_type"] != "API Call", f"sum_{field}"].isna().all()
    # every day a row of its own: the received day each event was written for
    by_day = usage.groupby("day")["events"].sum().to_dict()
    assert by_day == dict(Counter(e.day.isoformat() for e in archive.expected_events.values()))

    page = html.read_text()
    assert page.count("<svg") >= 3 and network_references(page) == []
    assert f"{len(written):,} sent" in page


def test_a_range_over_the_limit_is_refused(archive, tmp_path, capsys):
    config = write_config(tmp_path / "p.yaml", archive)
    end = (DAYS[0] + dt.timedelta(days=MAX_DAYS + 1)).isoformat()
    assert main(["preview", "--config", str(config), "--pipeline", "cli", "--start", "2026-05-01",
                 "--end", end]) == 2
    assert f"at most {MAX_DAYS}" in capsys.readouterr().err
    end = (DAYS[0] + dt.timedelta(days=MAX_DAYS)).isoformat()  # exactly the limit: read (quiet days are empty)
    assert main(["preview", "--config", str(config), "--pipeline", "cli", "--start", "2026-05-01",
                 "--end", end, "--output", str(tmp_path / "e.jsonl")]) == 0


def test_a_source_that_does_not_exist_is_refused(archive, tmp_path, capsys):
    config = write_config(tmp_path / "p.yaml", archive)
    config.write_text(config.read_text().replace(str(archive.root), str(tmp_path / "nowhere")))
    assert main(["preview", "--config", str(config), "--pipeline", "cli", *RANGE]) == 2
    assert f"cannot read the source of pipeline cli: {tmp_path / 'nowhere'}: archive folder not found" in \
        capsys.readouterr().err


def test_an_object_that_cannot_be_read_is_refused_after_the_rest_is_written(tmp_path, capsys):
    root = tmp_path / "archive"
    folder = root / "segment-logs" / "srcBad01" / day_folder(DAYS[0])
    folder.mkdir(parents=True)
    (folder / "0001.gz").write_bytes(b"not gzip at all")
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({"pipelines": [{"name": "cli", "source": {
        "kind": "s3_archive", "url": f"file://{root}", "source_id": "srcBad01"}}]}))
    assert main(["preview", "--config", str(config), "--pipeline", "cli", *RANGE]) == 2
    err = capsys.readouterr().err
    assert "hyperline-sync: cannot read the source: 2026-05-01: " in err and "0001.gz" in err
