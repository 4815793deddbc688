"""Benchmark of the pipeline without the scheduler: source -> transform -> dedup -> HyperlineHook -> emulator.

    .venv/bin/python bench/bench_pipeline.py                       # 1M lines over 3 days, 3 fresh processes
    .venv/bin/python bench/bench_pipeline.py --lines 100000 3000000 --runs 1
    .venv/bin/python bench/bench_pipeline.py --parallel            # plus two days synced by two processes at once
    .venv/bin/python bench/bench_pipeline.py --profile             # plus a cProfile of one run (top 5 printed)
    .venv/bin/python bench/bench_pipeline.py --sender null         # what the sync costs without sending

`--sender` attributes the time of the send path: `hook` (the default) is the real HyperlineHook to
the emulator; `encode` only encodes each batch with orjson in the send thread, as the hook does;
`null` accepts every event at once. Both stand-ins count every event as sent.

Each run is a fresh subprocess with fresh state (ledger, dedup ids, reports) that calls
`hyperline_sync.pipeline.sync.sync_partition` once per day with a SyncJob built the way `tasks.sync` builds it
(SQLite ledger, circuit breaker, the real HyperlineHook with the pipeline's tuning), against the
Hyperline emulator in its own process (`--no-store`: it parses, validates and counts every event,
keeps none; it sets TCP_NODELAY) on 127.0.0.1. Peak RSS is the child's high-water mark (the whole
process, imports included); with `tuning.processes` above 1 the child syncs through a pool of worker
processes, and the parent samples the tree: the child, each worker, and their sum.

    .venv/bin/python bench/bench_pipeline.py --processes 2      # the pool (when the config has the key)
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from _common import (
    DATA,
    Meter,
    TreeRss,
    admin,
    archive_days,
    archive_for,
    connection_env,
    known_tuning,
    peak_rss_mb,
    start_emulator,
)
from _common import write_config as write_pipeline_config

PIPELINE = "bench"


# --- in the child process -------------------------------------------------------------------------


class LocalSender:
    """A stand-in for the hook that sends nothing: with `encode`, it serialises each batch as the hook
    would (orjson, batch_size events) and throws the bytes away."""

    def __init__(self, batch_size: int, encode: bool) -> None:
        self.batch_size, self.encode = batch_size, encode

    def send_events(self, events: list[dict], *, prevalidated: bool = False) -> Any:
        import orjson

        from hyperline_provider.events import DUMPS_OPTIONS
        from hyperline_provider.results import SendResult

        if self.encode:
            for start in range(0, len(events), self.batch_size):
                orjson.dumps(events[start : start + self.batch_size], option=DUMPS_OPTIONS)
        return SendResult(accepted=len(events))

    def close(self) -> None:
        pass


def sync_days(config_path: Path, days: list[dt.date], run_id: str, sender_kind: str = "hook") -> dict[str, Any]:
    """sync_partition for each day, in this process; returns the summed counts and requests."""
    from hyperline_sync.config import load_config
    from hyperline_sync.orchestration import tasks
    from hyperline_sync.pipeline.breaker import CircuitBreaker
    from hyperline_sync.pipeline.sync import SyncJob, sync_partition
    from hyperline_sync.sources.base import open_source
    from hyperline_sync.state.ledger import Counts

    config = load_config(config_path)
    pipeline = config.pipeline(PIPELINE)
    ledger = tasks.ledger_for(config)
    breaker = CircuitBreaker(ledger, pipeline.name, pipeline.tuning.breaker_failures,
                             dt.timedelta(minutes=pipeline.tuning.breaker_cooldown_minutes))
    if sender_kind == "hook":
        sender = tasks.make_sender(pipeline)
    else:
        sender = LocalSender(pipeline.tuning.batch_size, encode=sender_kind == "encode")
    job = SyncJob(pipeline=pipeline, ledger=ledger, source=open_source(pipeline), state_dir=config.state.dir,
                  output_dir=config.state.output_dir, run_id=run_id, owner=run_id, sender=sender, breaker=breaker)
    totals, requests, retries = Counts(), 0, 0
    for day in days:
        outcome = sync_partition(job, day)
        totals.add(outcome.counts)
        requests += outcome.requests
        retries += outcome.retries
    getattr(sender, "hook", sender).close()  # HookSender wraps the hook, which owns the session
    if not totals.balanced:
        raise RuntimeError(f"counts do not add up: {totals.as_dict()}")
    return {**totals.as_dict(), "requests": requests, "retries": retries}


def child(config_path: Path, days: list[dt.date], profile: Path | None, sender: str) -> None:
    """One measured run in this fresh process; prints a JSON line."""
    import pandas  # noqa: F401 - imported before the baseline, as in bench_source.py

    import hyperline_provider.hooks.hyperline  # noqa: F401
    import hyperline_sync.pipeline.sync  # noqa: F401

    baseline = peak_rss_mb()
    cpu, main_cpu, started = time.process_time(), time.thread_time(), time.perf_counter()
    if profile is None:
        result = sync_days(config_path, days, "bench", sender)
    else:
        profiler = cProfile.Profile()
        result = profiler.runcall(sync_days, config_path, days, "bench", sender)
        profiler.dump_stats(profile)
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - cpu  # every thread of the process
    result["main_thread_cpu_seconds"] = time.thread_time() - main_cpu  # read, transform, dedup
    result["peak_rss_mb"] = peak_rss_mb()
    result["baseline_rss_mb"] = baseline
    print(json.dumps(result))


# --- in the parent --------------------------------------------------------------------------------


class Emulator:
    """The emulator subprocess (`--no-store`), its URL and a psutil handle."""

    def __init__(self, store: bool = False) -> None:
        self.proc, self.url = start_emulator(store=store)
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        return sum(self.ps.cpu_times()[:2])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def fresh_run_dir(label: str, archive: Path, tuning: dict[str, Any] | None = None) -> Path:
    """A clean folder holding a config for `archive` and the run's state (ledger, ids, reports)."""
    folder = DATA / "runs" / label
    shutil.rmtree(folder, ignore_errors=True)
    write_pipeline_config(folder / "pipelines.yaml", archive, folder / "state", tuning=tuning)
    (folder / "airflow").mkdir(parents=True)
    return folder


