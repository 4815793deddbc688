"""Generator of realistic Segment S3 archives, with the nasty cases real archives contain.

Writes `<root>/segment-logs/<source_id>/<day-ms>/<upload-ms>-<token>.gz` (gzipped NDJSON, ~650
bytes a line: analytics.js, server and mobile `track` calls plus identify/page/screen/group/alias),
and returns a `SampleManifest` of what a correct reader must find. The manifest is worked out by
the generator from what it wrote, never by running the transform: every line is written with its
known outcome (deliverable, duplicate, rejected with a reason, skipped).

Expectations assume the default mapping, days processed in ascending order, objects in key order,
and a dedup window of at least one day (cross-day duplicates are one day apart).

With `nasty=True` each day also holds: duplicates (same chunk, same object far apart, another
object, the previous day, and one previous-day copy with a different timestamp: the first copy
must win), malformed JSON, invalid UTF-8, non-object JSON, numeric / missing / null / empty
userIds, a boolean userId, nested properties, arrays of objects, mixed arrays, nulls, a property
named `id`, a 10 KB string, unicode event names, months-old and future timestamps, `+hh:mm`
offsets with microseconds, nanosecond fractions, unparseable and missing timestamps, missing
messageId / event, an empty line and a CRLF line; the first day also has a line over 1 MiB and an
object that is plain NDJSON despite its `.gz` name. Decoys that must never be read:
`segment-logs/dummy-object.txt`, `segment-logs/test/segment-logs/...`, another source's folder,
a nested folder and a non-.gz file inside the day folder. Every JSON object line carries a
`writeKey` (`manifest.write_key`) so tests can grep outputs for leaks.

CLI: `python -m hyperline_devtools.sample_archive --out DIR --source-id X --start YYYY-MM-DD --days 3
--events-per-day 10000 [--clean] [--seed N] [--clean-data]`.
"""

from __future__ import annotations

import argparse
import calendar
import gzip
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

import orjson

from hyperline_devtools.sample_messages import DAY_MS, DayState, Line, MessageWriter, nasty_cases

__all__ = ["ExpectedCounts", "ExpectedEvent", "SampleManifest", "generate_archive", "main"]

_WRITE_BATCH = 5000
_MIN_NASTY_EVENTS = 200


@dataclass
class ExpectedCounts:
    """Where the lines of a generated object or day should end up under the default mapping (what a
    sync must report; the ledger's `Counts` is what it did report)."""

    read: int = 0
    events: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped_properties: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, other: ExpectedCounts) -> None:
        self.read += other.read
        self.events += other.events
        self.duplicates += other.duplicates
        self.skipped += other.skipped
        self.rejected.update(other.rejected)
        self.dropped_properties += other.dropped_properties

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "events": self.events,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "dropped_properties": self.dropped_properties,
        }


@dataclass(frozen=True)
class ExpectedEvent:
    """A Hyperline event the archive must produce: the first-received copy of its messageId."""

    message_id: str
    customer_id: str
    event_type: str
    timestamp: str
    record: dict[str, Any]
    day: date
    key: str
    line_no: int


@dataclass
class SampleManifest:
    root: Path
    source_id: str
    write_key: str
    days: list[date]
    objects: dict[str, ExpectedCounts] = field(default_factory=dict)
    object_days: dict[str, date] = field(default_factory=dict)
    by_day: dict[date, ExpectedCounts] = field(default_factory=dict)
    expected_events: dict[str, ExpectedEvent] = field(default_factory=dict)
    decoy_message_ids: set[str] = field(default_factory=set)
    decoy_keys: list[str] = field(default_factory=list)

    @property
    def lines_total(self) -> int:
        return sum(counts.read for counts in self.by_day.values())

    @property
    def totals(self) -> ExpectedCounts:
        total = ExpectedCounts()
        for counts in self.by_day.values():
            total.add(counts)
        return total

    def summary(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "source_id": self.source_id,
            "write_key": self.write_key,
            "days": {day.isoformat(): self.by_day[day].as_dict() for day in self.days},
            "totals": self.totals.as_dict(),
            "objects": len(self.objects),
            "decoy_keys": self.decoy_keys,
        }


def day_folder_ms(day: date) -> int:
    return calendar.timegm(day.timetuple()) * 1000


# --- writing --------------------------------------------------------------------------------------


