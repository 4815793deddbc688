"""One reconcile of a pipeline over a range of received days, as the CLI and the reconcile DAG run it.

Derives the expected events of every day of the range (`pipeline.expected`), compares them with
what Hyperline holds (`pipeline.reconcile`), repairs if asked, and writes `reconcile.json` (by
default in the run's folder under `state.output_dir`). Whatever stops it (a source that cannot be
read, Hyperline unreachable past its retries, a listing whose filter was ignored) leaves a report
with `complete: false`, the days it checked and the error, redacted. With `counts`, only counts are
compared (`pipeline.reconcile_counts`), over the range widened by `margin_days`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import orjson

from hyperline_sync.config import Config, PipelineConfig
from hyperline_sync.pipeline.expected import expected_by_day
from hyperline_sync.pipeline.partitions import PlanError, day_range, parse_day
from hyperline_sync.pipeline.ports import Sender
from hyperline_sync.pipeline.reconcile import HeldEvents, Reconciler
from hyperline_sync.pipeline.reconcile_counts import ExpectedCounts, compare_counts, widened
from hyperline_sync.pipeline.reconcile_report import ReconcileReport
from hyperline_sync.pipeline.sent_ids import SentIds
from hyperline_sync.redact import redact_secrets
from hyperline_sync.sources.base import PartitionSource, open_source
from hyperline_sync.state import store
from hyperline_sync.state.ledger import Ledger, open_ledger
from hyperline_sync.state.report import run_dir
from hyperline_sync.state.store import Location, locations

log = logging.getLogger(__name__)

REPORT_NAME = "reconcile.json"


@dataclass
class ReconcileRequest:
    config: Config
    pipeline: PipelineConfig
    start: str | dt.date
    end: str | dt.date
    run_id: str
    repair: bool = False
    output: Path | None = None
    secrets: tuple[str, ...] = ()
    counts: bool = False
    margin_days: int | None = None  # counts: received days either side (None: the pipeline's dedup_window_days)


def hook_access(pipeline: PipelineConfig) -> tuple[HeldEvents, Sender]:
    """The pipeline's Hyperline connection as what the reconcile reads and what it resends with (one hook,
    so that both share a session and a request budget)."""
    from hyperline_sync.orchestration.sender import HookSender, make_sender

    sender = make_sender(pipeline)
    assert isinstance(sender, HookSender)
    return sender.hook, sender


def days_of(start: str | dt.date, end: str | dt.date) -> list[dt.date]:
    first, stop = parse_day(start, "start"), parse_day(end, "end")
    if stop <= first:
        raise PlanError(f"end ({stop}) must be after start ({first}); end is exclusive")
    return day_range(first, stop)


def reconcile(request: ReconcileRequest, held: HeldEvents | None = None,
              sender: Sender | None = None) -> ReconcileReport:
    """Run the reconcile; the report says whether it completed (`complete`) and whether Hyperline is exact."""
    days = days_of(request.start, request.end)
    pipeline, config = request.pipeline, request.config
    report = ReconcileReport(pipeline=pipeline.name, start=days[0].isoformat(),
                             end=(days[-1] + dt.timedelta(days=1)).isoformat(), repair=request.repair,
                             counts_only=request.counts)
    try:
        if request.counts and request.repair:
            raise ValueError("a counts reconcile cannot repair: run the id reconcile with --repair")
        if held is None or (sender is None and request.repair):
            held, sender = hook_access(pipeline)
        state_dir = locations(config.state)[0]
        derivation = _Derivation(open_ledger(config.state.ledger_conn_id, config.state.dir, request.secrets),
                                 open_source(pipeline), state_dir, SentIds(state_dir, pipeline.name))
        if request.counts:
            _by_counts(request, held, derivation, days, report)
        else:
            _by_ids(request, held, sender, derivation, days, report)
        report.complete = True
    except Exception as exc:
        report.error = redact_secrets(f"{type(exc).__name__}: {exc}", request.secrets)
        log.error("reconcile of %s stopped after the days %s: %s", pipeline.name,
                  ", ".join(report.checked_days) or "(none)", report.error)
    write(report, request)
    return report


@dataclass
class _Derivation:
    ledger: Ledger
    source: PartitionSource
    state_dir: Location
    sent_ids: SentIds


def _by_ids(request: ReconcileRequest, held: HeldEvents, sender: Sender | None, derivation: _Derivation,
            days: list[dt.date], report: ReconcileReport) -> None:
    pipeline = request.pipeline
    expected = dict(expected_by_day(pipeline, derivation.ledger, derivation.source, derivation.state_dir, days))
    event_types = sorted({e["event_type"] for events in expected.values() for e in events})
    checker = Reconciler(held, derivation.sent_ids, sender, report)
    for day, events in expected.items():
        checker.check_day(day, events, event_types)
        log.info("reconcile %s %s: %s", pipeline.name, day, report.days.get(day.isoformat(), {}))
    checker.scan_unexpected(days[0], days[-1] + dt.timedelta(days=1), event_types)
    if request.repair:
        checker.repair()


def _by_counts(request: ReconcileRequest, held: HeldEvents, derivation: _Derivation, days: list[dt.date],
               report: ReconcileReport) -> None:
    pipeline = request.pipeline
    margin = pipeline.tuning.dedup_window_days if request.margin_days is None else request.margin_days
    counted = ExpectedCounts(days, derivation.sent_ids)
    for day, events in expected_by_day(pipeline, derivation.ledger, derivation.source, derivation.state_dir,
                                       widened(days, margin, dt.datetime.now(dt.UTC).date())):
        counted.add_day(day, events)
        report.checked += len(events)
        report.derived_days.append(day.isoformat())
    compare_counts(held, counted, days, report)


def default_output(config: Config, pipeline: str, run_id: str) -> Location:
    return run_dir(locations(config.state)[1], pipeline, run_id) / REPORT_NAME


def write(report: ReconcileReport, request: ReconcileRequest) -> Location:
    path = request.output or default_output(request.config, request.pipeline.name, request.run_id)
    text = redact_secrets(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode(), request.secrets)
    store.write_bytes(path, text.encode())
    return path


def summary(report: ReconcileReport) -> str:
    """One paragraph for a log or a terminal."""
    if report.counts_only:
        return _counts_summary(report)
    head = (f"reconcile of {report.pipeline} [{report.start}, {report.end}): checked {report.checked} events, "
            f"{len(report.missing)} missing, {len(report.different)} different, {len(report.unexpected)} unexpected")
    if report.repair:
        head += f"; repaired {report.repaired}, still wrong {len(report.still_wrong)}"
    if not report.complete:
        head += f"; NOT COMPLETE (days checked: {', '.join(report.checked_days) or 'none'}): {report.error}"
    return head


def _counts_summary(report: ReconcileReport) -> str:
    lines = [f"reconcile (counts) of {report.pipeline} [{report.start}, {report.end}) by event timestamp, "
             f"from the received days {', '.join(report.derived_days) or 'none'} ({report.requests} requests):"]
    for day, types in sorted(report.counts.items()):
        for event_type, s in sorted(types.items()):
            flag = "" if s["difference"] == 0 else "  <-- differs"
            lines.append(f"  {day} {event_type}: expected {s['expected']}, found {s['found']}, "
                         f"difference {s['difference']:+d}{flag}")
    if not report.complete:
        lines.append(f"NOT COMPLETE (days counted: {', '.join(report.checked_days) or 'none'}): {report.error}")
    return "\n".join(lines)