def child_command(folder: Path, days: list[dt.date], profile: Path | None = None, sender: str = "hook") -> list[str]:
    command = [sys.executable, __file__, "--child", str(folder / "pipelines.yaml"),
               "--child-days", *(d.isoformat() for d in days), "--child-sender", sender]
    return command + (["--child-profile", str(profile)] if profile else [])


def child_env(folder: Path, url: str) -> dict[str, str]:
    # The hook reads its connection from the environment; a private AIRFLOW_HOME keeps Airflow's
    # defaults (and any airflow.cfg it writes) out of the user's.
    return {**os.environ, "AIRFLOW_HOME": str(folder / "airflow"), **connection_env(url)}


def _finish(result: dict[str, Any], meter: Meter, emulator: Emulator, cpu_before: float) -> dict[str, Any]:
    stats = admin(emulator.url, "/_emulator/stats")
    measured = meter.as_dict()
    result["process_seconds"] = measured.pop("seconds")  # the child's whole life, interpreter start included
    result.update(measured)
    result["emulator_cpu_seconds"] = emulator.cpu() - cpu_before
    result["emulator_requests"] = stats["requests"]
    result["emulator_events"] = stats["events_received"]
    result["emulator_statuses"] = stats["statuses"]
    return result


def run_pipeline(emulator: Emulator, archive: Path, days: list[dt.date], label: str,
                 profile: Path | None = None, sender: str = "hook", processes: int | None = None) -> dict[str, Any]:
    """One fresh-process run over `days` of `archive`, with fresh state; the emulator's counters reset.

    `processes`: the config's `tuning.processes` (1: in this process; None: the config's default). A
    config without that key runs in one process; the result's `processes` is then None.
    """
    tuning = known_tuning({} if processes is None else {"processes": processes})
    folder = fresh_run_dir(label, archive, tuning)
    admin(emulator.url, "/_emulator/reset", {})
    cpu_before = emulator.cpu()
    meter = Meter(extra=[emulator.ps])
    proc = subprocess.Popen(child_command(folder, days, profile, sender), env=child_env(folder, emulator.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tree = TreeRss(proc.pid)
    stdout, stderr = proc.communicate()
    tree.stop()
    meter.stop()
    if proc.returncode:
        raise RuntimeError(f"pipeline run {label} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])  # "seconds": the sync itself, imports excluded
    result.update(processes=tuning.get("processes"), peak_parent_mb=tree.peak_root_mb,
                  peak_worker_mb=tree.peak_child_mb, peak_total_mb=tree.peak_mb, workers=tree.max_processes - 1)
    return _finish(result, meter, emulator, cpu_before)


def run_parallel(emulator: Emulator, archive: Path, days: list[dt.date], label: str) -> dict[str, Any]:
    """One process per day, all started at once, sharing the ledger and state like mapped tasks do."""
    folder = fresh_run_dir(label, archive)
    admin(emulator.url, "/_emulator/reset", {})
    cpu_before = emulator.cpu()
    meter = Meter(extra=[emulator.ps])
    procs = [subprocess.Popen(child_command(folder, [day]), env=child_env(folder, emulator.url),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for day in days]
    outputs = [proc.communicate() for proc in procs]
    meter.stop()
    results = []
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        if proc.returncode:
            raise RuntimeError(f"parallel run {label} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    total: dict[str, Any] = {key: sum(r[key] for r in results)
                             for key in ("read", "sent", "rejected", "skipped", "duplicates", "requests", "retries",
                                         "cpu_seconds")}
    total["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    total["baseline_rss_mb"] = max(r["baseline_rss_mb"] for r in results)
    total["seconds"] = max(r["seconds"] for r in results)  # both syncs ran at once: the slower one's time
    total["child_seconds"] = [r["seconds"] for r in results]
    return _finish(total, meter, emulator, cpu_before)


# Frames that only loop and delegate: left out of the cumulative ranking, which they would top.
WRAPPERS = {
    ("hyperline_sync/pipeline/sync.py", name) for name in ("sync_partition", "run", "_chunk")
} | {("hyperline_sync/sources/base.py", "chunks"), ("bench/bench_pipeline.py", "sync_days")}


def top_costs(stats_path: Path, count: int = 5) -> dict[str, Any]:
    """The `count` largest own-time (tottime) and cumulative-time entries of a cProfile dump."""
    stats = pstats.Stats(str(stats_path))
    rows, wrapped = [], []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        entry = {"function": short_name(filename, line, name), "calls": calls, "own_s": own,
                 "cumulative_s": cumulative}
        rows.append(entry)
        if not any(filename.endswith(suffix) and name == func for suffix, func in WRAPPERS):
            wrapped.append(entry)
    return {
        "total_s": stats.total_tt,  # type: ignore[attr-defined]
        "own": sorted(rows, key=lambda r: -r["own_s"])[:count],
        "cumulative": sorted(wrapped, key=lambda r: -r["cumulative_s"])[:count],
    }


# Where the main thread's time goes, by stage: (label, file suffix, function names); cumulative times.
STAGES = (
    ("read: list objects, gunzip, split lines", "hyperline_sync/sources/archive.py",
     ("iter_line_chunks", "list_partition")),
    ("transform: parse JSON, map, build the frame", "hyperline_sync/pipeline/transform.py", ("transform_chunk",)),
    ("dedup: filter, commit ids", "hyperline_sync/pipeline/dedup.py", ("filter", "commit_object", "__init__")),
    ("frame -> event dicts (sync.to_events)", "hyperline_sync/pipeline/sync.py", ("to_events",)),
    ("waiting for the previous chunk's send (the hook runs in a worker thread)", "hyperline_sync/pipeline/sync.py",
     ("_settle",)),
    ("ledger + breaker (SQLite)", "hyperline_sync/state/ledger.py",
     ("claim", "renew", "finish", "done_objects", "record_object", "breaker", "set_breaker", "partitions")),
    ("dead letters", "hyperline_sync/state/deadletter.py", ("add", "close", "discard")),
)


def stage_breakdown(stats_path: Path) -> list[dict[str, Any]]:
    stats = pstats.Stats(str(stats_path))
    entries = stats.stats.items()  # type: ignore[attr-defined]
    total = next((ct for (f, _, n), (_, _, _, ct, _) in entries if n == "sync_days"), stats.total_tt)  # type: ignore[attr-defined]
    rows = []
    for label, suffix, names in STAGES:
        seconds = sum(ct for (f, _, n), (_, _, _, ct, _) in entries if f.endswith(suffix) and n in names)
        rows.append({"stage": label, "seconds": seconds, "share": seconds / total})
    rest = total - sum(r["seconds"] for r in rows)
    rows.append({"stage": "everything else", "seconds": rest, "share": rest / total})
    return rows


def short_name(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a builtin, e.g. <method 'acquire' of '_thread.lock' objects>
    for marker in ("site-packages/", "/include/", "/plugins/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def render_costs(costs: dict[str, list[dict[str, Any]]], stages: list[dict[str, Any]]) -> str:
    lines = [f"profiled main thread: {costs['total_s']:.1f}s (the hook's sender threads are not profiled)"]
    lines += [f"  {row['seconds']:7.2f}s {row['share']:6.1%}  {row['stage']}" for row in stages]
    titles = (("own", "own time (tottime)"), ("cumulative", "cumulative time (the per-object loop's frames left out)"))
    for key, title in titles:
        lines.append(f"top {len(costs[key])} by {title}:")
        for row in costs[key]:
            lines.append(f"  {row['own_s']:7.2f}s own {row['cumulative_s']:7.2f}s cum {row['calls']:>10,} calls  "
                         f"{row['function']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--days", type=int, default=3, help="received days the lines are spread over")
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per size")
    parser.add_argument("--parallel", action="store_true", help="two days at once, one process each")
    parser.add_argument("--profile", action="store_true", help="cProfile one run of the largest size")
    parser.add_argument("--processes", type=int, help="tuning.processes (default: the config's)")
    parser.add_argument("--sender", choices=("hook", "encode", "null"), default="hook",
                        help="hook: the real HyperlineHook; encode/null: stand-ins that send nothing")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-days", type=dt.date.fromisoformat, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-sender", default="hook", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child_days, args.child_profile, args.child_sender)
        return 0

    days = archive_days(args.days)
    archives = {lines: archive_for(lines, args.days) for lines in args.lines}
    emulator = Emulator()
    try:
        print(f"emulator {emulator.url} (--no-store); {os.cpu_count()} CPUs; best of {args.runs} fresh processes; "
              f"sender: {args.sender}")
        print(f"{'lines':>10}{'sent':>10}{'wall s':>9}{'lines/s':>11}{'sent/s':>10}{'requests':>9}"
              f"{'peak RSS MB':>12}{'CPU s':>7}{'main':>6}{'emu':>6}{'load1':>12}{'others':>8}")
        for lines, archive in archives.items():
            runs = [run_pipeline(emulator, archive, days, f"pipeline-{lines}", sender=args.sender,
                                 processes=args.processes) for _ in range(args.runs)]
            best = min(runs, key=lambda r: r["seconds"])
            print(f"{best['read']:>10}{best['sent']:>10}{best['seconds']:>9.2f}{best['read'] / best['seconds']:>11,.0f}"
                  f"{best['sent'] / best['seconds']:>10,.0f}{best['requests']:>9}"
                  f"{max(r['peak_rss_mb'] for r in runs):>12.0f}{best['cpu_seconds']:>7.2f}"
                  f"{best['main_thread_cpu_seconds']:>6.2f}{best['emulator_cpu_seconds']:>6.2f}"
                  f"{best['load_before']:>6.2f}{best['load_after']:>6.2f}{best['others_cores']:>8.2f}")
        if args.parallel:
            archive = archives[max(archives)]
            pair = days[:2]
            serial = [run_pipeline(emulator, archive, [day], f"serial-{day}") for day in pair]
            both = run_parallel(emulator, archive, pair, "parallel")
            serial_s = sum(r["seconds"] for r in serial)
            print(f"two days one after the other: {serial_s:.2f}s; at once: {both['seconds']:.2f}s "
                  f"(x{serial_s / both['seconds']:.2f}), peak RSS per process {both['peak_rss_mb']:.0f} MB, "
                  f"load1 {both['load_before']:.2f}->{both['load_after']:.2f}, others {both['others_cores']:.2f} cores")
        if args.profile:
            lines = max(archives)
            profile = DATA / "runs" / "pipeline.prof"
            run = run_pipeline(emulator, archives[lines], days, "profile", profile=profile, sender=args.sender)
            print(f"cProfile of {lines} lines ({run['seconds']:.1f}s with the profiler on): {profile}")
            print(render_costs(top_costs(profile), stage_breakdown(profile)))
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
