"""`hyperline-sync preview`: what a pipeline would send for a range of days, sending nothing.

It runs the very code path of the DAG (`trial.trial_run`) with a sender that writes events to a file
instead of Hyperline, against throwaway state, so it never touches real progress and needs no
Airflow scheduler. It is how users debug a mapping. `--summary` writes the usage table a run writes
(usage.csv), `--html` the run's HTML report, both of what was written.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

import orjson

from hyperline_sync.config import load_config
from hyperline_sync.insight.html_report import render_run_report
from hyperline_sync.insight.usage import write_usage
from hyperline_sync.orchestration.cli.trial import (
    MAX_DAYS,
    PreviewResult,
    SourceUnreadableError,
    TrialRun,
    day_span,
    trial_run,
)
from hyperline_sync.state.report import build_report, render_table

__all__ = ["FileSender", "PreviewResult", "preview"]


class FileSender:
    """Accepts every event and writes it as one JSON line; the events of one call stay together (the
    sync sends from two threads at once)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self._lock = threading.Lock()

    def send_events(self, events: Iterable[Mapping], *, prevalidated: bool = False) -> PreviewResult:
        lines = [orjson.dumps(event) + b"\n" for event in events]
        with self._lock:
            self.out.writelines(lines)
        return PreviewResult(accepted=len(lines))


def preview(config_path: str | None, pipeline_name: str, start: str, end: str, out: IO[bytes]) -> TrialRun:
    pipeline = load_config(config_path).pipeline(pipeline_name)
    return trial_run(pipeline, day_span(start, end), FileSender(out))


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("preview", help="write the Hyperline events a pipeline would send for a range of days")
    p.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    p.add_argument("--pipeline", required=True)
    p.add_argument("--start", required=True, help="first received day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help=f"day after the last one (exclusive), YYYY-MM-DD; at most {MAX_DAYS} "
                                                "days after --start")
    p.add_argument("--output", type=Path, help="JSONL file for the events (default: standard output)")
    p.add_argument("--summary", type=Path, help="CSV of the events per day, customer and event type (usage.csv)")
    p.add_argument("--html", type=Path, help="self-contained HTML report of the preview")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output:
        with args.output.open("wb") as out:
            trial = preview(args.config, args.pipeline, args.start, args.end, out)
    else:
        trial = preview(args.config, args.pipeline, args.start, args.end, sys.stdout.buffer)
    print(render_table(trial.outcomes), file=sys.stderr)
    usage = trial.usage.frame()
    if args.summary:
        write_usage(args.summary, usage)
    if args.html:
        report = build_report(pipeline=args.pipeline, run_id="preview", dry_run=True,
                              params={"start": args.start, "end": args.end}, outcomes=trial.outcomes)
        args.html.write_text(render_run_report(report, usage), encoding="utf-8")
    unreadable = trial.unreadable()
    if unreadable:
        raise SourceUnreadableError(unreadable)
    if trial.failed:
        print(f"hyperline-sync: partitions failed: {', '.join(trial.failed)}", file=sys.stderr)
    return 1 if trial.failed else 0
