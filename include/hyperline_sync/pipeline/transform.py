"""Raw NDJSON lines -> Hyperline events, rejects with reasons, and counts that add up.

Every line ends in exactly one bucket (`read == len(events) + rejected + skipped`), decided in
this order: `line_too_long`, `malformed_json` (invalid JSON or UTF-8, or not an object), `too_deep`
(nested beyond what the decoder or the mapping recurses into; any other error raised by one line
is its `malformed_json`: a poison line never fails its object), skipped
(`type != "track"`), `missing_event`, skipped (filtered by `mapping.events`), `missing_message_id`,
`missing_customer_id` / `invalid_customer_id`, `invalid_timestamp` (unparseable, without a zone,
or outside years MIN_YEAR..MAX_YEAR).

Two stages. `transform_chunk` decodes each line with msgspec into only the top-level fields the
mapping reads: `context`, `integrations` and `writeKey` are checked as JSON but never built as
Python objects (1.0 us a line, against 2.4 for orjson building a whole ~650-byte message). It keeps
`type == "track"`, type-checks those fields (wrong types become None), builds the `record` and lets
the rest go. A line msgspec refuses is parsed again with orjson, whose error message the dead letter
keeps. `map_track_columns` then works on columns: missing-field masks, event filters and renames
(`isin`/`map`), timestamp parsing with `pandas.to_datetime` and the reject reasons. A warehouse
reader can fill `TrackColumns` from its result set and reuse that stage.

`writeKey` (a Segment source credential) is never copied: message rejects carry the message
without it, raw rejects the line cut to `RAW_PREVIEW_BYTES` with any writeKey value masked (`rejects`).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd

from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.pipeline.record import build_record
from hyperline_sync.pipeline.rejects import failure_reason, raw_reject, storable
from hyperline_sync.sources.archive.reading import MAX_LINE_BYTES, LineChunk

__all__ = [
    "EVENT_COLUMNS",
    "MAX_YEAR",
    "MIN_YEAR",
    "ChunkResult",
    "TrackColumns",
    "clean_customer_id",
    "map_track_columns",
    "to_events",
    "transform_chunk",
]

EVENT_COLUMNS = ("message_id", "customer_id", "event_type", "timestamp", "record", "line_no")
EVENT_FIELDS = ("customer_id", "event_type", "timestamp", "record")  # of an event as Hyperline takes it
MIN_YEAR, MAX_YEAR = 1678, 2261  # timestamps outside are invalid_timestamp (the datetime64[ns] range)
# An explicit zone is required: a naive timestamp would silently be read as UTC.
_ZONE = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
_INVALID = object()  # a customer id of a type that cannot be an id (bool, object, array)


@dataclass
class ChunkResult:
    events: pd.DataFrame
    rejects: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    skipped: int = 0
    rejected: int = 0
    dropped_properties: int = 0
    # Of `events`, their `sent_manifest.content_hashes` for the corrections, when the reader computed
    # them (a worker process of `unit_pool`); else the sync does.
    content_hashes: np.ndarray | None = None


def to_events(frame: pd.DataFrame) -> list[dict]:
    """Hyperline event dicts from the transform's columns (column-wise, no per-row pandas access;
    a dict display is twice as fast as dict(zip(...)) here)."""
    columns = [frame[name].tolist() for name in EVENT_FIELDS]
    return [
        {"customer_id": customer_id, "event_type": event_type, "timestamp": timestamp, "record": record}
        for customer_id, event_type, timestamp, record in zip(*columns, strict=True)
    ]


@dataclass
class TrackColumns:
    """Fields of track messages, one list per field (row i is one message), already sanitised by
    the source while it held the message: `event` and `message_id` are non-blank strings or None
    (Hyperline refuses whitespace-only names and ids),
    `customer_id` comes from `clean_customer_id`, `timestamp` is a string or None and
    `canonical[i]` tells whether it already has the `YYYY-MM-DDTHH:MM:SS.mmmZ` shape.

    `record` and `dropped` come from `record.build_record` (built while the source still holds
    the message, so its properties can be freed at once). `original(i)` returns message i without
    `writeKey` for a dead letter; it is only called for rejected rows, so a source may rebuild it.
    """

    source_key: str
    line_no: np.ndarray
    event: list[str | None]
    message_id: list[str | None]
    customer_id: list[Any]
    timestamp: list[str | None]
    canonical: list[bool]
    record: list[dict[str, Any]]
    dropped: list[int]
    original: Callable[[int], dict[str, Any]]


@dataclass(frozen=True)
class _TrackFields:
    """msgspec decoding of only the top-level fields the transform reads; the rest of a message
    (context, integrations, writeKey) is validated as JSON but never becomes Python objects."""

    decode: Callable[[bytes], Any]
    unpack: Callable[[Any], tuple[Any, ...]]  # -> type, event, messageId, timestamp, properties, customer
    struct: type

    def fallback(self, line: bytes) -> msgspec.Struct | str:
        """The fields of a line msgspec refused, through orjson (whose error wording the dead
        letters keep); a str saying why when the line is no JSON object."""
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return str(exc)
        if type(message) is not dict:
            return f"expected a JSON object, got {type(message).__name__}"
        return msgspec.convert(message, self.struct)

    def message(self, line: bytes) -> dict[str, Any]:
        """A decoded line as a dict for a dead letter, without `writeKey`. msgspec accepts a few
        values in the fields it skips that orjson cannot hold (a number beyond the float range): such
        a message keeps only the fields the transform read."""
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            return msgspec.to_builtins(self.decode(line))
        message.pop("writeKey", None)
        return message


_READ_FIELDS = ("type", "event", "messageId", "timestamp", "properties")


@lru_cache(maxsize=16)
def _track_fields(customer_top: str) -> _TrackFields:
    names = list(dict.fromkeys((*_READ_FIELDS, customer_top)))  # the customer id may live in properties
    attributes = [f"f{n}" for n in range(len(names))]
    struct = msgspec.defstruct(
        "TrackFields", [(a, Any, None) for a in attributes], rename=dict(zip(attributes, names, strict=True)), gc=False
    )
    unpack = attrgetter(*(attributes[names.index(name)] for name in (*_READ_FIELDS, customer_top)))
    return _TrackFields(msgspec.json.Decoder(struct).decode, unpack, struct)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: tens of thousands of live parsed objects would otherwise trigger
    repeated collections that scan them all (3x the parse cost). JSON values hold no cycles, so
    reference counting frees everything; the previous GC state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def transform_chunk(chunk: LineChunk, mapping: MappingConfig) -> ChunkResult:
    """Parse and map one chunk of archive lines."""
    with _gc_paused():
        columns, rejects, skipped = _parse(chunk, mapping)
        result = map_track_columns(columns, mapping)
    result.read = len(chunk.lines)
    result.skipped += skipped
    if rejects:
        result.rejects = sorted(rejects + result.rejects, key=lambda reject: reject["line_no"])
        result.rejected = len(result.rejects)
    return result


def _parse(chunk: LineChunk, mapping: MappingConfig) -> tuple[TrackColumns, list[dict[str, Any]], int]:
    lines, numbers = chunk.lines, chunk.numbers()
    rejects: list[dict[str, Any]] = []
    positions: list[int] = []
    events: list[str | None] = []
    message_ids: list[str | None] = []
    customers: list[Any] = []
    timestamps: list[str | None] = []
    canonical: list[bool] = []
    records: list[dict[str, Any]] = []
    dropped: list[int] = []
    # Bound appends: this loop runs once per line, and attribute lookups show in the profile.
    add_position, add_event, add_message_id = positions.append, events.append, message_ids.append
    add_customer, add_timestamp, add_canonical = customers.append, timestamps.append, canonical.append
    add_record, add_dropped = records.append, dropped.append
    path = mapping.customer_id_path
    static, withheld = mapping.static, mapping.withheld
    per_event = bool(mapping.properties)
    rule = mapping.rule_for("")
    skipped = 0
    fields = _track_fields(path[0])
    decode, unpack, rest = fields.decode, fields.unpack, path[1:]
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE_BYTES:
            rejects.append(raw_reject("line_too_long", chunk.key, numbers[i], line, f"over {MAX_LINE_BYTES} bytes"))
            continue
        try:  # whatever one line raises is its reject (no cost in the loop unless raised)
            try:
                if not line.isascii():
                    line.decode()  # msgspec does not check the UTF-8 of the fields it skips
                message = decode(line)
            except (msgspec.DecodeError, ValueError):
                message = fields.fallback(line)
                if type(message) is str:
                    rejects.append(raw_reject("malformed_json", chunk.key, numbers[i], line, message))
                    continue
            kind, event, message_id, timestamp, properties, customer = unpack(message)
            if kind != "track":
                skipped += 1
                continue
            if type(event) is not str or not event or event.isspace():
                event = None
            if type(message_id) is not str or not message_id or message_id.isspace():
                message_id = None
            if rest:
                customer = _dig(customer, rest)
            if type(customer) is not str or not customer or customer.isspace():
                customer = clean_customer_id(customer)
            if type(timestamp) is str:
                # Segment's own shape, YYYY-MM-DDTHH:MM:SS.mmmZ (the digits are checked when parsed)
                shaped = len(timestamp) == 24 and timestamp[23] == "Z" and timestamp[19] == "." and timestamp[10] == "T"
            else:
                timestamp, shaped = None, False
            if per_event:
                rule = mapping.rule_for(event or "")
            record, lost = build_record(message_id, properties, rule, static, withheld)
        except MemoryError:
            raise  # the process's state, not the line's
        except Exception as exc:
            rejects.append(raw_reject(failure_reason(exc), chunk.key, numbers[i], line, f"{type(exc).__name__}: {exc}"))
            continue
        add_position(i)
        add_event(event)
        add_message_id(message_id)
        add_customer(customer)
        add_timestamp(timestamp)
        add_canonical(shaped)
        add_record(record)
        add_dropped(lost)

    def original(row: int) -> dict[str, Any]:
        return fields.message(lines[positions[row]])

    line_nos = np.asarray(numbers, dtype=np.int64)[np.asarray(positions, dtype=np.intp)]
    columns = TrackColumns(
        chunk.key, line_nos, events, message_ids, customers, timestamps, canonical, records, dropped, original
    )
    return columns, rejects, skipped


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


def map_track_columns(columns: TrackColumns, mapping: MappingConfig) -> ChunkResult:
    """Apply the mapping to track messages: filters, checks, conversions (records are prebuilt)."""
    n = len(columns.event)
    reasons = np.full(n, None, dtype=object)
    skipped = 0

    event = _objects(columns.event)
    alive = _reject(_present(event), reasons, "missing_event")
    if mapping.filters_events:
        events = pd.Series(event, dtype=object)
        kept = np.ones(n, dtype=bool)
        if mapping.include_events is not None:
            kept &= events.isin(mapping.include_events).to_numpy()
        if mapping.exclude_events:
            kept &= ~events.isin(mapping.exclude_events).to_numpy()
        skipped = int((alive & ~kept).sum())
        alive &= kept

    message_id = _objects(columns.message_id)
    alive &= _reject(alive & _present(message_id), reasons, "missing_message_id", alive)

    customer_id = _objects(columns.customer_id)
    invalid = customer_id == _INVALID
    reasons[alive & invalid] = "invalid_customer_id"
    alive &= _reject(alive & ~invalid & _present(customer_id), reasons, "missing_customer_id", alive & ~invalid)

    timestamp = _normalised_timestamps(_objects(columns.timestamp), np.array(columns.canonical, dtype=bool))
    alive &= _reject(alive & _present(timestamp), reasons, "invalid_timestamp", alive)

    rejected_rows = np.flatnonzero(_present(reasons))
    rejects = [
        {
            "reason": reasons[row],
            "source_key": columns.source_key,
            "line_no": int(columns.line_no[row]),
            "event": storable(columns.original(int(row))),
        }
        for row in rejected_rows
    ]
    rows = np.flatnonzero(alive)
    # An empty frame costs ~0.6 ms to build: only for chunks that keep no event.
    events, dropped = (
        _events(rows, event, message_id, customer_id, timestamp, columns, mapping)
        if rows.size
        else (_empty_events(), 0)
    )
    return ChunkResult(events, rejects, skipped=skipped, rejected=len(rejects), dropped_properties=dropped)


def _reject(ok: np.ndarray, reasons: np.ndarray, reason: str, among: np.ndarray | None = None) -> np.ndarray:
    """Record `reason` for the rows of `among` (default: all) that are not `ok`; return `ok`."""
    bad = ~ok if among is None else among & ~ok
    reasons[bad] = reason
    return ok


def _objects(values: list[Any]) -> np.ndarray:
    # fromiter: ~6x faster than np.array for dicts, and never mistakes a list value for a dimension
    return np.fromiter(values, dtype=object, count=len(values))


def _present(values: np.ndarray) -> np.ndarray:
    """Mask of the entries that are not None (object arrays hold None, never NaN, here)."""
    # numpy's stubs omit None as an operand; on object arrays it compares elementwise, as wanted
    return np.not_equal(values, None)  # type: ignore[call-overload]


def clean_customer_id(value: Any) -> Any:
    """A customer id as a string; None when missing or blank; a marker for types that cannot be ids
    (booleans, objects, arrays) so they are rejected as `invalid_customer_id`."""
    kind = type(value)
    if kind is str:
        return value if value and not value.isspace() else None
    if kind is int:
        return str(value)
    if kind is float:
        # A JSON number 123.0 is the id "123", as the sender meant it.
        return str(int(value)) if value.is_integer() else repr(value)
    return None if value is None else _INVALID


_LOWEST = np.datetime64(f"{MIN_YEAR}-01-01")
_HIGHEST = np.datetime64(f"{MAX_YEAR + 1}-01-01")


def _normalised_timestamps(values: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC (truncated to ms), None where missing or unparseable."""
    odd = np.flatnonzero(~canonical & _present(values))
    if odd.size:  # not Segment's usual shape: parse only if it names its zone
        values = values.copy()
        values[odd] = [v if v[-1:] == "Z" or _ZONE.search(v) else None for v in values[odd]]
    parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True, errors="coerce")
    instants = parsed.dt.tz_convert(None).to_numpy()
    # pandas picks the resolution per call (ns if any value has 9 fraction digits), which moves the
    # representable range; a fixed range keeps the outcome independent of the chunk's other rows.
    valid = parsed.notna().to_numpy() & (instants >= _LOWEST) & (instants < _HIGHEST)
    out = np.full(len(values), None, dtype=object)
    # Segment normalises `timestamp` already: a valid string of the canonical shape is its own form.
    keep = valid & canonical
    out[keep] = values[keep]
    reformat = valid & ~canonical
    if reformat.any():
        millis = instants[reformat].astype("datetime64[ms]")
        out[reformat] = [text + "Z" for text in np.datetime_as_string(millis, unit="ms").tolist()]
    return out


def _events(
    rows: np.ndarray,
    event: np.ndarray,
    message_id: np.ndarray,
    customer_id: np.ndarray,
    timestamp: np.ndarray,
    columns: TrackColumns,
    mapping: MappingConfig,
) -> tuple[pd.DataFrame, int]:
    event_types = pd.Series(event[rows], dtype=object)
    if mapping.event_types:
        event_types = event_types.map(mapping.event_types).fillna(event_types)
    records = _objects(columns.record)
    frame = pd.DataFrame(
        {
            "message_id": pd.Series(message_id[rows], dtype=object),
            "customer_id": pd.Series(customer_id[rows], dtype=object),
            "event_type": event_types,
            "timestamp": pd.Series(timestamp[rows], dtype=object),
            "record": pd.Series(records[rows], dtype=object),
            "line_no": pd.Series(columns.line_no[rows], dtype=np.int64),
        }
    )
    return frame, int(np.asarray(columns.dropped, dtype=np.int64)[rows].sum())


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=np.int64 if name == "line_no" else object) for name in EVENT_COLUMNS})
