"""`hyperline-sync validate`: check a config file and list every problem (for CI)."""

from __future__ import annotations

import argparse

from hyperline_sync.config import load_config


def validate(config_path: str | None) -> None:
    """Raise `ConfigError` listing every problem of the file; print its pipelines when valid."""
    config = load_config(config_path)
    print(f"{config.path}: valid, pipelines: {', '.join(p.name for p in config.pipelines)}")


def register(commands: argparse._SubParsersAction) -> None:
    v = commands.add_parser("validate", help="check a config file; exit 0 when valid, else list every problem")
    v.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    v.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    validate(args.config)
    return 0
