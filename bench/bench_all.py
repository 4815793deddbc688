"""`make bench`: the sync measured end to end, against its references, at three sizes; writes bench/RESULTS.md.

    .venv/bin/python bench/bench_all.py            # full sizes (1M lines; scaling 100k/1M/3M), ~15 min
    .venv/bin/python bench/bench_all.py --quick    # small sizes, a smoke check (~2 min); bench/data/RESULTS-quick.md

Measures, in this order, against one Hyperline emulator process on 127.0.0.1 (`--no-store`):
1. one DagRun of the sync DAG through Airflow (`airflow dags test`, bench_dagrun.py) over a generated
   3-day archive, then the same run again with nothing new, and a run over its own data interval;
2. the pipeline without the scheduler (bench_pipeline.py): sync_partition per day in one process
   (`tuning.processes: 1`), and with a pool of POOL_PROCESSES worker processes (`tuning.processes`;
   "n/a" while the config does not know that key);
3. references on the same files, each run next to a pipeline run: the floor and the naive pandas
   way (bench_source.py's), and the seed's way, one POST /v1/events per event with requests;
4. scaling: the pipeline (with the pool when there is one) at three sizes, the peak RSS of its parent
   process, of each worker and in total; two days synced by two processes at once;
5. a cProfile of the pipeline run (one process);
6. one 12-day DagRun under a real scheduler with 1, then 2 slots for the mapped days (bench_scheduler.py);
7. the seed's way vs the pipeline at 0, 20 and 50 ms round trip (`network_comparison`: bench_network.py).
Every figure is recorded with the 1-minute load average before/after and the CPU that other
processes used meanwhile. Targets are reported as ratios, never asserted. Raw figures go to
bench/data/results.json. What follows KEPT_MARKER in the results file (hand-written sections, such as
bench_reconcile.py's) is kept when the file is written again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import BENCH, DATA, Meter, archive_days, archive_for, known_tuning, machine
from bench_dagrun import run_dagruns
from bench_network import compare_round_trips, seed_events, seed_way
from bench_pipeline import Emulator, run_parallel, run_pipeline, stage_breakdown, top_costs
from bench_scheduler import run_scheduler
from bench_source import CHUNK_LINES
from bench_source import run_child as run_source_child

FULL = {"lines": 1_000_000, "scaling": [100_000, 1_000_000, 3_000_000], "seed_events": 20_000,
        "runs": 3, "naive_runs": 1, "reruns": 3, "scheduler_lines_per_day": 10_000}
QUICK = {"lines": 30_000, "scaling": [10_000, 30_000, 90_000], "seed_events": 2_000,
         "runs": 1, "naive_runs": 1, "reruns": 1, "scheduler_lines_per_day": 1_000}
DAYS = 3
SCHEDULER_DAYS = 12
POOL_PROCESSES = 2  # the machine's cores
NETWORK_RTTS_MS = (0, 20, 50)
KEPT_MARKER = "<!-- bench_all.py keeps everything below this line when it writes this file again -->"

TARGETS = {
    "events_per_s": 100_000,
    "pool_x_floor": 1.5,  # partition wall time with the pool vs the floor's
    "cpu_x_floor": 2.0,  # hot-path CPU in one process vs the floor's CPU
    "dagrun_x_floor": 1.6,  # a DagRun's time minus a nothing-new run's, vs the floor's
    "slots_speedup": 1.6,  # the 12-day run with 2 slots vs 1
    "x_seed_20ms": 1000,
    "rtt_cost": 0.10,  # share of the loopback events/s a 50 ms round trip may cost
    "requests_share": 1 / 1000,
    "parent_rss_mb": 400,
    "worker_rss_mb": 250,
    "rss_growth_mb": 50,
    "nothing_new_s": 20,
}


# --- measurements that live here ------------------------------------------------------------------


def source_reference(mode: str, archive: Path) -> dict[str, Any]:
    """bench_source.py's floor or naive way, in a fresh process, with load and foreign CPU around it."""
    meter = Meter()
    result = run_source_child(mode, archive)
    measured = meter.stop().as_dict()
    result["process_seconds"] = measured.pop("seconds")
    return {**result, **measured, "read": result["lines"]}


def pool_supported() -> bool:
    """Whether the pipeline config has `tuning.processes` (the worker pool) yet."""
    return bool(known_tuning({"processes": POOL_PROCESSES}))


