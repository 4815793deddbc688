"""The `hyperline-sync` command. `preview` shows what a pipeline would send for a range of days;
`prune` removes the dedup id files (and, with --dead-letters, the dead letters) of old days;
`validate` checks a config file and lists every problem (for CI).

Preview runs the very code path of the DAG (`sync_partition`: listing, transform, dedup, ledger,
dead letters) with a sender that writes events to a file instead of Hyperline, against a throwaway
ledger and state directory, so it never touches real progress and needs no Airflow scheduler. It is
how users debug a mapping. Prune refuses a cutoff a sync may still read (see `retention`).
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

from hyperline_sync.config import ConfigError, load_config
from hyperline_sync.pipeline.partitions import PlanError, day_range, parse_day
from hyperline_sync.pipeline.sync import PartitionFailedError, SyncJob, sync_partition
from hyperline_sync.sources.base import open_source
from hyperline_sync.state.ledger import Ledger, open_ledger
from hyperline_sync.state.report import PartitionOutcome, render_table
from hyperline_sync.state.retention import PruneRefusedError, StateFolder, prunable_folders, remove


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


def prune(
    config_path: str | None, pipeline_name: str, before: str, *, dead_letters: bool, dry_run: bool
) -> list[StateFolder]:
    """Remove (with `dry_run`: only list) the pipeline's state folders of the days before `before`."""
    config = load_config(config_path)
    pipeline = config.pipeline(pipeline_name)
    ledger = open_ledger(config.state.ledger_conn_id, config.state.dir)
    folders = prunable_folders(config, pipeline, ledger, parse_day(before, "--before"), dead_letters=dead_letters)
    for folder in folders:
        print(f"{folder.day}  {folder.kind:<12} {folder.files:>6} files {folder.bytes / 1e6:>10.1f} MB  {folder.path}")
    total = sum(folder.bytes for folder in folders) / 1e6
    verb = "would remove" if dry_run else "removed"
    if not dry_run:
        remove(folders)
    print(f"{verb} {len(folders)} day folders, {total:.1f} MB, of pipeline {pipeline.name} before {before}")
    return folders


def validate(config_path: str | None) -> None:
    """Raise `ConfigError` listing every problem of the file; print its pipelines when valid."""
    config = load_config(config_path)
    print(f"{config.path}: valid, pipelines: {', '.join(p.name for p in config.pipelines)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hyperline-sync", description="Segment -> Hyperline sync tools")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("preview", help="write the Hyperline events a pipeline would send for a range of days")
    p.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    p.add_argument("--pipeline", required=True)
    p.add_argument("--start", required=True, help="first received day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="day after the last one (exclusive), YYYY-MM-DD")
    p.add_argument("--output", type=Path, help="JSONL file for the events (default: standard output)")
    r = commands.add_parser("prune", help="remove the dedup id files of days no sync reads any more")
    r.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    r.add_argument("--pipeline", required=True)
    r.add_argument("--before", required=True, help="remove the state of days before this one, YYYY-MM-DD")
    r.add_argument("--dead-letters", action="store_true", help="also remove those days' dead letters")
    r.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    v = commands.add_parser("validate", help="check a config file; exit 0 when valid, else list every problem")
    v.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    args = parser.parse_args(argv)

    try:
        if args.command == "validate":
            validate(args.config)
            return 0
        if args.command == "prune":
            prune(args.config, args.pipeline, args.before, dead_letters=args.dead_letters, dry_run=args.dry_run)
            return 0
        if args.output:
            with args.output.open("wb") as out:
                outcomes = preview(args.config, args.pipeline, args.start, args.end, out)
        else:
            outcomes = preview(args.config, args.pipeline, args.start, args.end, sys.stdout.buffer)
    except (ConfigError, PlanError, PruneRefusedError) as exc:
        print(f"hyperline-sync: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # connection and storage errors: say what, not a traceback
        print(f"hyperline-sync: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(render_table(outcomes), file=sys.stderr)
    failed = [o.partition for o in outcomes if o.status != "done"]
    if failed:
        print(f"hyperline-sync: partitions failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
