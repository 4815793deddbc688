"""The `hyperline-sync` command: one module per subcommand, each with `register(commands)` adding its
parser and a `run(args) -> exit status`.

Exit status: 0 done, 1 something failed (a partition, a connection, storage), 2 the command cannot
run as asked (a config error, a bad day range, an unreadable source, a refused prune) — with the reason on stderr.
"""

from __future__ import annotations

import argparse
import sys

from hyperline_sync.config import ConfigError
from hyperline_sync.orchestration.cli import breaker, diff, preview, prune, reconcile, replay, status, validate
from hyperline_sync.orchestration.cli.trial import SourceUnreadableError
from hyperline_sync.pipeline.partitions import PlanError
from hyperline_sync.state.retention import PruneRefusedError

COMMANDS = (preview, diff, reconcile, prune, validate, status, breaker, replay)
USAGE_ERRORS = (ConfigError, PlanError, PruneRefusedError, SourceUnreadableError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hyperline-sync", description="Segment -> Hyperline sync tools")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except USAGE_ERRORS as exc:
        print(f"hyperline-sync: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # connection and storage errors: say what, not a traceback
        print(f"hyperline-sync: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