def network_comparison(archive: Path, sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """The seed's way vs the pipeline at each of NETWORK_RTTS_MS (bench/bench_network.py), one dict per
    round trip with `rtt_ms`, `seed_events_per_s`, `seed_requests`, `seed_events`, `pipeline_events_per_s`,
    `pipeline_requests` and `pipeline_events`."""
    return compare_round_trips(archive, NETWORK_RTTS_MS, seed_events=sizes["seed_events"], days=DAYS,
                               runs=sizes["runs"])


# --- the whole run --------------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and the files under measurement that differ from it (others edit concurrently)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True, check=False)
        return done.stdout.rstrip("\n")

    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = git("status", "--porcelain", "--", "include", "plugins", "dags").splitlines()
    changed = ", ".join(line[3:] for line in dirty)
    return f"commit {head}" + (f", with uncommitted changes in {changed}" if changed else ", clean tree")


def measure(sizes: dict[str, Any], log: Any) -> dict[str, Any]:
    days = archive_days(DAYS)
    main_lines = sizes["lines"]
    archives = {lines: archive_for(lines, DAYS) for lines in sorted({main_lines, *sizes["scaling"]})}
    main = archives[main_lines]
    pool = pool_supported()
    results: dict[str, Any] = {"sizes": sizes, "days": DAYS, "pool_processes": POOL_PROCESSES if pool else None}
    # Scaling and memory are measured on the pool when there is one (it is the default: one worker per core).
    scaling_processes = POOL_PROCESSES if pool else 1
    emulator = Emulator()
    try:
        log("1. DagRuns through Airflow (airflow dags test) ...")
        first, again = run_dagruns(emulator, main, DAYS, sizes["reruns"], scheduled=True)
        results["dagrun_first"], results["dagrun_again"] = first, again

        log(f"2-3. pipeline in one process{', with the pool' if pool else ''}, floor, naive, the seed's way "
            f"({sizes['seed_events']:,} events; interleaved) ...")
        results["pipeline"], results["floor"], results["naive"], results["seed"] = [], [], [], []
        results["pool"] = []
        events = seed_events(main, sizes["seed_events"])
        for run in range(sizes["runs"]):
            results["pipeline"].append(run_pipeline(emulator, main, days, "pipeline", processes=1))
            if pool:
                results["pool"].append(run_pipeline(emulator, main, days, "pool", processes=POOL_PROCESSES))
            results["floor"].append(source_reference("floor", main))
            # The seed's way is timed next to each pipeline run: its per-request latency drifts with
            # the machine's load as much as our throughput does.
            results["seed"].append(seed_way(emulator, events))
            if run < sizes["naive_runs"]:
                results["naive"].append(source_reference("naive", main))

        log("4. scaling ...")
        results["scaling"] = {}
        for lines in sizes["scaling"]:
            if lines == main_lines:
                results["scaling"][lines] = results["pool"] or results["pipeline"]
            else:
                results["scaling"][lines] = [run_pipeline(emulator, archives[lines], days, f"scaling-{lines}",
                                                          processes=scaling_processes)
                                             for _ in range(sizes["runs"])]
        pair = days[:2]
        results["serial"] = [run_pipeline(emulator, main, [day], f"serial-{day}") for day in pair]
        results["parallel"] = run_parallel(emulator, main, pair, "parallel")

        log("5. cProfile of the pipeline ...")
        profile = DATA / "runs" / "pipeline.prof"
        results["profile_run"] = run_pipeline(emulator, main, days, "profile", profile=profile, processes=1)
        results["profile"] = {"costs": top_costs(profile), "stages": stage_breakdown(profile), "path": str(profile)}
    finally:
        emulator.close()

    log(f"6. one {SCHEDULER_DAYS}-day DagRun under a real scheduler, 1 then 2 slots "
        f"({sizes['scheduler_lines_per_day']:,} lines a day) ...")
    results["scheduler"] = run_scheduler(sizes["scheduler_lines_per_day"], SCHEDULER_DAYS)

    log(f"7. the seed's way vs the pipeline at {', '.join(map(str, NETWORK_RTTS_MS))} ms round trip ...")
    results["network"] = network_comparison(main, sizes)
    return results


# --- the report -----------------------------------------------------------------------------------


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["seconds"])


