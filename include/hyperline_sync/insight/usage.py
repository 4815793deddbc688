"""Usage per received day, customer and Hyperline event type: what a run sent (a dry run: wrote).

`UsageTally` is fed the transform's event frame of every slice Hyperline accepted (less the events
it refused), or of every chunk a dry run wrote, so its events add up to the run's `sent` count. Each
add is one vectorised groupby; the small per-slice tables are combined every COMPACT_EVERY adds.
`report.sum_properties` names record fields to sum per event type: their numbers are summed
exactly (ints as ints, floats as the decimals they were sent as); a value that is not a number adds
nothing. A `sum_<field>` cell of an event type the field is not configured for is left empty.

Each sync task writes its days' tables next to their outcomes (`partitions/<day>.usage.csv`);
summarize combines them into the run's `usage.csv`.
"""

from __future__ import annotations

import csv
import math
import os
import re
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hyperline_sync.state.report import run_dir

__all__ = ["KEYS", "UsageTally", "combine", "read_usage", "sum_column", "usage_part_path", "usage_totals",
           "write_usage", "write_usage_part"]

KEYS = ["day", "customer_id", "event_type"]
COMPACT_EVERY = 64
_INTEGER = re.compile(r"^-?\d+$")

Number = int | Decimal


def sum_column(field: str) -> str:
    return f"sum_{field}"


def _number(value: Any) -> Number:
    """An exact number to add: an int as is, a float as the decimal it was written as; else 0."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float and math.isfinite(value):
        return Decimal(repr(value))
    return 0


class UsageTally:
    """The usage of one partition (or of a preview), built while the events are sent."""

    def __init__(self, sum_properties: Mapping[str, Sequence[str]] | None = None) -> None:
        self.sum_properties = {t: tuple(fields) for t, fields in (sum_properties or {}).items()}
        self.fields = sorted({f for fields in self.sum_properties.values() for f in fields})
        self._parts: list[pd.DataFrame] = []
        self._lock = threading.Lock()  # real runs add from the send thread

    def add(self, day: str, events: pd.DataFrame, refused: Collection[str] = ()) -> None:
        """Count `events` (the transform's frame) on `day`, except those whose message id was refused."""
        if refused:
            events = events[~events["message_id"].isin(list(refused))]
        if events.empty:
            return
        frame = pd.DataFrame({"customer_id": events["customer_id"].to_numpy(),
                              "event_type": events["event_type"].to_numpy()})
        for field in self.fields:
            frame[sum_column(field)] = self._values(events, field)
        grouped = frame.groupby(KEYS[1:], sort=False)
        part = grouped.size().to_frame("events")
        for field in self.fields:
            part[sum_column(field)] = grouped[sum_column(field)].sum()
        part = part.reset_index()
        part.insert(0, "day", day)
        with self._lock:
            self._parts.append(part)
            if len(self._parts) >= COMPACT_EVERY:
                self._parts = [combine(self._parts)]

    def _values(self, events: pd.DataFrame, field: str) -> np.ndarray:
        values = np.zeros(len(events), dtype=object)
        types, records = events["event_type"].to_numpy(), events["record"].to_numpy()
        for event_type, fields in self.sum_properties.items():
            if field in fields:
                rows = np.flatnonzero(types == event_type)
                values[rows] = [_number(record.get(field)) for record in records[rows]]
        return values

    def frame(self) -> pd.DataFrame:
        """One row per (day, customer_id, event_type), sorted; sums empty where not configured."""
        with self._lock:
            usage = combine(self._parts, self.fields)
        for field in self.fields:
            configured = [t for t, fields in self.sum_properties.items() if field in fields]
            usage.loc[~usage["event_type"].isin(configured), sum_column(field)] = None
        return usage

    @property
    def events(self) -> int:
        with self._lock:
            return int(sum(int(part["events"].sum()) for part in self._parts))


def _exact_sum(values: Iterable[Any]) -> Number | None:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(present) if present else None


def combine(frames: Sequence[pd.DataFrame], fields: Iterable[str] = (), keys: Sequence[str] = KEYS) -> pd.DataFrame:
    """Usage tables added up per `keys`, sorted; a sum is empty only where every table's was."""
    keys = list(keys)
    sums = sorted({*(sum_column(f) for f in fields),
                   *(c for frame in frames for c in frame.columns if c.startswith("sum_"))})
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in [*keys, "events", *sums]})
    usage = pd.concat(frames, ignore_index=True)
    for column in sums:
        if column not in usage:
            usage[column] = None
        usage[column] = usage[column].astype(object)
    grouped = usage.groupby(keys, sort=True)
    combined = grouped["events"].sum().astype("int64").to_frame()
    for column in sums:  # Python sums: pandas would make floats of ints and decimals
        combined[column] = pd.Series([_exact_sum(values) for values in grouped[column].apply(list)],
                                     index=combined.index, dtype=object)
    return combined.reset_index()[[*keys, "events", *sums]]


def usage_totals(usage: pd.DataFrame) -> pd.DataFrame:
    """The table over all its days: one row per (customer_id, event_type)."""
    return combine([usage.drop(columns="day")], keys=KEYS[1:])


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def write_usage(path: Path, usage: pd.DataFrame) -> Path:
    """The table as CSV (atomically): numbers exact, an empty cell for a sum not configured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(usage.columns)
        writer.writerows([_cell(v) for v in row] for row in usage.itertuples(index=False, name=None))
    os.replace(tmp, path)
    return path


def _parse_number(text: str) -> Number | None:
    if not text:
        return None
    return int(text) if _INTEGER.match(text) else Decimal(text)


def read_usage(path: Path) -> pd.DataFrame:
    """A table `write_usage` wrote, with its ids as strings and its sums exact."""
    usage = pd.read_csv(path, dtype=str, keep_default_na=False)
    usage["events"] = usage["events"].astype("int64")
    for column in usage.columns:
        if column.startswith("sum_"):
            usage[column] = pd.Series([_parse_number(v) for v in usage[column]], index=usage.index, dtype=object)
    return usage


def usage_part_path(output_dir: Path, pipeline: str, run_id: str, day: str) -> Path:
    return run_dir(output_dir, pipeline, run_id) / "partitions" / f"{day}.usage.csv"


def write_usage_part(output_dir: Path, pipeline: str, run_id: str, day: str, tally: UsageTally) -> Path:
    return write_usage(usage_part_path(output_dir, pipeline, run_id, day), tally.frame())
