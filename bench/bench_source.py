"""Benchmark of the source side: archive reading + transform + dedup, against a floor and a naive way.

    .venv/bin/python bench/bench_source.py                 # 100k and 1M lines, 3 runs each
    .venv/bin/python bench/bench_source.py --profile       # plus a cProfile of our path on 1M lines

Generates one-day archives (~650-byte lines, no nasty cases) into bench/data/ once, then measures,
each run in a fresh subprocess so peak RSS belongs to that run alone:
- floor: gunzip (ISA-L, as our reader) + orjson.loads of every line (the least any reader must do);
- naive: pandas.read_json(lines=True) + to_dict("records") per object;
- ours: ArchiveSource (list_partition + iter_line_chunks + transform_chunk) + SeenIds, as the sync runs it (no HTTP).
Prints wall time (best of --runs), lines/s, the ratio to the floor and peak RSS (largest of the runs).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import subprocess
import sys
import time
from pathlib import Path

from _common import (  # shared with the other benchmarks
    DAY,
    SOURCE_ID,
    archive_for,
    gz_objects,
    peak_rss_mb,
    read_and_dedup,
)

from hyperline_sync.config.models import TuningConfig  # no pandas; pydantic (~15 MB, in every Airflow worker)

CHUNK_LINES = TuningConfig().chunk_size  # the config's default
MODES = ("floor", "naive", "ours")


def measure_floor(root: Path) -> dict:
    import orjson
    from isal import isal_zlib  # the fastest inflate at hand, as the pipeline's own reader uses

    lines = 0
    loads = orjson.loads
    for path in gz_objects(root):
        inflater = isal_zlib.decompressobj(wbits=31)
        pending = b""
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                parts = (pending + inflater.decompress(block)).split(b"\n")
                pending = parts.pop()
                for line in parts:
                    loads(line)
                lines += len(parts)
    return {"lines": lines}


def measure_naive(root: Path) -> dict:
    import pandas as pd

    lines = 0
    for path in gz_objects(root):
        records = pd.read_json(path, lines=True, compression="gzip").to_dict("records")
        lines += len(records)
    return {"lines": lines}


def measure_ours(root: Path) -> dict:
    from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig
    from hyperline_sync.sources.base import ArchiveSource

    source = S3ArchiveSourceConfig(url=f"file://{root}", source_id=SOURCE_ID)
    totals = read_and_dedup(ArchiveSource(PipelineConfig(name="bench", source=source)), DAY, CHUNK_LINES)
    return {"lines": totals.pop("read"), **totals}


def child(mode: str, root: Path) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import orjson  # noqa: F401 - imported before the baseline so every mode pays the same imports
    import pandas  # noqa: F401

    import hyperline_sync.pipeline.transform  # noqa: F401

    baseline = peak_rss_mb()  # not ru_maxrss, which can hold the parent's peak (see _common.peak_rss_mb)
    cpu, started = time.process_time(), time.perf_counter()
    result = {"floor": measure_floor, "naive": measure_naive, "ours": measure_ours}[mode](root)
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - cpu
    result["peak_rss_mb"] = peak_rss_mb()
    result["baseline_rss_mb"] = baseline
    print(json.dumps(result))


def run_child(mode: str, root: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--data", str(root)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile_ours(root: Path, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(measure_ours, root)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per measurement (best time kept)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--profile", action="store_true", help="cProfile our path on the largest archive")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return

    print(f"python {sys.version.split()[0]}, chunk {CHUNK_LINES} lines, best of {args.runs} fresh processes")
    print(
        f"{'mode':<7}{'lines':>10}{'wall s':>9}{'lines/s':>11}{'x floor':>9}{'peak RSS MB':>13}{'(+ over imports)':>18}"
    )
    ours_rss: dict[int, float] = {}
    for lines in args.lines:
        root = archive_for(lines)
        floor_seconds = None
        for mode in args.modes:
            runs = [run_child(mode, root) for _ in range(args.runs)]
            best = min(run["seconds"] for run in runs)
            peak = max(run["peak_rss_mb"] for run in runs)
            extra = max(run["peak_rss_mb"] - run["baseline_rss_mb"] for run in runs)
            if mode == "floor":
                floor_seconds = best
            ratio = f"{best / floor_seconds:.2f}" if floor_seconds else "-"
            if mode == "ours":
                ours_rss[lines] = peak
            print(
                f"{mode:<7}{runs[0]['lines']:>10}{best:>9.2f}{runs[0]['lines'] / best:>11,.0f}{ratio:>9}"
                f"{peak:>13.0f}{extra:>18.0f}"
            )
    if len(ours_rss) >= 2:
        small, large = min(ours_rss), max(ours_rss)
        print(f"ours: peak RSS({large}) - peak RSS({small}) = {ours_rss[large] - ours_rss[small]:.0f} MB")
    if args.profile:
        print(profile_ours(archive_for(max(args.lines)), 25))


if __name__ == "__main__":
    main()