def spread(runs: list[dict[str, Any]]) -> str:
    if len(runs) < 2:
        return "1 run"
    times = sorted(r["seconds"] for r in runs)
    return f"{times[0]:.2f}-{times[-1]:.2f} ({len(runs)} runs)"


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def row(label: str, runs: list[dict[str, Any]], cpu_key: str | None = "cpu_seconds",
        rss_key: str | None = "peak_rss_mb") -> list[str]:
    b = best(runs)
    seconds = b["seconds"]
    sent = b.get("sent")
    return [
        label,
        fmt(b.get("read")),
        fmt(sent),
        fmt(b.get("requests")),
        f"{seconds:.2f}",
        spread(runs),
        fmt(b["read"] / seconds if b.get("read") else None),
        fmt(sent / seconds if sent else None),
        fmt(b.get(cpu_key) if cpu_key else None, ".1f"),
        fmt(max(r[rss_key] for r in runs) if rss_key else None),
        f"{b['load_before']:.2f} → {b['load_after']:.2f}",
        f"{b['others_cores']:.2f}",
    ]


HEADER = ["measurement", "lines read", "events sent", "HTTP requests", "wall s (best)", "wall s range",
          "lines/s", "events/s", "CPU s", "peak RSS MB", "load1 before → after", "others' CPU (cores)"]


def table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] + ["--:"] * (len(HEADER) - 1)) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(results: dict[str, Any], info: dict[str, Any], command: str, total_s: float) -> str:
    sizes = results["sizes"]
    pipeline, floor, naive, seeds = results["pipeline"], results["floor"], results["naive"], results["seed"]
    seed = best(seeds)
    first, again = results["dagrun_first"], results["dagrun_again"]
    nothing_new = [r for r in again if r["label"].startswith("nothing-new")]
    scheduled = [r for r in again if r["label"] == "scheduled-interval"]
    main_lines = sizes["lines"]

    rows = [
        row(f"1. DagRun through Airflow, first run ({DAYS} days, {main_lines:,} lines)", [first],
            cpu_key="children_cpu_seconds"),
        row("1. DagRun, same range again: nothing new", nothing_new, cpu_key="children_cpu_seconds"),
        row("1. DagRun over its own data interval (scheduled-style): nothing to read", scheduled,
            cpu_key="children_cpu_seconds"),
        row("2. pipeline in one process: sync_partition x 3 days + HyperlineHook", pipeline),
        (row(f"2. pipeline with a pool of {results['pool_processes']} worker processes (peak RSS: the tree)",
             results["pool"], rss_key="peak_total_mb") if results["pool"] else
         na_row("2. pipeline with a pool of worker processes: n/a (the config has no `tuning.processes` yet)")),
        row("3. floor: gunzip (ISA-L) + orjson.loads per line", floor),
        row("3. naive: pandas.read_json(lines=True) + to_dict", naive),
        row(f"3. seed's way: one POST /v1/events per event ({seed['sent']:,} events)", seeds, cpu_key=None,
            rss_key=None),
    ]
    pooled = bool(results["pool"])  # then the scaling runs use the pool, and their RSS is the tree's
    for lines, runs in results["scaling"].items():
        rows.append(row(f"4. scaling: pipeline{' with the pool' if pooled else ''}, {int(lines):,} lines", runs,
                        rss_key="peak_total_mb" if pooled else "peak_rss_mb"))
    serial, parallel = results["serial"], results["parallel"]
    serial_total = {
        **serial[0],
        "read": sum(r["read"] for r in serial), "sent": sum(r["sent"] for r in serial),
        "requests": sum(r["requests"] for r in serial), "seconds": sum(r["seconds"] for r in serial),
        "cpu_seconds": sum(r["cpu_seconds"] for r in serial), "peak_rss_mb": max(r["peak_rss_mb"] for r in serial),
        "load_after": serial[-1]["load_after"],
        "others_cores": sum(r["others_cores"] * r["process_seconds"] for r in serial)
        / sum(r["process_seconds"] for r in serial),
    }
    rows.append(row("4. two days, two processes one after the other", [serial_total]))
    rows.append(row("4. two days, two processes at once (peak RSS: the larger one)", [parallel]))

    out = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {total_s / 60:.1f} min"
        + (" (**--quick: small sizes, a smoke check; the targets are about the full sizes**)"
           if results["quick"] else "") + ".",
        "",
        f"Code: {results['code']} (at the start of the run).",
        "",
        f"Machine: {info['cpu']}, {info['logical_cpus']} logical CPUs ({info['physical_cpus']} physical), "
        f"{info['memory_gib']} GiB RAM, {info['os']}; Python {info['python']}; "
        + ", ".join(f"{k} {v}" for k, v in info["packages"].items()) + ".",
        "",
        f"Data: a generated Segment archive (`sample_archive.generate_archive`, nasty=False, seed 1), "
        f"{DAYS} received days, ~650-byte lines, objects of ~100k lines; the generator's realistic mix is "
        "78% billable `track` calls and 22% identify/page/screen/group/alias (read and skipped), so "
        "*events sent* ≈ 0.78 x *lines read*. The Hyperline emulator runs in its own process on 127.0.0.1 "
        "with `--no-store` (it parses and validates every event, keeps none) and shares the 2 cores. It sets "
        "TCP_NODELAY, so a small response is not held back by Nagle's algorithm (which would otherwise add "
        "~40 ms to each of the seed's one-event requests and inflate our ratio over it).",
        "",
        "Shared machine: *load1* is `os.getloadavg()[0]` right before and after the measurement; "
        "*others' CPU* is the machine's busy CPU during the measurement minus this benchmark's own processes "
        "(the measured process, the emulator, this driver), in cores out of "
        f"{info['logical_cpus']}. Wall times are the best of the runs; *CPU s* is the measured process's CPU "
        "(all threads; for DagRuns the whole `airflow dags test` tree, start-up included).",
        "",
        table(rows),
        "",
        "## Targets",
        "",
        "| target | measured | ratio | verdict |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(results)),
        "",
        "## Reading the targets",
        "",
        reading(results),
        "",
        "## Through Airflow",
        "",
        dagrun_notes(first, nothing_new, scheduled, pipeline),
        "",
        "## Days side by side under a real scheduler",
        "",
        scheduler_notes(results["scheduler"]),
        "",
        "## The seed's way over a network",
        "",
        network_notes(results["network"]),
        "",
        "## Scaling and memory",
        "",
        scaling_notes({int(k): v for k, v in results["scaling"].items()}, results["serial"], results["parallel"]),
        "",
        "## Where the time goes (cProfile of the pipeline run, main thread)",
        "",
        profile_notes(results),
        "",
        "## Noise",
        "",
        noise_notes(results),
    ]
    return "\n".join(out) + "\n"


