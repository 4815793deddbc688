"""Usage per received day, customer and Hyperline event type: what a run sent (a dry run: wrote).

`UsageTally` is fed the transform's event frame of every slice Hyperline accepted (less the events
it refused), or of every chunk a dry run wrote, so its events add up to the run's `sent` count. Each
add groups the rows by integer codes (factorize, bincount) and adds one count per distinct
(customer, event type) to the tally.
`report.sum_properties` names record fields to sum per event type: their numbers are summed
exactly (ints as ints, floats as the decimals they were sent as); a value that is not a number adds
nothing. A `sum_<field>` cell of an event type the field is not configured for is left empty.

Each sync task writes its days' tables next to their outcomes (`partitions/<day>.usage.csv`);
summarize combines them into the run's `usage.csv`.
"""

from __future__ import annotations

import csv
import io
import math
import re
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hyperline_sync.state import store
from hyperline_sync.state.report import run_dir
from hyperline_sync.state.store import Location

__all__ = ["KEYS", "UsageTally", "combine", "read_usage", "sum_column", "usage_part_path", "usage_totals",
           "write_usage", "write_usage_part"]

KEYS = ["day", "customer_id", "event_type"]
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


def _key_sums(keys: np.ndarray, values: list[Any]) -> dict[int, Number]:
    """Exact sums of `values` per key. Integers whose sums stay below 2**53 (counts, milliseconds,
    bytes: the usual case) are added by a bincount, exactly in float64; anything else one by one."""
    if values and all(type(v) is int for v in values):
        ints = np.array(values, dtype=object)
        if max(abs(int(ints.max())), abs(int(ints.min()))) * len(values) < 2**53:
            totals = np.bincount(keys, weights=ints.astype(np.float64))
            return {key: int(totals[key]) for key in np.unique(keys).tolist()}
    sums: dict[int, Number] = {}
    for key, value in zip(keys.tolist(), values, strict=True):
        sums[key] = sums.get(key, 0) + _number(value)
    return sums


class UsageTally:
    """The usage of one partition (or of a preview), built while the events are sent."""

    def __init__(self, sum_properties: Mapping[str, Sequence[str]] | None = None) -> None:
        self.sum_properties = {t: tuple(fields) for t, fields in (sum_properties or {}).items()}
        self.fields = sorted({f for fields in self.sum_properties.values() for f in fields})
        # (day, customer_id, event_type) -> [events, one exact sum per field]
        self._rows: dict[tuple[str, str, str], list[Any]] = {}
        self._lock = threading.Lock()  # real runs add from the send thread

    def add(self, day: str, events: pd.DataFrame, refused: Collection[str] = ()) -> None:
        """Count `events` (the transform's frame) on `day`, except those whose message id was refused."""
        if refused:
            events = events[~events["message_id"].isin(list(refused))]
        if events.empty:
            return
        # Rows grouped by integer codes: a factorize and a bincount cost a fraction of a groupby.
        customer_codes, customers = pd.factorize(events["customer_id"])
        type_codes, types = pd.factorize(events["event_type"])
        customer_of, type_of = customers.tolist(), types.tolist()
        width = len(type_of)
        keys = customer_codes.astype(np.int64) * width + type_codes
        counts = np.bincount(keys)
        present = np.flatnonzero(counts)
        sums = [self._sums(events, keys, type_of, field) for field in self.fields]
        with self._lock:
            for key, n in zip(present.tolist(), counts[present].tolist(), strict=True):
                row = self._rows.setdefault((day, customer_of[key // width], type_of[key % width]),
                                            [0] * (1 + len(self.fields)))
                row[0] += n
                for i, by_key in enumerate(sums, start=1):
                    row[i] += by_key.get(key, 0)

    def _sums(self, events: pd.DataFrame, keys: np.ndarray, types: list[str], field: str) -> dict[int, Number]:
        """Group key -> exact sum of `field` over the rows of the event types it is summed for."""
        sums: dict[int, Number] = {}
        records = events["record"].to_numpy()
        for event_type, fields in self.sum_properties.items():
            if field not in fields or event_type not in types:
                continue
            rows = np.flatnonzero(events["event_type"].to_numpy() == event_type)
            values = [record.get(field) for record in records[rows]]
            for key, total in _key_sums(keys[rows], values).items():
                sums[key] = sums.get(key, 0) + total
        return sums

    def frame(self) -> pd.DataFrame:
        """One row per (day, customer_id, event_type), sorted; sums empty where not configured."""
        columns = [*KEYS, "events", *(sum_column(f) for f in self.fields)]
        with self._lock:
            rows = [[*key, *values] for key, values in sorted(self._rows.items())]
        usage = pd.DataFrame(rows, columns=columns, dtype=object)
        usage["events"] = usage["events"].astype("int64")
        for field in self.fields:
            configured = [t for t, fields in self.sum_properties.items() if field in fields]
            usage.loc[~usage["event_type"].isin(configured), sum_column(field)] = None
        return usage


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


def write_usage(path: Location, usage: pd.DataFrame) -> Location:
    """The table as CSV (atomically): numbers exact, an empty cell for a sum not configured."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(usage.columns)
    writer.writerows([_cell(v) for v in row] for row in usage.itertuples(index=False, name=None))
    store.write_bytes(path, out.getvalue().encode())
    return path


def _parse_number(text: str) -> Number | None:
    if not text:
        return None
    return int(text) if _INTEGER.match(text) else Decimal(text)


def read_usage(path: Location) -> pd.DataFrame:
    """A table `write_usage` wrote, with its ids as strings and its sums exact."""
    data = store.read_bytes(path)
    if data is None:
        raise FileNotFoundError(str(path))
    usage = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    usage["events"] = usage["events"].astype("int64")
    for column in usage.columns:
        if column.startswith("sum_"):
            usage[column] = pd.Series([_parse_number(v) for v in usage[column]], index=usage.index, dtype=object)
    return usage


def usage_part_path(output_dir: Location, pipeline: str, run_id: str, day: str) -> Location:
    return run_dir(output_dir, pipeline, run_id) / "partitions" / f"{day}.usage.csv"


def write_usage_part(output_dir: Location, pipeline: str, run_id: str, day: str, tally: UsageTally) -> Location:
    return write_usage(usage_part_path(output_dir, pipeline, run_id, day), tally.frame())
