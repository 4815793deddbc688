"""Warehouse column values as Hyperline record values and Segment timestamps.

NULL columns are left out by the caller; integral numerics become JSON integers and others floats
(the nearest double: 15-17 significant digits, so `12345678901234.5678` is sent as
`12345678901234.568`; NaN is dropped and counted); timestamps become ISO 8601 UTC strings
(naive values are read as UTC); JSON-text arrays stay strings, as Segment stores them.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hyperline_sync.pipeline.record import INT_MAX, INT_MIN

__all__ = ["iso_ms", "json_number", "record_value", "timestamp_texts", "utc"]


def utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


def iso_ms(value: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC (naive values are taken as UTC)."""
    return utc(value).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def timestamp_texts(values: list[Any]) -> tuple[list[str | None], list[bool]]:
    """The `"timestamp"` column as `YYYY-MM-DDTHH:MM:SS.mmmZ` strings (None where null) and whether each
    has that canonical shape. Vectorised (per-value `isoformat` on zone-aware datetimes costs ~4 us);
    values that are not datetimes (a driver returning text) pass through for the transform to parse."""
    if all(isinstance(v, dt.datetime) or v is None for v in values):
        try:
            parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        except (ValueError, OverflowError, TypeError):  # out of pandas' range, mixed naive and aware
            pass
        else:
            present = parsed.notna().to_numpy()
            millis = parsed.dt.tz_convert(None).to_numpy().astype("datetime64[ms]")
            texts = [text + "Z" for text in np.datetime_as_string(millis, unit="ms").tolist()]
            return [t if ok else None for t, ok in zip(texts, present.tolist(), strict=True)], present.tolist()
    stamps = [iso_ms(v) if isinstance(v, dt.datetime) else (v if type(v) is str else None) for v in values]
    return stamps, [isinstance(v, dt.datetime) for v in values]


def json_number(value: Decimal) -> int | float | None:
    """A numeric as JSON can hold it: an int when integral and within 64 bits, else the nearest
    float; None if not finite."""
    if not value.is_finite():
        return None
    if value == value.to_integral_value() and INT_MIN <= value <= INT_MAX:
        return int(value)
    return float(value)


def record_value(value: Any) -> Any:
    """A (non-null) column value as a record value; None for what Hyperline cannot take (dropped, counted)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    if kind is Decimal:
        return json_number(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return iso_ms(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if kind is dict or kind is list:  # json columns: flattened / checked by build_record
        return value
    if kind is uuid.UUID:
        return str(value)
    return None