def na_row(label: str) -> list[str]:
    return [label, *(["n/a"] * (len(HEADER) - 1))]


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(target, measured, ratio, verdict) rows; "n/a" where this run could not measure it."""
    na = ("n/a", "not measured")
    p, f = best(results["pipeline"]), best(results["floor"])
    p_events_s = p["sent"] / p["seconds"]
    rows = [("pipeline ≥ 100,000 events/s in one process", f"{p_events_s:,.0f} events sent/s",
             f"{p_events_s / TARGETS['events_per_s']:.2f}x target", verdict(p_events_s >= TARGETS["events_per_s"]))]

    pool = results["pool"]
    label = f"partition wall time, pool, {results['machine']['logical_cpus']} cores ≤ 1.5x floor"
    if pool:
        w = best(pool)
        x = w["seconds"] / f["seconds"]
        rows.append((label, f"{w['seconds']:.2f}s ({w['workers']} workers) vs floor {f['seconds']:.2f}s",
                     f"{x:.2f}x floor", verdict(x <= TARGETS["pool_x_floor"])))
    else:
        rows.append((label + " (`tuning.processes`)", "no pool in this code", *na))
    x = p["cpu_seconds"] / f["cpu_seconds"]
    rows.append(("hot-path CPU, one process ≤ 2.0x the floor's CPU",
                 f"{p['cpu_seconds']:.1f} CPU s vs floor {f['cpu_seconds']:.1f} CPU s", f"{x:.2f}x floor",
                 verdict(x <= TARGETS["cpu_x_floor"])))

    first = results["dagrun_first"]
    idle = [r["seconds"] for r in results["dagrun_again"] if r["label"].startswith("nothing-new")]
    net = first["seconds"] - min(idle)
    x = net / f["seconds"]
    rows.append((f"{first['read']:,} lines ({first['sent']:,} events) through a DagRun minus a nothing-new "
                 "run ≤ 1.6x floor", f"{first['seconds']:.1f}s - {min(idle):.1f}s = {net:.1f}s vs floor "
                 f"{f['seconds']:.2f}s", f"{x:.2f}x floor", verdict(x <= TARGETS["dagrun_x_floor"])))

    one, two = (next(r for r in results["scheduler"] if r["slots"] == n) for n in (1, 2))
    x = one["seconds"] / two["seconds"]
    rows.append((f"{one['days']}-day run, real scheduler: 2 slots ≥ 1.6x faster than 1",
                 f"1 slot {one['seconds']:.1f}s, 2 slots {two['seconds']:.1f}s", f"x{x:.2f}",
                 verdict(x >= TARGETS["slots_speedup"])))

    at = {r["rtt_ms"]: r for r in results["network"]}
    at_20 = at[20]
    x = at_20["pipeline_events_per_s"] / at_20["seed_events_per_s"]
    rows.append(("vs the seed at 20 ms round trip: ≥ 1000x events/s",
                 f"{at_20['pipeline_events_per_s']:,.0f} vs {at_20['seed_events_per_s']:,.0f} events/s",
                 f"{x:,.0f}x", verdict(x >= TARGETS["x_seed_20ms"])))
    kept = at[50]["pipeline_events_per_s"] / at[0]["pipeline_events_per_s"]
    rows.append(("50 ms round trip costs ≤ 10% of the loopback events/s",
                 f"{at[50]['pipeline_events_per_s']:,.0f} vs {at[0]['pipeline_events_per_s']:,.0f} events/s",
                 f"{kept:.0%} kept", verdict(kept >= 1 - TARGETS["rtt_cost"])))
    share = at_20["pipeline_requests"] / at_20["pipeline_events"]
    where = f"{at_20['pipeline_requests']:,} requests for {at_20['pipeline_events']:,} events (20 ms)"
    rows.append(("≤ 1/1000 of the seed's requests (it makes one per event)", where, f"1/{1 / share:,.0f}",
                 verdict(share <= TARGETS["requests_share"])))

    scaling = {int(k): v for k, v in results["scaling"].items()}
    parent = {n: max(r["peak_parent_mb"] for r in runs) for n, runs in scaling.items()}
    worker = {n: max(r["peak_worker_mb"] for r in runs) for n, runs in scaling.items()}
    rows.append(("peak RSS of the parent ≤ 400 MB", ", ".join(f"{n:,}: {v:.0f} MB" for n, v in sorted(parent.items())),
                 f"max {max(parent.values()) / TARGETS['parent_rss_mb']:.2f}x limit",
                 verdict(max(parent.values()) <= TARGETS["parent_rss_mb"])))
    if pool:
        rows.append(("peak RSS of each worker ≤ 250 MB",
                     ", ".join(f"{n:,}: {v:.0f} MB" for n, v in sorted(worker.items())),
                     f"max {max(worker.values()) / TARGETS['worker_rss_mb']:.2f}x limit",
                     verdict(max(worker.values()) <= TARGETS["worker_rss_mb"])))
    else:
        rows.append(("peak RSS of each worker ≤ 250 MB", "no pool in this code", *na))
    sizes = sorted(scaling)
    mid, top = (sizes[1], sizes[-1]) if len(sizes) >= 2 else (sizes[0],) * 2
    total = {n: max(r["peak_total_mb"] for r in runs) for n, runs in scaling.items()}
    growth = {what: values[top] - values[mid] for what, values in
              (("parent", parent), ("worker", worker), ("total", total)) if values[mid] > 0}
    rows.append((f"peak RSS flat from {mid:,} to {top:,} lines (≤ +50 MB)",
                 ", ".join(f"{what} {g:+.0f} MB" for what, g in growth.items()),
                 f"max {max(growth.values()):+.0f} MB", verdict(max(growth.values()) <= TARGETS["rss_growth_mb"])))
    idle_all = [r["seconds"] for r in results["dagrun_again"]]
    rows.append(("a run with nothing new < 20 s wall", ", ".join(f"{s:.1f}s" for s in idle_all),
                 f"worst {max(idle_all) / TARGETS['nothing_new_s']:.2f}x the limit",
                 verdict(max(idle_all) < TARGETS["nothing_new_s"])))
    return rows


def scheduler_notes(runs: list[dict[str, Any]]) -> str:
    one, two = (next(r for r in runs if r["slots"] == n) for n in (1, 2))
    lines = ["| slots | wall s (DagRun start → end) | seen by the benchmark s | sync tasks | s inside them | "
             "reschedules | load1 before → after | others' CPU (cores) |", "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    lines += [f"| {r['slots']} | {r['seconds']:.1f} | {r['observed_seconds']:.1f} | {r['sync_tasks']} | "
              f"{r['sync_task_seconds']:.1f} | {r['reschedules']} | {r['load_before']:.2f} → {r['load_after']:.2f} | "
              f"{r['others_cores']:.2f} |" for r in (one, two)]
    lines += [
        "",
        f"One DagRun over {one['days']} received days ({one['lines']:,} lines, one mapped `sync` task a day) on "
        "the multi-worker deployment (`hyperline_devtools.cluster`: scheduler, DAG processor, API server, two "
        "Celery workers, Postgres, Redis), with the `hyperline` pool at 1 slot, then at 2 (a second pipeline over "
        "the same archive, so the second run syncs everything too); `tuning.processes: 1` where the config has "
        f"it. 2 slots vs 1: x{one['seconds'] / two['seconds']:.2f}. The days of a run sync side by side; a "
        "task reschedules itself (every 10 s, holding no slot) only while another run holds all of its days: "
        "the *reschedules* column counts those waits. The two cores also carry the scheduler, the DAG "
        "processor, the API server, both workers and the emulator.",
    ]
    return "\n".join(lines)


def network_notes(network: list[dict[str, Any]]) -> str:
    lines = ["The emulator answers each request after the round trip, slept in the thread serving it, so "
             "concurrent requests wait together as over a link (bench/bench_network.py; *at once*: the most "
             "requests it served at once).", "",
             "| round trip ms | seed events/s | pipeline events/s | ratio | seed requests | pipeline requests "
             "(events) | pipeline requests at once |", "|--:|--:|--:|--:|--:|--:|--:|"]
    lines += [f"| {r['rtt_ms']} | {r['seed_events_per_s']:,.0f} | {r['pipeline_events_per_s']:,.0f} | "
              f"{r['pipeline_events_per_s'] / r['seed_events_per_s']:,.0f}x | {r['seed_requests']:,} | "
              f"{r['pipeline_requests']:,} ({r['pipeline_events']:,}) | {r['pipeline_max_concurrent']} |"
              for r in network]
    return "\n".join(lines)


def kept_tail(path: Path) -> str:
    """The hand-written end of the results file (from KEPT_MARKER on), to write again after the new figures."""
    if not path.exists():
        return ""
    text = path.read_text()
    return text[text.index(KEPT_MARKER):] if KEPT_MARKER in text else ""


def reading(results: dict[str, Any]) -> str:
    """What the figures say about each target, worked out from this run's numbers."""
    pipeline, floor, seed = results["pipeline"], results["floor"], best(results["seed"])
    p, f = best(pipeline), best(floor)
    stages = {s["stage"].split(":")[0].split(" (")[0]: s["share"] for s in results["profile"]["stages"]}
    per_cpu = p["sent"] / p["cpu_seconds"]
    needed = p["sent"] / TARGETS["events_per_s"]
    scaling = {int(k): v for k, v in results["scaling"].items()}
    baseline = max(r["baseline_rss_mb"] for runs in scaling.values() for r in runs)
    p_events_s, seed_events_s = p["sent"] / p["seconds"], seed["sent"] / seed["seconds"]
    idle = [*results["dagrun_again"]]
    waits = sum(r["reschedules"] for r in idle)
    first_task = [r["task_seconds"].get("plan", 0) for r in idle]
    bullets = [
        f"**Throughput.** The best pipeline run used {p['cpu_seconds']:.1f} CPU-seconds (all threads; "
        f"{p['main_thread_cpu_seconds']:.1f}s in the main thread, which reads, transforms and dedups, the rest in "
        f"the threads that encode and send) for {p['sent']:,} events in {p['seconds']:.1f}s of wall time. "
        "With CPU-seconds about equal to wall seconds, the process is bound by one core's worth of Python under "
        f"the GIL, and each CPU-second carries ~{per_cpu:,.0f} events. {TARGETS['events_per_s']:,} events/s means the "
        f"{p['sent']:,} events in {needed:.1f}s. The profile puts {stages.get('transform', 0):.0%} of the main "
        "thread in the transform (msgspec decodes only the fields it reads; the floor's orjson builds whole "
        f"messages) and {stages.get('read', 0):.0%} in "
        "reading (ISA-L inflate, line splitting).",
        f"**Floor.** By wall time the pipeline takes {p['seconds'] / f['seconds']:.1f}x the floor; by CPU "
        f"{p['cpu_seconds'] / f['cpu_seconds']:.1f}x ({p['cpu_seconds']:.1f}s vs {f['cpu_seconds']:.1f}s). The "
        "floor only decompresses (ISA-L, as the pipeline) and parses whole messages; the pipeline decodes only the "
        "fields it reads, but also type-checks and flattens every event's properties in Python, builds a frame, "
        "dedups, turns rows back into dicts, encodes and "
        "sends them.",
        f"**Memory.** Importing pandas, Airflow and the hook costs {baseline:.0f} MB before any data "
        "(the *RSS over imports* column below is the data's share), so 400 MB leaves "
        f"{TARGETS['parent_rss_mb'] - baseline:.0f} MB for the data: two chunks of {CHUNK_LINES:,} lines (one being "
        "sent while the next is read and transformed), their frames and event dicts, two encoded batches "
        "in flight, and the dedup window's 64-bit id hashes.",
        f"**Seed.** One POST per event on loopback costs ~{seed['seconds'] / seed['sent'] * 1000:.2f} ms "
        f"per event (requests + the emulator's per-request work on the same 2 cores): "
        f"{seed_events_s:,.0f} events/s, so ours is {p_events_s / seed_events_s:.0f}x "
        f"that. A real network "
        "adds a round trip to every one of the seed's requests and to every one of our batches of 5,000, "
        "so over a real link the gap widens; that is not measured here.",
        f"**Requests.** {p['requests']:,} requests for {p['sent']:,} events: batches of 5,000 "
        f"(1/{p['sent'] / p['requests']:,.0f} of one request per event).",
        f"**Nothing new.** {len(idle)} runs that sent nothing took "
        f"{min(r['seconds'] for r in idle):.1f}-{max(r['seconds'] for r in idle):.1f}s. Their `sync` tasks "
        f"took {min(r['task_seconds'].get('sync', 0) for r in idle):.1f}-"
        f"{max(r['task_seconds'].get('sync', 0) for r in idle):.1f}s; the rest is Airflow: the CLI start-up and "
        f"DAG parse, the first task ({min(first_task):.1f}-{max(first_task):.1f}s, it starts dag.test's "
        f"in-process API), and {waits} reschedule(s) (10 s each). Each task function imports only what its "
        "body needs (the DAG file parses in ~0.1 s), but `airflow dags test` runs every task in one process, "
        "so the pipeline's imports are paid once, by the first `sync`. The start-up part swells with the "
        "machine's load.",
    ]
    return "\n".join(f"- {b}" for b in bullets)


