"""A run's (or a preview's) report as one self-contained HTML page: totals and the counts invariant,
the read events' shares, events per day and event type, the top customers, rejects by reason, the
days, and usage per customer and event type. Built from the run report (`state.report`) and the
usage table (`usage`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pandas as pd

from hyperline_sync.insight.html_page import page, paragraph, section, table
from hyperline_sync.insight.svg import PALETTE, horizontal_bars, share_bar, stacked_columns
from hyperline_sync.insight.usage import usage_totals
from hyperline_sync.state.ledger import COUNT_FIELDS

__all__ = ["render_run_report"]

TOP_CUSTOMERS = 20
USAGE_ROWS = 500  # rows of the per-customer table; usage.csv has them all
_OTHER = "(other)"


def render_run_report(report: Mapping, usage: pd.DataFrame) -> str:
    totals = report["totals"]
    title = f"{report['pipeline']}: run {report['run_id']}"
    return page(title, [
        _summary(report),
        section("Where the read events went",
                share_bar("shares of the read events", [(n, totals[n]) for n in COUNT_FIELDS if n != "read"])),
        section("Events per day and event type", _per_day(usage)),
        section(f"Top {TOP_CUSTOMERS} customers by events", _top_customers(usage)),
        section("Rejected events by reason", _rejects(report)),
        section("Days", _days(report)),
        section("Usage per customer and event type", _usage_table(usage)),
    ])


def _summary(report: Mapping) -> str:
    totals = report["totals"]
    parts = " + ".join(f"{totals[n]:,} {n}" for n in COUNT_FIELDS[1:])
    balanced = report["balanced"]
    invariant = (f"read = sent + rejected + skipped + duplicates: {totals['read']:,} read = {parts}"
                 + (" (adds up)" if balanced else " (DOES NOT ADD UP: a bug, see report.json)"))
    status = report["status"] + (" (dry run: nothing was sent; 'sent' counts what would be)"
                                 if report.get("dry_run") else "")
    params = ", ".join(f"{k}={v}" for k, v in (report.get("params") or {}).items() if v not in (None, False))
    return section("Totals",
                   paragraph(f"Status: {status}", "ok" if report["status"] == "success" else "bad"),
                   paragraph(f"Generated {report.get('generated_at', '')}; params: {params or 'none'}", "note"),
                   table(COUNT_FIELDS, [[totals[n] for n in COUNT_FIELDS]]),
                   paragraph(invariant, "ok" if balanced else "bad"))


def _per_day(usage: pd.DataFrame) -> str:
    if usage.empty:
        return paragraph("No events were sent.", "note")
    by_type = usage.groupby("event_type")["events"].sum().sort_values(ascending=False)
    keep = list(by_type.index[:len(PALETTE) - 1]) if len(by_type) > len(PALETTE) else list(by_type.index)
    kinds = usage["event_type"].where(usage["event_type"].isin(keep), _OTHER)
    pivot = usage.assign(kind=kinds).pivot_table(index="day", columns="kind", values="events", aggfunc="sum",
                                                 fill_value=0)
    order = [k for k in [*keep, _OTHER] if k in pivot.columns]
    series = {str(k): [int(v) for v in pivot[k]] for k in order}
    return stacked_columns("events per day and event type", [str(d) for d in pivot.index], series)


def _top_customers(usage: pd.DataFrame) -> str:
    if usage.empty:
        return paragraph("No events were sent.", "note")
    top = usage.groupby("customer_id")["events"].sum().sort_values(ascending=False, kind="stable")
    return horizontal_bars("top customers by events",
                           [(str(c), int(n)) for c, n in top.head(TOP_CUSTOMERS).items()])


def _rejects(report: Mapping) -> str:
    reasons: Counter[str] = Counter()
    for part in report["partitions"]:
        reasons.update(part.get("rejects") or {})
    if not reasons:
        return paragraph("No event was rejected.", "ok")
    ranked = reasons.most_common()
    return horizontal_bars("rejected events by reason", ranked) + table(["reason", "events"], ranked)


def _days(report: Mapping) -> str:
    rows = [[p["partition"], p["status"], *(p["counts"][n] for n in COUNT_FIELDS), p.get("error") or ""]
            for p in report["partitions"]]
    return table(["day", "status", *COUNT_FIELDS, "error"], rows)


def _usage_table(usage: pd.DataFrame) -> str:
    if usage.empty:
        return paragraph("No events were sent.", "note")
    totals = usage_totals(usage).sort_values("events", ascending=False, kind="stable")
    note = paragraph(f"The {USAGE_ROWS} largest of {len(totals):,} rows; usage.csv has them all, per day.", "note") \
        if len(totals) > USAGE_ROWS else ""
    rows = totals.head(USAGE_ROWS).itertuples(index=False, name=None)
    return note + table(list(totals.columns), rows)
