"""`hyperline-sync prune`: remove the dedup id files (and, with --dead-letters, the dead letters) of
old days. It refuses a cutoff a sync may still read (see `state.retention`)."""

from __future__ import annotations

import argparse

from hyperline_sync.config import load_config
from hyperline_sync.pipeline.partitions import parse_day
from hyperline_sync.state.ledger import open_ledger
from hyperline_sync.state.retention import StateFolder, prunable_folders, remove


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


def register(commands: argparse._SubParsersAction) -> None:
    r = commands.add_parser("prune", help="remove the dedup id files of days no sync reads any more")
    r.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    r.add_argument("--pipeline", required=True)
    r.add_argument("--before", required=True, help="remove the state of days before this one, YYYY-MM-DD")
    r.add_argument("--dead-letters", action="store_true", help="also remove those days' dead letters")
    r.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    r.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prune(args.config, args.pipeline, args.before, dead_letters=args.dead_letters, dry_run=args.dry_run)
    return 0