def dagrun_notes(first: dict, nothing_new: list[dict], scheduled: list[dict], pipeline: list[dict]) -> str:
    lines = ["| DagRun | wall s | in `sync` tasks s | in `plan` s | in `summarize` s | reschedules | "
             "processes | peak RSS of the tree MB | largest process MB |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for label, run in [("first", first), *((f"nothing new {i + 1}", r) for i, r in enumerate(nothing_new)),
                       *(("own data interval", r) for r in scheduled)]:
        t = run["task_seconds"]
        lines.append(f"| {label} | {run['seconds']:.1f} | {t.get('sync', 0):.1f} | {t.get('plan', 0):.1f} | "
                     f"{t.get('summarize', 0):.1f} | {run['reschedules']} | {run['max_processes']} | "
                     f"{run['peak_rss_mb']:.0f} | {run['peak_single_rss_mb']:.0f} |")
    outside = first["seconds"] - first["task_seconds"].get("sync", 0)
    lines += [
        "",
        f"The first run spent {first['task_seconds'].get('sync', 0):.1f}s in its `sync` tasks (the pipeline "
        f"alone took {min(r['seconds'] for r in pipeline):.1f}-{max(r['seconds'] for r in pipeline):.1f}s "
        f"on the same data) and {outside:.1f}s outside them: the CLI's "
        "start-up, parsing the DAG, the first task (which also starts dag.test's in-process execution API), "
        "`summarize`, and any reschedule wait (`WAIT_POLL` = 10 s, only while another run holds a task's "
        "days). `dag.test` runs the mapped `sync` tasks one at a time.",
    ]
    return "\n".join(lines)


