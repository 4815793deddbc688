"""Benchmark ``HyperlineHook.send_events`` against the local emulator run in a separate process.

    .venv/bin/python bench/bench_hook.py [--events 1000000] [--rate-429 0.1] [--retry-after 0.05] [--runs 1]

Prints events/s with faults off and with a share of 429 answers, then where the time goes: the hook's
CPU (this process), the emulator's CPU (its process, via psutil) and the hook's validation +
serialisation alone. The side using more CPU per event is the bottleneck. The emulator runs
apart so the two do not share a GIL; it keeps the events it receives, like Hyperline.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import psutil
from _common import EMULATOR_KEY as API_KEY  # shared with the other benchmarks
from _common import admin, start_emulator

CONN_ID = "hyperline_bench"


def make_events(count: int, run: str) -> Iterator[dict[str, Any]]:
    """Small, realistic events, created lazily (the hook must not hold them all)."""
    customers = [f"cus_{i:04d}" for i in range(1000)]
    stamps = [
        f"2026-11-{1 + m % 28:02d}T{m // 60 % 24:02d}:{m % 60:02d}:{m % 59:02d}.{m % 997:03d}Z" for m in range(4001)
    ]
    for i in range(count):
        yield {
            "customer_id": customers[i % 1000],
            "event_type": "api_call",
            "timestamp": stamps[i % 4001],
            "record": {"id": f"{run}-{i:08d}", "duration_ms": i % 977, "ok": i % 13 != 0, "region": "eu-west-1"},
        }


def run(url: str, emulator: psutil.Process, count: int, faults: dict[str, Any], label: str) -> dict[str, float]:
    from hyperline_provider.hooks.hyperline import HyperlineHook

    admin(url, "/_emulator/reset", {})
    admin(url, "/_emulator/faults", faults)
    hook = HyperlineHook(CONN_ID, backoff_base=0.01, backoff_max=0.1)
    emulator_cpu = sum(emulator.cpu_times()[:2])
    hook_cpu, started = time.process_time(), time.perf_counter()
    result = hook.send_events(make_events(count, label))
    wall = time.perf_counter() - started
    hook_cpu = time.process_time() - hook_cpu
    emulator_cpu = sum(emulator.cpu_times()[:2]) - emulator_cpu
    hook.close()
    stats = admin(url, "/_emulator/stats")
    assert result.accepted == count and not result.failed, (result.accepted, len(result.failed))
    assert stats["events"] == count, stats
    print(
        f"{label:>10}: {count / wall:>9,.0f} events/s  wall {wall:5.2f}s  hook CPU {hook_cpu:5.2f}s  "
        f"emulator CPU {emulator_cpu:5.2f}s  requests {result.requests} (retries {result.retries}, "
        f"statuses {stats['statuses']})"
    )
    return {"wall": wall, "hook_cpu": hook_cpu, "emulator_cpu": emulator_cpu}


def serialisation_only(count: int) -> float:
    import orjson

    from hyperline_provider.events import DUMPS_OPTIONS, validate_event, wire_event

    started = time.perf_counter()
    for event in make_events(count, "ser"):
        if validate_event(event) is None:
            orjson.dumps(wire_event(event), option=DUMPS_OPTIONS)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate-429", type=float, default=0.1)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=1, help="repeat each scenario (shared hosts are noisy)")
    args = parser.parse_args()
    airflow_home = tempfile.TemporaryDirectory(prefix="bench-airflow-")
    os.environ.setdefault("AIRFLOW_HOME", airflow_home.name)
    logging.getLogger("hyperline_provider").setLevel(logging.WARNING)  # no per-call INFO lines
    proc, url = start_emulator()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "hyperline", "host": url, "password": API_KEY}
    )
    try:
        emulator = psutil.Process(proc.pid)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{args.events:,} events to the emulator at {url} (pid {proc.pid}), batches of 5000")
        print(f"{os.cpu_count()} CPUs, load average before the runs: {load}")
        faults = {"rate_429": args.rate_429, "retry_after": args.retry_after, "seed": 7}
        clean: list[dict[str, float]] = []
        for _ in range(args.runs):
            clean.append(run(url, emulator, args.events, {}, "no faults"))
            run(url, emulator, args.events, faults, f"{args.rate_429:.0%} 429s")
        alone = serialisation_only(args.events)
        print(f"hook validation + serialisation alone: {args.events / alone:,.0f} events/s ({alone:.2f}s)")
        best = min(clean, key=lambda r: r["wall"])
        hook_us = best["hook_cpu"] / args.events * 1e6
        emulator_us = best["emulator_cpu"] / args.events * 1e6
        side = "hook" if hook_us >= emulator_us else "emulator"
        print(
            f"CPU per event (best clean run): hook {hook_us:.2f} us (one core: <= {1e6 / hook_us:,.0f}/s), "
            f"emulator {emulator_us:.2f} us (<= {1e6 / emulator_us:,.0f}/s): the {side} is the bottleneck. "
            "Wall time above the larger CPU figure is waiting: request round trips, GIL hand-offs, other load."
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"hook process peak RSS: {peak:,.0f} MiB (events are streamed, at most 3 batches held)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        airflow_home.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
