"""`hyperline-sync preview`: what a pipeline would send for a range of days, sending nothing.

It runs the very code path of the DAG (`sync_partition`: listing, transform, dedup, ledger, dead
letters) with a sender that writes events to a file instead of Hyperline, against a throwaway ledger
and state directory, so it never touches real progress and needs no Airflow scheduler. It is how
users debug a mapping.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from hyperline_sync.config import load_config
from hyperline_sync.pipeline.partitions import PlanError, day_range, parse_day
from hyperline_sync.pipeline.sync import PartitionFailedError, SyncJob, sync_partition
from hyperline_sync.sources.base import open_source
from hyperline_sync.state.ledger import Ledger
from hyperline_sync.state.report import PartitionOutcome, render_table


@dataclass
class PreviewResult:
    accepted: int
    failed: list = field(default_factory=list)
    requests: int = 0
    retries: int = 0


class FileSender:
    """Accepts every event and writes it as one JSON line."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def send_events(self, events: Iterable[Mapping], *, prevalidated: bool = False) -> PreviewResult:
        count = 0
        for event in events:
            self.out.write(orjson.dumps(event) + b"\n")
            count += 1
        return PreviewResult(accepted=count)


def preview(
    config_path: str | None, pipeline_name: str, start: str, end: str, out: IO[bytes]
) -> list[PartitionOutcome]:
    config = load_config(config_path)
    pipeline = config.pipeline(pipeline_name)
    first, stop = parse_day(start, "--start"), parse_day(end, "--end")
    if stop <= first:
        raise PlanError(f"--end ({stop}) must be after --start ({first}); end is exclusive")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="hyperline-preview-") as tmp:
        job = SyncJob(
            pipeline=pipeline,
            ledger=Ledger.sqlite(Path(tmp) / "ledger.db"),
            source=open_source(pipeline),
            state_dir=Path(tmp) / "state",
            output_dir=Path(tmp) / "reports",
            run_id="preview",
            owner="preview",
            sender=FileSender(out),
        )
        for day in day_range(first, stop):
            try:
                outcomes.append(sync_partition(job, day))
            except PartitionFailedError as exc:
                outcomes.append(PartitionOutcome(day.isoformat(), "failed", error=str(exc)))
    return outcomes


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("preview", help="write the Hyperline events a pipeline would send for a range of days")
    p.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    p.add_argument("--pipeline", required=True)
    p.add_argument("--start", required=True, help="first received day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="day after the last one (exclusive), YYYY-MM-DD")
    p.add_argument("--output", type=Path, help="JSONL file for the events (default: standard output)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output:
        with args.output.open("wb") as out:
            outcomes = preview(args.config, args.pipeline, args.start, args.end, out)
    else:
        outcomes = preview(args.config, args.pipeline, args.start, args.end, sys.stdout.buffer)
    print(render_table(outcomes), file=sys.stderr)
    failed = [o.partition for o in outcomes if o.status != "done"]
    if failed:
        print(f"hyperline-sync: partitions failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