def scaling_notes(scaling: dict[int, list[dict]], serial: list[dict], parallel: dict) -> str:
    lines = ["| lines | processes | best wall s | s per 1M lines | parent CPU s per 1M lines | peak RSS parent MB | "
             "parent RSS over imports MB | peak RSS largest worker MB | workers | peak RSS total MB |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for lines_count, runs in sorted(scaling.items()):
        b = best(runs)
        per = 1e6 / b["read"]
        workers = max(r["workers"] for r in runs)
        worker_mb = f"{max(r['peak_worker_mb'] for r in runs):.0f}" if workers else "-"
        lines.append(f"| {lines_count:,} | {b['processes'] or 1} | {b['seconds']:.2f} | {b['seconds'] * per:.2f} | "
                     f"{b['cpu_seconds'] * per:.2f} | {max(r['peak_parent_mb'] for r in runs):.0f} | "
                     f"{max(r['peak_rss_mb'] - r['baseline_rss_mb'] for r in runs):.0f} | {worker_mb} | {workers} | "
                     f"{max(r['peak_total_mb'] for r in runs):.0f} |")
    serial_s = sum(r["seconds"] for r in serial)
    lines += [
        "",
        f"Two days ({serial[0]['read']:,} + {serial[1]['read']:,} lines), two fresh processes sharing the "
        f"ledger and state like two mapped tasks: {serial_s:.2f}s one after the other, {parallel['seconds']:.2f}s "
        f"at once (x{serial_s / parallel['seconds']:.2f}; the emulator and other people's processes share the "
        f"same 2 cores: {parallel['others_cores']:.2f} cores went to others meanwhile). A process peaked at "
        f"{max(s['peak_rss_mb'] for s in serial):.0f} MB alone and {parallel['peak_rss_mb']:.0f} MB (the larger) "
        "at once.",
    ]
    return "\n".join(lines)


def profile_notes(results: dict[str, Any]) -> str:
    prof, run = results["profile"], results["profile_run"]
    costs, stages = prof["costs"], prof["stages"]
    lines = [
        f"One run over the {results['sizes']['lines']:,}-line archive with cProfile on: {run['seconds']:.1f}s "
        f"(profiler overhead included; {best(results['pipeline'])['seconds']:.1f}s without). The thread that "
        "sends each chunk and the hook's HTTP threads are not profiled; the main thread's wait for the previous "
        "chunk's send has its own row. "
        f"Raw profile: `{Path(prof['path']).relative_to(BENCH.parent)}`.",
        "",
        "| stage (cumulative) | s | share |",
        "|---|--:|--:|",
        *(f"| {s['stage']} | {s['seconds']:.2f} | {s['share']:.0%} |" for s in stages),
        "",
        "Top five by own time:",
        "",
        "| function | calls | own s | cumulative s |",
        "|---|--:|--:|--:|",
        *(f"| `{r['function']}` | {r['calls']:,} | {r['own_s']:.2f} | {r['cumulative_s']:.2f} |" for r in costs["own"]),
        "",
        "Top five by cumulative time (the frames that only loop and delegate, `sync_partition`, "
        "`UnitSync.run/_chunk` and `ArchiveSource.chunks`, left out):",
        "",
        "| function | calls | own s | cumulative s |",
        "|---|--:|--:|--:|",
        *(f"| `{r['function']}` | {r['calls']:,} | {r['own_s']:.2f} | {r['cumulative_s']:.2f} |"
          for r in costs["cumulative"]),
    ]
    return "\n".join(lines)


def noise_notes(results: dict[str, Any]) -> str:
    measured = [results["dagrun_first"], *results["dagrun_again"], *results["pipeline"], *results["pool"],
                *results["floor"],
                *results["naive"], *results["seed"], results["parallel"], *results["serial"],
                *(r for runs in results["scaling"].values() for r in runs)]
    loads = [m[k] for m in measured for k in ("load_before", "load_after")]
    others = [m["others_cores"] for m in measured]
    p = results["pipeline"]
    cpu_ratio = [r["cpu_seconds"] / r["seconds"] for r in p]
    emulator = [r["emulator_cpu_seconds"] for r in p]
    return (
        f"1-minute load average over the measurements: {min(loads):.2f}-{max(loads):.2f} on 2 cores "
        f"(this benchmark itself keeps 1-2 cores busy while it measures). Other people's processes "
        f"used {min(others):.2f}-{max(others):.2f} cores (mean {sum(others) / len(others):.2f}) during the "
        f"measurements. The pipeline process used {min(cpu_ratio):.2f}-{max(cpu_ratio):.2f} CPU-seconds per "
        f"wall second and the emulator {min(emulator):.1f}-{max(emulator):.1f} CPU-seconds per pipeline run: "
        "on 2 shared cores the pipeline, the emulator and everyone else compete, so wall times here are "
        "upper bounds; the *CPU s* column is the steadier figure. Ratios between rows measured "
        "back to back (pipeline vs floor, interleaved run by run) are steadier than the absolute numbers."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each: a smoke check")
    parser.add_argument("--runs", type=int, help="fresh-process runs per pipeline/floor measurement")
    parser.add_argument("--output", type=Path, help="markdown file (default bench/RESULTS.md; --quick: bench/data)")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    if args.runs:
        sizes["runs"] = args.runs
    output = args.output or (DATA / "RESULTS-quick.md" if args.quick else BENCH / "RESULTS.md")
    command = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load1 {os.getloadavg()[0]:.2f}] {message}", flush=True)

    info, code = machine(), code_version()
    started = time.perf_counter()
    results = measure(sizes, log)
    results["machine"], results["quick"], results["code"] = info, args.quick, code
    DATA.mkdir(exist_ok=True)
    (DATA / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps(results, indent=1, default=str))
    text = render(results, info, command, time.perf_counter() - started)
    tail = kept_tail(output)
    output.write_text(text + ("\n" + tail if tail else ""))
    print(text)
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
