"""What changing a mapping changes on invoices: two usage tables of the same source data, compared
per customer and event type (`a` = the current mapping, `b` = the candidate), as a text table or a
self-contained HTML page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from hyperline_sync.insight.html_page import page, paragraph, section, table
from hyperline_sync.insight.svg import diverging_bars
from hyperline_sync.insight.usage import KEYS, combine, usage_totals

__all__ = ["changed", "compare_usage", "render_diff_html", "render_diff_text"]

TOP_CHANGES = 30
_KEYS = KEYS[1:]  # customer_id, event_type


def compare_usage(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer_id, event_type) of either table: events and every sum on both sides, and
    the change b - a (a sum absent on one side counts as 0 there); sorted by customer, event type."""
    sums = sorted({c for frame in (a, b) for c in frame.columns if c.startswith("sum_")})
    left, right = (usage_totals(combine([f], fields=[c[4:] for c in sums])) for f in (a, b))
    both = left.merge(right, on=_KEYS, how="outer", suffixes=("_a", "_b")).sort_values(_KEYS, kind="stable")
    out = both[_KEYS].copy()
    for name in ["events", *sums]:
        # Plain lists into object columns: pandas would turn ints next to a missing value into floats.
        old, new = ([_present(v, name) for v in both[f"{name}_{side}"].tolist()] for side in "ab")
        out[f"{name}_a"] = pd.Series(old, index=both.index, dtype=object)
        out[f"{name}_b"] = pd.Series(new, index=both.index, dtype=object)
        out[f"{name}_delta"] = pd.Series([_delta(x, y) for x, y in zip(old, new, strict=True)], index=both.index,
                                         dtype=object)
    return out.reset_index(drop=True)


def _present(value: Any, name: str) -> Any:
    """The value, or what a missing one means: 0 events, no sum."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0 if name == "events" else None
    return int(value) if name == "events" else value


def _delta(old: Any, new: Any) -> Any:
    if old is None and new is None:
        return None
    return (new or 0) - (old or 0)


def changed(diff: pd.DataFrame) -> pd.DataFrame:
    deltas = [c for c in diff.columns if c.endswith("_delta")]
    mask = diff[deltas].map(lambda v: v is not None and v != 0).any(axis=1)
    return diff[mask]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *cells]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _totals_line(diff: pd.DataFrame) -> str:
    a, b = sum(diff["events_a"]), sum(diff["events_b"])
    return f"events: {a} with --config, {b} with --against ({b - a:+d})"


def render_diff_text(diff: pd.DataFrame) -> str:
    """The rows that change, then the totals; a sentence when nothing changes."""
    rows = changed(diff)
    if rows.empty:
        return "no change: both mappings send the same events (and sums) per customer and event type\n" + \
            _totals_line(diff) + "\n"
    return _text_table(list(rows.columns), list(rows.itertuples(index=False, name=None))) + "\n" + \
        _totals_line(diff) + "\n"


def render_diff_html(diff: pd.DataFrame, title: str) -> str:
    rows = changed(diff)
    per_customer = rows.groupby("customer_id")["events_delta"].sum()
    top = per_customer[per_customer != 0].sort_values(key=abs, ascending=False, kind="stable").head(TOP_CHANGES)
    bars = [(str(c), int(v)) for c, v in top.items()]
    return page(title, [
        section("Summary",
                paragraph("a = the mapping of --config, b = the mapping of --against, on the same source data; "
                          "delta = b - a."),
                paragraph(_totals_line(diff)),
                paragraph(f"{len(rows):,} of {len(diff):,} (customer, event type) rows change.",
                          "bad" if len(rows) else "ok")),
        section(f"Change in events per customer (largest {TOP_CHANGES})",
                diverging_bars("change in events per customer", bars) if bars
                else paragraph("No customer's event count changes.", "ok")),
        section("Rows that change", table(list(rows.columns), rows.itertuples(index=False, name=None))
                if not rows.empty else paragraph("None.", "ok")),
    ])
