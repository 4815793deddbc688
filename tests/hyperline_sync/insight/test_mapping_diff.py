"""Comparing two usage tables: per customer and event type, events and sums on both sides, the change."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from hyperline_sync.insight.mapping_diff import changed, compare_usage, render_diff_html, render_diff_text
from hyperline_sync.insight.usage import UsageTally


def tally(rows: list[tuple[str, str, str, dict]]) -> pd.DataFrame:
    usage = UsageTally({"api_call": ["ms"], "API Call": ["ms"]})
    usage.add(rows[0][0], pd.DataFrame({
        "message_id": [str(i) for i in range(len(rows))],
        "customer_id": [r[1] for r in rows],
        "event_type": [r[2] for r in rows],
        "record": [r[3] for r in rows],
    }))
    return usage.frame()


def test_a_rename_moves_events_and_sums_from_one_type_to_the_other():
    a = tally([("2026-05-01", "c1", "API Call", {"ms": 10}), ("2026-05-01", "c1", "API Call", {"ms": 2.5}),
               ("2026-05-01", "<b>c2</b>", "login", {})])
    b = tally([("2026-05-01", "c1", "api_call", {"ms": 10}), ("2026-05-01", "c1", "api_call", {"ms": 2.5}),
               ("2026-05-01", "<b>c2</b>", "login", {})])
    diff = compare_usage(a, b)
    assert [tuple(r) for r in diff.itertuples(index=False, name=None)] == [
        ("<b>c2</b>", "login", 0 + 1, 1, 0, None, None, None),
        ("c1", "API Call", 2, 0, -2, Decimal("12.5"), None, Decimal("-12.5")),
        ("c1", "api_call", 0, 2, 2, None, Decimal("12.5"), Decimal("12.5")),
    ]
    assert list(changed(diff)["event_type"]) == ["API Call", "api_call"]
    text = render_diff_text(diff)
    assert "c1           API Call    2         0         -2            12.5                -12.5" in text
    assert text.endswith("events: 3 with --config, 3 with --against (+0)\n")
    html = render_diff_html(diff, "acme <diff>")
    assert "<svg" not in html  # no customer's count changes: nothing to draw
    assert "acme &lt;diff&gt;" in html


def test_identical_usage_is_no_change():
    a = tally([("2026-05-01", "c1", "login", {})])
    assert render_diff_text(compare_usage(a, a)).startswith("no change")


def test_a_customer_filtered_out_loses_all_its_events():
    a = tally([("2026-05-01", "c1", "login", {}), ("2026-05-01", "<i>c2</i>", "login", {})])
    b = tally([("2026-05-01", "c1", "login", {})])
    diff = compare_usage(a, b)
    assert [tuple(r) for r in changed(diff).itertuples(index=False, name=None)] == [
        ("<i>c2</i>", "login", 1, 0, -1, None, None, None)]
    html = render_diff_html(diff, "t")
    assert html.count("<svg") == 1 and "&lt;i&gt;c2&lt;/i&gt;" in html and "<i>c2" not in html