def generate_archive(
    root: Path,
    source_id: str,
    days: list[date],
    events_per_day: int,
    seed: int = 0,
    nasty: bool = True,
    objects_per_day: int = 3,
    keep_expected: bool = True,
) -> SampleManifest:
    """Write a sample archive under `root` (the folder that will hold `segment-logs/`).

    `events_per_day` is the number of non-empty lines per day. `keep_expected=False` skips the
    per-event expectations (counts are still kept), for very large archives.
    """
    if objects_per_day < 1 or events_per_day < 1:
        raise ValueError("events_per_day and objects_per_day must be >= 1")
    if nasty and events_per_day < _MIN_NASTY_EVENTS:
        raise ValueError(f"nasty archives need events_per_day >= {_MIN_NASTY_EVENTS}")
    root = Path(root)
    rng = Random(seed)
    write_key = f"wk_SECRET_{rng.getrandbits(64):016x}"
    writer = MessageWriter(source_id, seed, write_key)
    manifest = SampleManifest(root=root, source_id=source_id, write_key=write_key, days=sorted(days))
    seen: dict[str, date] = {}
    previous: list[Line] = []
    for day_index, day in enumerate(manifest.days):
        previous = _write_day(
            writer, manifest, day, day_index, events_per_day, objects_per_day, nasty, seen, previous, keep_expected
        )
    if nasty:
        _write_decoys(writer, manifest)
    return manifest


def _write_day(
    w: MessageWriter,
    manifest: SampleManifest,
    day: date,
    day_index: int,
    events_per_day: int,
    objects: int,
    nasty: bool,
    seen: dict[str, date],
    previous: list[Line],
    keep_expected: bool,
) -> list[Line]:
    rng = w.rng
    day_ms = day_folder_ms(day)
    folder = manifest.root / "segment-logs" / manifest.source_id / str(day_ms)
    folder.mkdir(parents=True, exist_ok=True)
    cases = nasty_cases(w, day_index, objects) if nasty else []
    non_blank = len(cases) - (1 if nasty else 0)  # the blank line is not counted as read
    if events_per_day - non_blank < objects:
        raise ValueError(f"events_per_day too small for {objects} objects a day")
    sizes = _split(events_per_day - non_blank, objects, rng)
    state = DayState(previous_day=previous)
    day_counts = manifest.by_day.setdefault(day, ExpectedCounts())
    kept: list[Line] = []
    line_index = 0
    for obj_index, size in enumerate(sizes):
        specials = [factory for target, factory in cases if target == obj_index]
        upload_ms = day_ms + (obj_index + 1) * (DAY_MS // (objects + 1))
        key = f"segment-logs/{manifest.source_id}/{day_ms}/{upload_ms}-{rng.getrandbits(40):010x}.gz"
        # Day 0: the last object is plain NDJSON despite its name, the first is multi-member gzip.
        encoding = "gzip"
        if nasty and day_index == 0:
            encoding = "plain" if obj_index == objects - 1 else "members" if obj_index == 0 else "gzip"
        counts = ExpectedCounts()
        state.first_of_object = None
        lines = _object_lines(w, day_ms, size, specials, state, events_per_day, line_index)
        _write_object(manifest.root / key, lines, counts, manifest, key, day, seen, encoding, keep_expected, kept)
        line_index += size
        manifest.objects[key] = counts
        manifest.object_days[key] = day
        day_counts.add(counts)
    return kept[:2]


def _split(total: int, parts: int, rng: Random) -> list[int]:
    """`parts` object sizes (in regular lines) adding up to `total`, uneven like real uploads."""
    weights = [rng.uniform(0.6, 1.4) for _ in range(parts)]
    sizes = [int(total * weight / sum(weights)) for weight in weights]
    sizes[-1] += total - sum(sizes)
    return sizes


def _object_lines(
    w: MessageWriter,
    day_ms: int,
    size: int,
    specials: list[Callable[[int, DayState], Line]],
    state: DayState,
    events_per_day: int,
    first_index: int,
) -> Iterator[Line]:
    """Regular lines with the object's special lines at random positions after a few regular ones."""
    rng = w.rng
    positions = sorted(rng.randrange(1, size + 1) for _ in specials)
    special_at: dict[int, list[Callable[[int, DayState], Line]]] = {}
    for position, factory in zip(positions, specials, strict=True):
        special_at.setdefault(position, []).append(factory)
    step = DAY_MS // max(events_per_day, 1)
    for i in range(size + 1):
        received_ms = day_ms + (first_index + i) * step + rng.randrange(step or 1)
        for factory in special_at.get(i, ()):
            yield factory(received_ms, state)
        if i == size:
            break
        # Each object opens with a billable call, so every duplicate case has an original to copy.
        line = w.regular(received_ms, "API Call" if i == 0 else None)
        if line.outcome == "deliver":
            state.last_deliverable = line
            if state.first_of_object is None:
                state.first_of_object = line
            if state.first_of_day is None:
                state.first_of_day = line
        yield line


def _write_object(
    path: Path,
    lines: Iterator[Line],
    counts: ExpectedCounts,
    manifest: SampleManifest,
    key: str,
    day: date,
    seen: dict[str, date],
    encoding: str,
    keep_expected: bool,
    kept: list[Line],
) -> None:
    """Write lines as one gzip member, several members (`members`) or uncompressed (`plain`)."""
    batch_size = 50 if encoding == "members" else _WRITE_BATCH
    line_no = 0
    batch: list[bytes] = []
    with open(path, "wb") as raw:
        # mtime=0: the same seed gives byte-identical archives (and ETags).
        gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) if encoding == "gzip" else None

        def flush() -> None:
            data = b"\n".join(batch) + b"\n"
            if gz is not None:
                gz.write(data)
            elif encoding == "members":
                raw.write(gzip.compress(data, compresslevel=3, mtime=0))
            else:
                raw.write(data)
            batch.clear()

        for line in lines:
            line_no += 1
            batch.append(line.data)
            if len(batch) >= batch_size:
                flush()
            _account(line, line_no, counts, manifest, key, day, seen, keep_expected, kept)
        if batch:
            flush()
        if gz is not None:
            gz.close()


