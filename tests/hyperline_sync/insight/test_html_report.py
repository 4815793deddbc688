"""The run's HTML report: its plots are inline SVG, it fetches nothing, and user data is escaped."""

from __future__ import annotations

import re

import pandas as pd

from hyperline_sync.insight.html_report import render_run_report
from hyperline_sync.insight.usage import UsageTally
from hyperline_sync.state.ledger import Counts
from hyperline_sync.state.report import PartitionOutcome, build_report

XSS = '<script>alert("x")</script><img src="https://evil.example/x.png">'


def network_references(html: str) -> list[str]:
    """src/href attributes and CSS url()s pointing at a network address."""
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"' >]*|url\(\s*["']?(?:https?:)?//""", html,
                      re.IGNORECASE)


def report_and_usage(*, balanced: bool = True) -> tuple[dict, pd.DataFrame]:
    tally = UsageTally({"api_call": ["duration_ms"]})
    for day, n in (("2026-05-01", 3), ("2026-05-02", 5)):
        tally.add(day, pd.DataFrame({
            "message_id": [f"{day}-{i}" for i in range(n)],
            "customer_id": [XSS if i % 2 else f"cus_{i}" for i in range(n)],
            "event_type": ["api_call" if i % 3 else f"{XSS}type" for i in range(n)],
            "record": [{"duration_ms": i} for i in range(n)],
        }))
    first = PartitionOutcome("2026-05-01", "done", Counts(read=6, sent=3, rejected=2, skipped=1),
                             rejects={XSS: 1, "invalid_timestamp": 1})
    second = PartitionOutcome("2026-05-02", "failed", Counts(read=5, sent=5 if balanced else 4),
                              error=f"boom {XSS}")
    report = build_report(pipeline="acme", run_id=f"manual__{XSS}", dry_run=False, params={"start": "2026-05-01"},
                          outcomes=[first, second])
    return report, tally.frame()


def test_the_report_draws_its_plots_inline_and_fetches_nothing():
    report, usage = report_and_usage()
    html = render_run_report(report, usage)
    assert html.count("<svg") == 4  # shares, events per day and type, top customers, rejects by reason
    assert network_references(html) == []
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "default-src 'none'" in html  # and a browser would refuse to fetch anything anyway
    assert "11 read = 8 sent + 2 rejected + 1 skipped + 0 duplicates" in html.replace(",", "")
    assert "(adds up)" in html
    assert "invalid_timestamp" in html and "2026-05-02" in html


def test_every_value_is_escaped():
    report, usage = report_and_usage()
    html = render_run_report(report, usage)
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=&quot;https://evil.example/x.png&quot;&gt;"
    # run id, customer ids (bars, table), event types (legend, table), a reject reason, an error
    assert html.count(escaped) >= 6
    assert XSS not in html


def test_counts_that_do_not_add_up_are_shown_as_such():
    report, usage = report_and_usage(balanced=False)
    assert "DOES NOT ADD UP" in render_run_report(report, usage)


def test_a_run_that_sent_nothing_still_renders():
    report = build_report(pipeline="acme", run_id="r", dry_run=True, params={}, outcomes=[
        PartitionOutcome("2026-05-01", "dry_run")])
    html = render_run_report(report, UsageTally().frame())
    assert "No events were sent." in html and "No event was rejected." in html
    assert "dry run" in html
