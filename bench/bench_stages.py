"""Where the main thread's time goes, stage by stage, without a profiler's overhead.

    .venv/bin/python bench/bench_stages.py                 # the 1M-line, one-day archive, best of 3 passes
    .venv/bin/python bench/bench_stages.py --lines 100000

Runs the sync's main-thread path over the archive (no sending) with a clock around each stage:
- read: the next chunk of lines (ISA-L inflate, line split; `archive.iter_line_chunks`);
- transform: `transform.transform_chunk` (msgspec decode, checks, records, the frame);
- dedup: `SeenIds.filter` and collecting the delivered ids;
- to_events: `sync.to_events`, including freeing the previous chunk's events and records, which is
  where the sync frees them too;
- commit: `SeenIds.commit_object` per object (ids to Parquet).
cProfile (bench_pipeline.py --profile) doubles the run time and inflates the per-call stages; these
figures add up to the real wall time. The cyclic GC runs as in a sync (`sync._gc_relaxed`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import DAY, SOURCE_ID, archive_for

from hyperline_sync.config.models import PipelineConfig, S3ArchiveSourceConfig, TuningConfig
from hyperline_sync.pipeline.dedup import SeenIds
from hyperline_sync.pipeline.sync import _gc_relaxed, to_events
from hyperline_sync.pipeline.transform import transform_chunk
from hyperline_sync.sources.archive.reading import iter_line_chunks
from hyperline_sync.sources.base import ArchiveSource

STAGES = ("read", "transform", "dedup", "to_events", "commit")


def one_pass(source: ArchiveSource, chunk_size: int) -> tuple[dict[str, float], int]:
    spent = dict.fromkeys(STAGES, 0.0)
    lines = 0
    clock = time.perf_counter
    with tempfile.TemporaryDirectory() as state, _gc_relaxed():
        seen = SeenIds(Path(state), "bench", DAY, 7)
        events: list[dict] = []
        for unit in source.list_units(DAY):
            delivered: list[str] = []
            chunks = iter_line_chunks(source.store, unit, chunk_size)
            while True:
                started = clock()
                chunk = next(chunks, None)
                read = clock()
                spent["read"] += read - started
                if chunk is None:
                    break
                result = transform_chunk(chunk, source.mapping)
                transformed = clock()
                fresh, _ = seen.filter(result.events)
                delivered.extend(fresh["message_id"].tolist())
                deduped = clock()
                events = to_events(fresh)  # drops the previous chunk's events here
                spent["transform"] += transformed - read
                spent["dedup"] += deduped - transformed
                spent["to_events"] += clock() - deduped
                lines += result.read
            started = clock()
            seen.commit_object(unit.key, delivered)
            spent["commit"] += clock() - started
        del events
    return spent, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=3, help="passes over the archive; the fastest is shown")
    args = parser.parse_args()
    root = archive_for(args.lines)
    config = PipelineConfig(name="bench", source=S3ArchiveSourceConfig(url=f"file://{root}", source_id=SOURCE_ID))
    source = ArchiveSource(config)
    passes = [one_pass(source, TuningConfig().chunk_size) for _ in range(args.passes)]
    spent, lines = min(passes, key=lambda p: sum(p[0].values()))
    total = sum(spent.values())
    print(f"{lines:,} lines, chunk {TuningConfig().chunk_size:,}, fastest of {args.passes} passes: {total:.2f} s")
    for stage in STAGES:
        print(f"  {stage:<10} {spent[stage]:6.2f} s  {spent[stage] / lines * 1e6:5.2f} us/line  "
              f"{spent[stage] / total:4.0%}")


if __name__ == "__main__":
    main()
