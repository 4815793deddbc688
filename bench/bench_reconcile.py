"""Benchmark of `hyperline-sync reconcile`: one received day synced for real into the emulator, then
reconciled by counts and by ids, against the emulator on 127.0.0.1.

    .venv/bin/python bench/bench_reconcile.py                  # 1M events, counts then ids
    .venv/bin/python bench/bench_reconcile.py --quick          # 100k events
    .venv/bin/python bench/bench_reconcile.py --modes counts   # counts only

The day is a generated archive (bench/_common.py's, as the other scripts), synced by `sync_partition`
with the real hook into an emulator process that stores what it receives (`bench_pipeline.sync_days`).
The reconcile runs in this process with the pipeline's real hook, its rate limiter set to
`--max-rps` (default 100 per second, Hyperline's 1,000 requests per 10 s per key), and the emulator
enforces that budget (`rate_limit`: a request over it is answered 429). Printed per mode: wall time,
requests, the most requests in any 10 s window, 429s received, and the verdict (it must be exact).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import DAY, Meter, admin, archive_for, connection_env, machine, start_emulator
from _common import write_config as write_pipeline_config
from bench_pipeline import PIPELINE, sync_days

BUDGET, WINDOW = 1000, 10.0  # Hyperline: 1,000 requests per 10 s per key


class Timed:
    """The hook as the reconcile reads it, noting when each request is made (for the 10 s windows)."""

    def __init__(self, held: Any) -> None:
        self.held, self.times = held, []

    def list_events(self, event_type: str, **filters: Any) -> Any:
        self.times.append(time.monotonic())
        return self.held.list_events(event_type, **filters)

    def delete_events(self, record_ids: list[str]) -> int:
        self.times.append(time.monotonic())
        return self.held.delete_events(record_ids)


def busiest_window(times: list[float]) -> int:
    """The most requests made in any WINDOW seconds."""
    return max((bisect.bisect_right(times, t + WINDOW) - i for i, t in enumerate(times)), default=0)


def reconcile_once(config_path: Path, counts: bool, out: Path) -> dict[str, Any]:
    from hyperline_sync.config import load_config
    from hyperline_sync.orchestration.reconcile_run import ReconcileRequest, hook_access, reconcile

    config = load_config(config_path)
    pipeline = config.pipeline(PIPELINE)
    hook, _ = hook_access(pipeline)
    timed = Timed(hook)
    request = ReconcileRequest(config, pipeline, DAY, DAY + timedelta(days=1), "bench", counts=counts, output=out)
    meter = Meter()
    report = reconcile(request, held=timed)
    meter.stop()
    if not report.complete or not report.exact:
        raise RuntimeError(f"the reconcile of a clean sync is not exact: {report.error}")
    limiter = hook.client.rate_limiter
    return {"mode": "counts" if counts else "ids", "seconds": round(meter.seconds, 1), "requests": report.requests,
            "busiest_10s": busiest_window(timed.times), "checked": report.checked,
            "limiter_interval_s": getattr(limiter, "interval", None), "others_cores": round(meter.others_cores, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100k events instead of 1M")
    parser.add_argument("--lines", type=int, help="archive lines (default 1M, --quick 100k)")
    parser.add_argument("--modes", nargs="+", choices=["counts", "ids"], default=["counts", "ids"])
    parser.add_argument("--max-rps", type=float, default=BUDGET / WINDOW)
    args = parser.parse_args()
    lines = args.lines or (100_000 if args.quick else 1_000_000)
    archive = archive_for(lines)
    proc, url = start_emulator()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
            env = connection_env(url)
            conn = json.loads(env["AIRFLOW_CONN_HYPERLINE_DEFAULT"])
            conn["extra"] = {"max_requests_per_second": args.max_rps}
            os.environ["AIRFLOW_CONN_HYPERLINE_DEFAULT"] = json.dumps(conn)
            config_path = write_pipeline_config(Path(tmp) / "pipelines.yaml", archive, Path(tmp) / "state")
            started = time.perf_counter()
            synced = sync_days(config_path, [DAY], "bench_sync")
            print(f"synced {synced['sent']} events in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            admin(url, "/_emulator/faults", {"rate_limit": BUDGET, "rate_limit_window": WINDOW})
            results = []
            for mode in args.modes:
                before = admin(url, "/_emulator/stats")
                result = reconcile_once(config_path, mode == "counts", Path(tmp) / f"{mode}.json")
                after = admin(url, "/_emulator/stats")
                result["http_429"] = _status(after, 429) - _status(before, 429)
                result["events_held"] = synced["sent"]
                results.append(result)
                print(json.dumps(result), file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"machine: {json.dumps(machine())}")
    print(f"| mode | events | wall s | requests | busiest 10 s (budget {BUDGET}) | 429s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['events_held']:,} | {r['seconds']} | {r['requests']:,} | {r['busiest_10s']} "
              f"| {r['http_429']} |")
    return 0


def _status(stats: dict[str, Any], code: int) -> int:
    statuses = stats.get("statuses", {})
    return int(statuses.get(str(code), statuses.get(code, 0)))


if __name__ == "__main__":
    sys.exit(main())
