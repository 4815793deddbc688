"""`hyperline-sync breaker reset`: close a pipeline's circuit breaker now instead of waiting out its
cool-down (after Hyperline is back, or a bad key was fixed). The reset is logged and recorded in the
ledger with the breaker's state before it (`state.operations`)."""

from __future__ import annotations

import argparse

from hyperline_sync.config import load_config
from hyperline_sync.state.ledger import open_ledger
from hyperline_sync.state.operations import reset_breaker


def register(commands: argparse._SubParsersAction) -> None:
    b = commands.add_parser("breaker", help="the circuit breaker of a pipeline")
    actions = b.add_subparsers(dest="action", required=True)
    r = actions.add_parser("reset", help="close the breaker now (recorded in the ledger)")
    r.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    r.add_argument("--pipeline", required=True)
    r.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    pipeline = config.pipeline(args.pipeline)
    failures, open_until, error = reset_breaker(open_ledger(config.state.ledger_conn_id, config.state.dir),
                                                pipeline.name)
    was = f"open until {open_until:%Y-%m-%d %H:%M:%S} UTC" if open_until else "closed"
    print(f"breaker of {pipeline.name} reset (was {was}, {failures} failed batches in a row"
          f"{f', last: {error}' if error else ''})")
    return 0
