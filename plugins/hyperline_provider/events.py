"""Client-side validation of Hyperline BillableEvents, one event at a time, and their wire form.

The rules follow Hyperline's ``POST /v1/events/batch`` schema, read strictly so that an event Hyperline
might reject never leaves the process:

- ``customer_id`` and ``event_type``: non-empty strings.
- ``timestamp``: an RFC 3339 string (ISO 8601 with ``T``, seconds and a zone: ``Z`` or ``+HH:MM``), or an
  ``int`` of epoch milliseconds between 1973 and 5138 (a smaller int is almost surely epoch seconds).
- ``record``: an object whose ``id`` is a non-empty string; other values are strings, finite numbers,
  booleans, or lists of those. ``null``, nested objects, lists of objects/lists, NaN and infinity are refused.

Only those four fields are sent; any other key of the event (e.g. ``line_no``) stays with the caller.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

SENT_FIELDS = ("customer_id", "event_type", "timestamp", "record")
# numpy scalars (np.int64 from pandas) are valid values; orjson needs this option to write them.
DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_rfc3339_match = _RFC3339.fullmatch
_EPOCH_MS_MIN = 100_000_000_000  # 1973-03-03: below this the value is almost surely epoch seconds
_EPOCH_MS_MAX = 100_000_000_000_000  # year 5138: above this, microseconds or nanoseconds
TIMESTAMP_REASON = "invalid_event: timestamp not ISO 8601 with zone or epoch ms"
_IN_LIST = {"is null": "contains null", "is an object": "contains an object", "is a list": "contains a list"}


def _check_timestamp(ts: Any) -> str | None:
    kind = type(ts)
    if kind is str or isinstance(ts, str):
        if _RFC3339.fullmatch(ts) is None:
            return TIMESTAMP_REASON
        try:
            # The regex checks the shape; this checks the calendar (month 13, February 30).
            datetime.fromisoformat(ts)
        except ValueError:
            return f"{TIMESTAMP_REASON} (not a real date/time)"
        return None
    if kind is int or (isinstance(ts, numbers.Integral) and not isinstance(ts, bool)):
        if _EPOCH_MS_MIN <= int(ts) < _EPOCH_MS_MAX:
            return None
        return f"{TIMESTAMP_REASON} (integer out of the epoch-millisecond range)"
    if ts is None:
        return "invalid_event: missing timestamp"
    return TIMESTAMP_REASON


def _is_numpy_bool(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool_", "bool")


def _scalar_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid record scalar, as a phrase, or None when it is fine."""
    kind = type(value)
    if kind is str or kind is bool or kind is int:
        return None
    if kind is float:
        return None if math.isfinite(value) else "is not a finite number"
    if value is None:
        return "is null"
    if isinstance(value, Mapping):
        return "is an object"
    if isinstance(value, (list, tuple)):
        return "is a list"
    if isinstance(value, (str, bool)) or _is_numpy_bool(value):
        return None
    if isinstance(value, numbers.Real):  # int subclasses, numpy ints/floats
        return None if math.isfinite(value) else "is not a finite number"
    return f"has unsupported type {kind.__name__}"


def _check_record(record: Any) -> str | None:
    if record is None:
        return "invalid_event: missing record"
    if not isinstance(record, Mapping):
        return "invalid_event: record must be an object"
    record_id = record.get("id")
    if record_id is None:
        return "invalid_event: missing record.id"
    if not isinstance(record_id, str):
        return "invalid_event: record.id must be a string"
    if not record_id.strip():
        return "invalid_event: record.id must be a non-empty string"
    for key, value in record.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool:
            continue
        if kind is list or kind is tuple:
            for item in value:
                problem = _scalar_problem(item)
                if problem is not None:
                    what = _IN_LIST.get(problem, f"contains a value that {problem}")
                    return f"invalid_event: record.{key} {what}"
            continue
        problem = _scalar_problem(value)
        if problem is not None:
            return f"invalid_event: record.{key} {problem}"
    return None


def _check_name(event: Mapping[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return f"invalid_event: missing {name}"
    if not isinstance(value, str) or not value.strip():
        return f"invalid_event: {name} must be a non-empty string"
    return None


def _slow_reason(event: Any) -> str | None:
    """Full check with precise reasons; also covers Mapping and numpy types the fast path skips."""
    if not isinstance(event, Mapping):
        return "invalid_event: event must be an object"
    return (
        _check_name(event, "customer_id")
        or _check_name(event, "event_type")
        or _check_timestamp(event.get("timestamp"))
        or _check_record(event.get("record"))
    )


def validate_event(event: Any) -> str | None:
    """Return why ``event`` cannot be sent (``invalid_event: ...``), or None when it is valid.

    A fast path accepts the common shape (plain dicts, str/int/float/bool values) with exact type
    checks; anything else goes to the full check, which gives the reason.
    """
    if type(event) is dict:
        customer_id = event.get("customer_id")
        event_type = event.get("event_type")
        timestamp = event.get("timestamp")
        record = event.get("record")
        if (
            type(customer_id) is str
            and customer_id
            and not customer_id.isspace()
            and type(event_type) is str
            and event_type
            and not event_type.isspace()
            and type(record) is dict
        ):
            if type(timestamp) is str:
                timestamp_ok = _rfc3339_match(timestamp) is not None and _calendar_ok(timestamp)
            elif type(timestamp) is int:
                timestamp_ok = _EPOCH_MS_MIN <= timestamp < _EPOCH_MS_MAX
            else:
                timestamp_ok = False
            record_id = record.get("id")
            if timestamp_ok and type(record_id) is str and record_id and not record_id.isspace():
                for value in record.values():
                    kind = type(value)
                    if kind is str or kind is int or kind is bool:
                        continue
                    if kind is float and value - value == 0.0:  # false for NaN and infinities
                        continue
                    if kind is list and _plain_list(value):
                        continue
                    break
                else:
                    return None
    return _slow_reason(event)


def _plain_list(values: list[Any]) -> bool:
    for item in values:
        kind = type(item)
        if kind is str or kind is int or kind is bool or (kind is float and item - item == 0.0):
            continue
        return False
    return True


def _calendar_ok(timestamp: str) -> bool:
    try:
        datetime.fromisoformat(timestamp)
    except ValueError:
        return False
    return True


def wire_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """What is sent for a validated event: a plain dict of its four BillableEvent fields, nothing else.

    Encode with ``orjson.dumps(..., option=DUMPS_OPTIONS)``, which raises ``orjson.JSONEncodeError`` for
    what validation cannot see (non-string keys, huge ints).
    """
    record = event["record"]
    return {
        "customer_id": event["customer_id"],
        "event_type": event["event_type"],
        "timestamp": event["timestamp"],
        "record": record if type(record) is dict else dict(record),
    }
