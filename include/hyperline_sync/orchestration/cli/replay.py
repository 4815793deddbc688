"""`hyperline-sync replay-dead-letters`: after a fix, send a day's dead-lettered lines again, read
from the source by unit and line number (`pipeline.replay`), with the sync's dedup, breaker and
claims; recorded in the ledger with its own counts. `--dry-run` only counts what would be sent."""

from __future__ import annotations

import argparse
import datetime as dt

from hyperline_sync.config import load_config
from hyperline_sync.pipeline.breaker import CircuitBreaker
from hyperline_sync.pipeline.partitions import parse_day
from hyperline_sync.pipeline.ports import Sender
from hyperline_sync.pipeline.replay import ReplayResult, replay_dead_letters
from hyperline_sync.pipeline.sync import SyncJob
from hyperline_sync.sources.base import open_source
from hyperline_sync.state.ledger import attempt_owner, open_ledger
from hyperline_sync.state.store import locations


def replay(config_path: str | None, pipeline_name: str, day: str, *, reason: str | None = None,
           dry_run: bool = False, sender: Sender | None = None) -> ReplayResult:
    """Replay one day; `sender` defaults to the pipeline's Hyperline connection."""
    config = load_config(config_path)
    pipeline = config.pipeline(pipeline_name)
    ledger = open_ledger(config.state.ledger_conn_id, config.state.dir)
    run_id = f"replay__{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S}"
    if sender is None and not dry_run:
        from hyperline_sync.orchestration.sender import make_sender

        sender = make_sender(pipeline)
    state_dir, output_dir = locations(config.state)
    job = SyncJob(pipeline=pipeline, ledger=ledger, source=open_source(pipeline), state_dir=state_dir,
                  output_dir=output_dir, run_id=run_id, owner=attempt_owner(run_id), sender=sender,
                  dry_run=dry_run, breaker=CircuitBreaker(
                      ledger, pipeline.name, pipeline.tuning.breaker_failures,
                      dt.timedelta(minutes=pipeline.tuning.breaker_cooldown_minutes)))
    return replay_dead_letters(job, parse_day(day, "--day"), reason)


def register(commands: argparse._SubParsersAction) -> None:
    r = commands.add_parser("replay-dead-letters", help="send a day's dead-lettered lines again, read from the source")
    r.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    r.add_argument("--pipeline", required=True)
    r.add_argument("--day", required=True, help="the received day (partition), YYYY-MM-DD")
    r.add_argument("--reason", help="only the dead letters of this reason (e.g. missing_customer_id)")
    r.add_argument("--dry-run", action="store_true", help="count what would be sent; send and change nothing")
    r.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = replay(args.config, args.pipeline, args.day, reason=args.reason, dry_run=args.dry_run)
    c = result.counts
    print(f"{'would replay' if args.dry_run else 'replayed'} {result.letters} dead letters of {args.day}: "
          f"read {c.read}, sent {c.sent}, rejected again {c.rejected}, skipped {c.skipped}, "
          f"duplicates {c.duplicates}, not replayable {result.missing}")
    for path in result.dead_letters:
        print(f"dead letters left: {path}")
    if not result.balanced:
        print("counts do not add up: letters != read + not replayable, or read != sent + rejected + skipped + "
              "duplicates")
        return 1
    return 0
