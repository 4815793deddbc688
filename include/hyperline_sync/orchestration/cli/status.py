"""`hyperline-sync status`: a pipeline's state from the ledger, outside the Airflow grid.

Partitions of the last N days by status (counts, attempts, last error), claims held (and whether
they expired: a dead worker), the circuit breaker, dead letters per day and the operations done by
hand (breaker resets, replays). `--json` prints the same as one JSON document.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from typing import Any

from hyperline_sync.config import load_config
from hyperline_sync.state.deadletter import dead_letters_root, read_dead_letters
from hyperline_sync.state.ledger import open_ledger
from hyperline_sync.state.operations import operations
from hyperline_sync.state.schema import utcnow
from hyperline_sync.state.store import Location, list_files, locations

ERROR_WIDTH = 160


def pipeline_status(config_path: str | None, pipeline_name: str, days: int, now: dt.datetime | None = None) -> dict:
    """The status document of one pipeline over the `days` days up to today (UTC)."""
    config = load_config(config_path)
    pipeline = config.pipeline(pipeline_name)
    ledger = open_ledger(config.state.ledger_conn_id, config.state.dir)
    now = now or utcnow()
    since = (now.date() - dt.timedelta(days=days - 1)).isoformat()
    states = {day: s for day, s in ledger.partitions(pipeline.name).items() if day >= since}
    failures, open_until, error = ledger.breaker(pipeline.name)
    return {
        "pipeline": pipeline.name,
        "since": since,
        "ledger": ledger.describe(),
        "by_status": dict(sorted(Counter(s.status for s in states.values()).items())),
        "partitions": [{"partition": day, "status": s.status, "attempts": s.attempts, **s.counts.as_dict(),
                        "objects": f"{s.objects_done}/{s.objects_total}", "run_id": s.run_id,
                        "finished_at": s.finished_at, "last_error": s.last_error}
                       for day, s in sorted(states.items())],
        "claims": [{"partition": s.partition, "holder": s.claimed_by, "expires_at": s.claim_expires_at,
                    "expired": s.claim_expires_at is not None and s.claim_expires_at < now}
                   for s in ledger.partitions(pipeline.name).values() if s.claimed_by],
        "breaker": {"state": "open" if open_until is not None and open_until > now else "closed",
                    "consecutive_failures": failures, "open_until": open_until, "last_error": error},
        "dead_letters": _dead_letters(dead_letters_root(locations(config.state)[1], pipeline.name), since),
        "operations": [{"at": o.at, "action": o.action, "partition": o.partition, "actor": o.actor,
                        **({"counts": o.counts.as_dict()} if o.action == "replay" else {}), "detail": o.detail}
                       for o in operations(ledger, pipeline.name, now - dt.timedelta(days=days))],
    }


def _dead_letters(root: Location, since: str) -> dict[str, dict[str, int]]:
    """day -> reason -> rows, for the days since `since` that have dead letters."""
    per_day: dict[str, Counter] = {}
    for entry in list_files(root, recursive=True):
        day, _, name = entry.name.partition("/")
        if day >= since and name.endswith(".jsonl.gz") and "/" not in name:
            per_day.setdefault(day, Counter()).update(row["reason"] for row in read_dead_letters(root / entry.name))
    return {day: dict(sorted(reasons.items())) for day, reasons in sorted(per_day.items()) if reasons}


def render(status: dict) -> str:
    lines = [f"pipeline {status['pipeline']} since {status['since']} (ledger {status['ledger']})"]
    lines.append("partitions: " + (", ".join(f"{n} {s}" for s, n in status["by_status"].items()) or "none"))
    for p in status["partitions"]:
        error = (p["last_error"] or "")[:ERROR_WIDTH]
        lines.append(f"  {p['partition']}  {p['status']:<8} tries {p['attempts']:<3} read {p['read']:>9} "
                     f"sent {p['sent']:>9} rejected {p['rejected']:>7} objects {p['objects']:>7}"
                     + (f"  last error: {error}" if error else ""))
    lines.append("claims held: " + ("none" if not status["claims"] else ""))
    for c in status["claims"]:
        lines.append(f"  {c['partition']}  by {c['holder']}  until {_when(c['expires_at'])}"
                     + ("  (EXPIRED: the worker died; the next run takes it over)" if c["expired"] else ""))
    b = status["breaker"]
    lines.append(f"breaker: {b['state']}" + (f" until {_when(b['open_until'])}" if b["state"] == "open" else "")
                 + f", {b['consecutive_failures']} failed batches in a row"
                 + (f", last error: {b['last_error'][:ERROR_WIDTH]}" if b["last_error"] else ""))
    lines.append("dead letters: " + ("none" if not status["dead_letters"] else ""))
    for day, reasons in status["dead_letters"].items():
        lines.append(f"  {day}  {sum(reasons.values()):>7}  " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
    lines.append("operations: " + ("none" if not status["operations"] else ""))
    for o in status["operations"]:
        counts = o.get("counts")
        lines.append(f"  {_when(o['at'])}  {o['action']:<13} {o['partition'] or '':<10} by {o['actor']}"
                     + (f"  {counts}" if counts else ""))
    return "\n".join(lines)


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def register(commands: argparse._SubParsersAction) -> None:
    s = commands.add_parser("status", help="a pipeline's partitions, claims, breaker and dead letters")
    s.add_argument("--config", help="pipelines YAML (default: $HYPERLINE_SYNC_CONFIG)")
    s.add_argument("--pipeline", required=True)
    s.add_argument("--days", type=int, default=7, help="how many days back, today included (default 7)")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise ValueError("--days must be at least 1")
    status = pipeline_status(args.config, args.pipeline, args.days)
    print(json.dumps(status, default=_json_default, indent=2) if args.json else render(status))
    return 0