def _account(
    line: Line,
    line_no: int,
    counts: ExpectedCounts,
    manifest: SampleManifest,
    key: str,
    day: date,
    seen: dict[str, date],
    keep_expected: bool,
    kept: list[Line],
) -> None:
    if line.outcome == "blank":
        return
    counts.read += 1
    if line.outcome == "skip":
        counts.skipped += 1
    elif line.outcome == "reject":
        counts.rejected[line.reason] += 1
    else:
        assert line.message is not None and line.expected is not None
        counts.dropped_properties += line.dropped
        message_id = line.message["messageId"]
        if message_id in seen:
            counts.duplicates += 1
            return
        seen[message_id] = day
        counts.events += 1
        if len(kept) < 2:
            kept.append(line)
        if keep_expected:
            customer_id, event_type, timestamp, record = line.expected
            manifest.expected_events[message_id] = ExpectedEvent(
                message_id, customer_id, event_type, timestamp, record, day, key, line_no
            )


def _write_decoys(w: MessageWriter, manifest: SampleManifest) -> None:
    """Objects a reader must ignore; their message ids must never be delivered."""
    day = manifest.days[0]
    day_ms = day_folder_ms(day)

    def decoy_lines() -> bytes:
        lines = []
        for _ in range(3):
            message, _, _ = w.track(day_ms + 1000)
            manifest.decoy_message_ids.add(message["messageId"])
            lines.append(orjson.dumps(message))
        return b"\n".join(lines) + b"\n"

    decoys = {
        "segment-logs/dummy-object.txt": b"",
        f"segment-logs/test/segment-logs/{manifest.source_id}/{day_ms}/test-copy.gz": gzip.compress(
            decoy_lines(), mtime=0
        ),
        f"segment-logs/otherSource9/{day_ms}/other.gz": gzip.compress(decoy_lines(), mtime=0),
        f"segment-logs/{manifest.source_id}/{day_ms}/nested/deeper.gz": gzip.compress(decoy_lines(), mtime=0),
        f"segment-logs/{manifest.source_id}/{day_ms}/upload-manifest.json": decoy_lines(),
    }
    for key, data in decoys.items():
        path = manifest.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest.decoy_keys.append(key)


# --- CLI ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hyperline_devtools.sample_archive", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder that will hold segment-logs/")
    parser.add_argument("--source-id", default="demoSrc01")
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first received day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--events-per-day", type=int, default=10_000)
    parser.add_argument("--objects-per-day", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clean", action="store_true", help="delete --out first")
    parser.add_argument("--clean-data", action="store_true", help="no nasty cases or decoys")
    args = parser.parse_args(argv)
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    days = [args.start + timedelta(days=i) for i in range(args.days)]
    manifest = generate_archive(
        args.out,
        args.source_id,
        days,
        args.events_per_day,
        seed=args.seed,
        nasty=not args.clean_data,
        objects_per_day=args.objects_per_day,
        keep_expected=False,
    )
    summary = manifest.summary()
    (args.out / "sample-manifest.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(f"wrote {manifest.lines_total} lines in {len(manifest.objects)} objects under {args.out}")
    print(f"{'day':<12}{'read':>9}{'events':>9}{'dups':>7}{'skipped':>9}{'rejected':>10}")
    for day in manifest.days:
        c = manifest.by_day[day]
        print(f"{day.isoformat():<12}{c.read:>9}{c.events:>9}{c.duplicates:>7}{c.skipped:>9}{c.rejected_total:>10}")
    print(f"writeKey on every line: {manifest.write_key}; summary: {args.out / 'sample-manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
