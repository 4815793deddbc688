"""The pipeline against the seed's way (one POST per event) when every request costs a round trip.

    .venv/bin/python bench/bench_network.py                         # 0, 20, 50 ms; 300k lines over 3 days
    .venv/bin/python bench/bench_network.py --latency 0 50 --lines 1000000 --runs 3
    .venv/bin/python bench/bench_network.py --runs 3 --baseline ../main   # before/after, interleaved

The emulator (its own process, `--no-store`) sleeps `Faults.latency_ms` before answering each
request, in the thread serving it, so concurrent requests wait concurrently, as over a real link.
At each latency: the pipeline as bench_pipeline.py runs it (a fresh process, sync_partition per
day, the real HyperlineHook) and the seed's way on one keep-alive session. The seed posts
`--seed-events` events on loopback and `--seed-events-latent` with a round trip (at 20 ms it
manages ~45 events/s, so a few hundred suffice). Reported per row: events/s, requests, requests
per event, the most requests the emulator served at once, and the pipeline's figures against
the seed's at the same latency and against its own at 0 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import requests
from _common import DATA, EMULATOR_KEY, Meter, admin, archive_days, archive_for, write_config
from bench_pipeline import Emulator, run_pipeline
from bench_source import CHUNK_LINES

LATENCIES_MS = (0, 20, 50)
TARGETS = {"x_seed": 1000, "requests_share": 1 / 1000, "latency_cost": 0.10}


def seed_events(archive: Path, count: int) -> list[dict]:
    """The first `count` Hyperline events of the archive, exactly as the pipeline builds them."""
    from hyperline_sync.config import load_config
    from hyperline_sync.pipeline.sync import to_events
    from hyperline_sync.sources.base import open_source

    config = load_config(write_config(DATA / "runs" / "seed" / "pipelines.yaml", archive, DATA / "runs" / "seed"))
    source = open_source(config.pipeline("bench"))
    events: list[dict] = []
    for unit in source.list_units(archive_days(1)[0]):
        for chunk in source.chunks(unit, CHUNK_LINES):
            events.extend(to_events(chunk.events))
            if len(events) >= count:
                return events[:count]
    return events


def seed_way(emulator: Emulator, events: list[dict]) -> dict[str, Any]:
    """What the Segment destination function does: one POST /v1/events per event.

    Generous to it: one keep-alive session (a function invocation per event would open connections),
    events prepared beforehand (only the posting is timed).
    """
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {EMULATOR_KEY}", "Content-Type": "application/json"})
    url = f"{emulator.url}/v1/events"
    requests_before = admin(emulator.url, "/_emulator/stats")["requests"]
    cpu_before = emulator.cpu()
    statuses: dict[int, int] = {}
    meter = Meter(extra=[emulator.ps])
    for event in events:
        status = session.post(url, data=orjson.dumps(event), timeout=30).status_code
        statuses[status] = statuses.get(status, 0) + 1
    meter.stop()
    session.close()
    if statuses != {201: len(events)}:
        raise RuntimeError(f"the seed's way got {statuses}")
    return {**meter.as_dict(), "sent": len(events), "read": len(events),
            "requests": admin(emulator.url, "/_emulator/stats")["requests"] - requests_before,
            "emulator_cpu_seconds": emulator.cpu() - cpu_before}


def measure_network(emulator: Emulator, archive: Path, days: list[dt.date], latencies: tuple[int, ...] = LATENCIES_MS,
                    seed_count: int = 2_000, seed_count_latent: int = 300, runs: int = 1,
                    baseline: Path | None = None) -> list[dict[str, Any]]:
    """At each latency (ms), the pipeline's best of `runs` and the seed's way; the emulator's latency is
    left at 0. The latencies take turns run by run, so that the machine's load drifts over all of them
    alike. With `baseline` (another checkout, e.g. a worktree of main), the pipeline also runs with
    its include/ and plugins/, interleaved with this code's runs. One dict per latency: {"latency_ms",
    "pipeline", "seed"} and "baseline", each a run's figures plus "max_concurrent" (the most requests
    the emulator served at once)."""
    events = seed_events(archive, max(seed_count, seed_count_latent))
    codes = {"pipeline": None, **({"baseline": baseline} if baseline else {})}
    runs_of: dict[tuple[str, int], list[dict[str, Any]]] = {(code, ms): [] for code in codes for ms in latencies}
    seed: dict[int, dict[str, Any]] = {}
    try:
        for run in range(runs):
            for code, checkout in codes.items():
                for latency in latencies:
                    admin(emulator.url, "/_emulator/faults", {"latency_ms": latency})
                    with _code_of(checkout):
                        result = run_pipeline(emulator, archive, days, f"network-{latency}ms")  # resets counters
                    result["max_concurrent"] = admin(emulator.url, "/_emulator/stats")["max_concurrent"]
                    runs_of[code, latency].append(result)
                    if run == 0 and code == "pipeline":
                        admin(emulator.url, "/_emulator/reset", {})
                        seed[latency] = seed_way(emulator, events[: seed_count if latency == 0 else seed_count_latent])
                        seed[latency]["max_concurrent"] = admin(emulator.url, "/_emulator/stats")["max_concurrent"]
    finally:
        admin(emulator.url, "/_emulator/faults", {})
    return [{"latency_ms": ms, "seed": seed[ms],
             **{code: min(runs_of[code, ms], key=lambda r: r["seconds"]) for code in codes}} for ms in latencies]


@contextlib.contextmanager
def _code_of(checkout: Path | None) -> Iterator[None]:
    """Pipeline children started inside run the code of `checkout` (None: this one's, as PYTHONPATH says)."""
    if checkout is None:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = f"{checkout / 'include'}{os.pathsep}{checkout / 'plugins'}"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def compare_round_trips(archive: Path, rtts_ms: tuple[int, ...], *, seed_events: int, days: int = 3,
                        runs: int = 1, seed_events_latent: int = 300) -> list[dict[str, Any]]:
    """`measure_network` on its own emulator, as bench_all.py reports it: one dict per round trip with
    `rtt_ms`, `seed_events_per_s`, `seed_requests`, `seed_events`, `pipeline_events_per_s`,
    `pipeline_requests`, `pipeline_events` and `pipeline_max_concurrent`. The seed's way posts
    `seed_events` on loopback and at most `seed_events_latent` with a round trip."""
    emulator = Emulator()
    try:
        rows = measure_network(emulator, archive, archive_days(days), rtts_ms, seed_events,
                               min(seed_events, seed_events_latent), runs)
    finally:
        emulator.close()
    return [{"rtt_ms": row["latency_ms"], "seed_events_per_s": events_per_s(row["seed"]),
             "seed_requests": row["seed"]["requests"], "seed_events": row["seed"]["sent"],
             "pipeline_events_per_s": events_per_s(row["pipeline"]), "pipeline_requests": row["pipeline"]["requests"],
             "pipeline_events": row["pipeline"]["sent"], "pipeline_max_concurrent": row["pipeline"]["max_concurrent"]}
            for row in rows]


def events_per_s(run: dict[str, Any]) -> float:
    return run["sent"] / run["seconds"]


def render_network(rows: list[dict[str, Any]]) -> str:
    """A markdown table of `measure_network`'s rows, and the targets' verdicts."""
    loopback = {code: next((events_per_s(r[code]) for r in rows if r["latency_ms"] == 0), None)
                for code in ("pipeline", "baseline") if code in rows[0]}
    lines = [
        "| round trip | way | events | requests | requests/event | most at once | wall s | events/s "
        "| pipeline / seed | of loopback | CPU s | others' cores |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    verdicts = []
    for row in rows:
        latency, pipe, seed = row["latency_ms"], row["pipeline"], row["seed"]
        x_seed = events_per_s(pipe) / events_per_s(seed)
        share = pipe["requests"] / pipe["sent"]
        of_loopback = events_per_s(pipe) / loopback["pipeline"] if loopback["pipeline"] else None
        ways = [(code, row[code], _ours(row[code], seed, loopback[code])) for code in loopback]
        for way, run, extra in (*ways, ("seed", seed, ["", "", ""])):
            cells = [f"{latency} ms", way, f"{run['sent']:,}", f"{run['requests']:,}",
                     f"{run['requests'] / run['sent']:.5f}", str(run["max_concurrent"]), f"{run['seconds']:.2f}",
                     f"{events_per_s(run):,.0f}", *extra, f"{run['others_cores']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        if latency == 20:
            verdicts.append(f"- 20 ms: pipeline {x_seed:,.0f}x the seed's events/s (target ≥ {TARGETS['x_seed']:,}x), "
                            f"1/{1 / share:,.0f} of its requests (target ≤ 1/1,000): "
                            f"{verdict(x_seed >= TARGETS['x_seed'] and share <= TARGETS['requests_share'])}")
        if latency == 50 and of_loopback is not None:
            verdicts.append(f"- 50 ms: {of_loopback:.0%} of the loopback events/s (target ≥ 90%, a cost ≤ 10%): "
                            f"{verdict(1 - of_loopback <= TARGETS['latency_cost'])}")
    return "\n".join([*lines, "", *verdicts])


def _ours(run: dict[str, Any], seed: dict[str, Any], loopback: float | None) -> list[str]:
    """A pipeline row's cells: x the seed's events/s, share of its own loopback events/s, CPU s."""
    of_loopback = f"{events_per_s(run) / loopback:.0%}" if loopback else "-"
    return [f"{events_per_s(run) / events_per_s(seed):,.0f}x", of_loopback, f"{run['cpu_seconds']:.1f}"]


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=int, nargs="+", default=list(LATENCIES_MS), help="round trips, ms")
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=3, help="received days the lines are spread over")
    parser.add_argument("--runs", type=int, default=1, help="fresh pipeline processes per latency (best kept)")
    parser.add_argument("--seed-events", type=int, default=2_000, help="the seed's events on loopback")
    parser.add_argument("--seed-events-latent", type=int, default=300, help="the seed's events with a round trip")
    parser.add_argument("--baseline", type=Path, help="a checkout (e.g. a worktree of main) whose pipeline also runs, "
                        "interleaved: before/after figures under the same load")
    args = parser.parse_args()
    archive = archive_for(args.lines, args.days)
    emulator = Emulator()
    try:
        rows = measure_network(emulator, archive, archive_days(args.days), tuple(args.latency),
                               args.seed_events, args.seed_events_latent, args.runs, args.baseline)
    finally:
        emulator.close()
    print(render_network(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
