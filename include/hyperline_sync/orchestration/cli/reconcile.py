"""`hyperline-sync reconcile`: prove that Hyperline holds what the pipeline sends for a range of
received days, and optionally repair it (see `pipeline.reconcile`); `--counts` compares only counts
per event type and UTC day of event timestamp (see `pipeline.reconcile_counts`).

Exit status: 0 Hyperline holds exactly what the pipeline sends (unexpected events are reported, not
judged; --counts: every count equal); 1 something is missing or different (--counts: a count
differs; --repair: still wrong after the repair); 2 a config, connection or source error, or a
reconcile that could not finish (the report says which days it checked), such as a listing whose
filter Hyperline ignored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from hyperline_sync.config import load_config
from hyperline_sync.orchestration.reconcile_run import ReconcileRequest, default_output, reconcile, summary


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("reconcile", help="compare what Hyperline holds with what a pipeline sends; --repair")
    p.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    p.add_argument("--pipeline", required=True)
    p.add_argument("--start", required=True, help="first received day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="day after the last one (exclusive), YYYY-MM-DD")
    p.add_argument("--repair", action="store_true", help="resend the missing and different events")
    p.add_argument("--counts", action="store_true",
                   help="compare only counts per event type and UTC day of event timestamp (no id lookups)")
    p.add_argument("--margin-days", type=int, default=None,
                   help="--counts: received days either side of the range whose events can carry its "
                        "timestamps (default: the pipeline's tuning.dedup_window_days)")
    p.add_argument("--output", type=Path, help="report JSON (default: reconcile.json in the run's folder "
                                               "under state.output_dir)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    pipeline = config.pipeline(args.pipeline)
    run_id = "reconcile__" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    request = ReconcileRequest(config, pipeline, args.start, args.end, run_id, repair=args.repair, output=args.output,
                               counts=args.counts, margin_days=args.margin_days)
    report = reconcile(request)
    print(summary(report), file=sys.stderr)
    print(f"report: {args.output or default_output(config, pipeline.name, run_id)}", file=sys.stderr)
    if not report.complete:
        return 2
    return 0 if report.exact else 1
