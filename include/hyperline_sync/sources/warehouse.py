"""Segment track events from a Segment warehouse schema, through any common-sql Airflow connection.

Layout (docs: segment-sources.md §2): one schema per Segment source; `tracks` holds every track
call with the common columns only; one table per event (`api_call`, ...) holds the common columns
plus one column per property (names snake_cased, objects flattened with `_`, arrays as JSON text).

Partitions and units. A partition is a UTC day of `received_at`. Its units are load slices: the
rows of one table received that day whose `uuid_ts` (Segment's load time) falls in one hour. Key
`<schema>.<table>@<YYYY-MM-DDTHH>` (the hour of `uuid_ts`, UTC), version (etag)
`<rows>:<max uuid_ts>`. Only slices whose hour has ended by the warehouse's clock are listed, so a
slice is normally read once, complete, and never changes afterwards: a scheduled run at hh:00 (or
better hh:10, leaving a load that straddles the hour time to commit) syncs every load made before hh:00.
Rows loaded late (e.g. 30 h after they were received) form a new slice of their received day; the
first run after the load whose lookback covers that day lists and syncs it, and no run before can
(it does not exist yet). A slice that changes anyway (a load committed after its hour ended,
Redshift overwriting a duplicate) gets a new etag and is read again; the sync's dedup then counts
the rows sent before as duplicates.

Rows (see `WarehouseSource._plan` and `_transform`). `record.id` = `id`; `event_type` = `event_text` (the
original name, the key of every mapping rule); `customer_id` = the column the mapping's
`customer_id` path names (`userId` -> `user_id`, `context.groupId` -> `context_group_id`,
`properties.accountId` -> `account_id`, or a column name as is); `timestamp` = `"timestamp"` as
`YYYY-MM-DDTHH:MM:SS.mmmZ`. The record holds the event table's property columns: not Segment's
common columns, and `context_*` only when a property rule `include`s one by name. Property names
in the mapping are matched against columns after Segment's snake_casing (`durationMs` matches
`duration_ms`), so an archive mapping keeps working. Values: NULL columns are left out (a wide
event table has a column for every property any event ever had; not counted as dropped);
integral numerics become JSON integers and others floats (the nearest double: 15-17 significant
digits, so `12345678901234.5678` is sent as `12345678901234.568`; NaN is dropped and counted);
timestamps become ISO 8601 UTC strings; JSON-text arrays stay strings, as Segment stores them.

Rows of a slice are read in `received_at, id` order with keyset pagination (bounded pages of
`chunk_size` rows, no cursor state kept in the database, no transaction held open while the
events are sent), so the earliest-received copy of a duplicated `id` comes first and wins the
dedup within a slice. Across slices the first one synced wins, and slices are synced in load order:
a copy of an id loaded later is a duplicate even if it was received earlier (a limitation: the
earlier-received copy only wins when it is loaded first or in the same slice). Across days the
sync's dedup rules apply (an earlier day synced after a later one sends its copy again, which
Hyperline upserts on `record.id`).

Dialect assumptions: `date_trunc('hour', ...)`, `current_timestamp`, `coalesce`, `LIMIT`, double-
quoted identifiers and `information_schema.tables` (Postgres and Redshift; Snowflake folds
Segment's names to upper case, so quoted lowercase names do not match there; BigQuery needs
backticks). Parameters use the hook's placeholder (`%s` for Postgres). Naive timestamps are read
as UTC. Tested on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hyperline_sync.config.mapping import MappingConfig, PropertyRule
from hyperline_sync.config.models import PipelineConfig, WarehouseSourceConfig
from hyperline_sync.pipeline.record import INT_MAX, INT_MIN, build_record
from hyperline_sync.pipeline.transform import ChunkResult, TrackColumns, clean_customer_id, map_track_columns
from hyperline_sync.sources.errors import UnitReadError

__all__ = [
    "COMMON_COLUMNS",
    "WarehouseReadError",
    "WarehouseSource",
    "WarehouseUnit",
    "column_for_path",
    "quote_identifier",
    "snake_case",
]

log = logging.getLogger(__name__)

HOUR = dt.timedelta(hours=1)
NO_LOAD_TIME = "no_uuid_ts"  # key suffix of the rows without a uuid_ts (not expected from Segment)
CONTEXT_PREFIX = "context_"
# Segment's columns on every track row (plus the context_* space): never properties of the record.
COMMON_COLUMNS = frozenset(
    {
        "id", "received_at", "uuid_ts", "uuid", "sent_at", "original_timestamp", "timestamp", "user_id",
        "anonymous_id", "event", "event_text", "loaded_at", "channel",
    }
)
_COLUMN_NAME = re.compile(r"^[A-Za-z0-9_]{1,127}$")
_PLAIN_TYPES = frozenset({str, int, bool})  # column values that are record values as they are
# Selected first, in this order, from every table.
_ID, _RECEIVED_AT, _UUID_TS, _TIMESTAMP, _EVENT_TEXT = range(5)
_REQUIRED = ("id", "received_at", "uuid_ts", "timestamp", "event_text")


class WarehouseReadError(UnitReadError):
    """A slice (or the listing of a day) could not be read. `key` names the slice or the table."""


@dataclass(frozen=True)
class WarehouseUnit:
    """One load slice of a received day: the rows of `table` whose `uuid_ts` is in [hour, hour + 1h)."""

    key: str
    etag: str
    day: dt.date
    table: str
    hour: dt.datetime | None  # as the warehouse truncated it; None: the rows without a uuid_ts
    rows: int
    last_load: dt.datetime | None  # max uuid_ts: the slice's watermark

    @property
    def watermark(self) -> str | None:
        return None if self.last_load is None else self.last_load.isoformat()


def snake_case(name: str) -> str:
    """Segment's warehouse naming of events and properties (segmentio/go-snakecase's algorithm).

    Only ASCII letters and digits survive; other characters separate words. A word is a run of
    capitals/digits followed by a run of lowercase letters/digits, so `productID` -> `product_id`,
    `2FA Enabled` -> `2fa_enabled`. A name already in snake_case comes back unchanged.
    """
    n, i = len(name), 0
    while i < n and (_lower_or_digit(name[i]) or (name[i] == "_" and i + 1 < n and _lower_or_digit(name[i + 1]))):
        i += 1
    if i == n:
        return name
    if i > 0 and name[i - 1].isdigit():
        i -= 1  # a digit right before capitals joins their word: "v2FA" -> "v_2fa"
    out = [name[:i]] if i else []
    while i < n:
        if not (_upper_or_digit(name[i]) or _lower_or_digit(name[i])):
            i += 1
            continue
        word = []
        while i < n and _upper_or_digit(name[i]):
            word.append(name[i].lower())
            i += 1
        while i < n and _lower_or_digit(name[i]):
            word.append(name[i])
            i += 1
        out.append("".join(word))
    return "_".join(out)


def _lower_or_digit(c: str) -> bool:
    return "a" <= c <= "z" or "0" <= c <= "9"


def _upper_or_digit(c: str) -> bool:
    return "A" <= c <= "Z" or "0" <= c <= "9"


def column_for_path(path: str) -> str:
    """The warehouse column of a mapping path: `userId` -> `user_id`, `context.groupId` ->
    `context_group_id`, `properties.accountId` -> `account_id` (properties have no prefix)."""
    parts = path.split(".")
    if parts[0] == "properties" and len(parts) > 1:
        parts = parts[1:]
    return "_".join(snake_case(part) for part in parts)


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (names are validated by the config too; quotes are doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _column_rule(rule: PropertyRule) -> PropertyRule:
    """A property rule whose names are warehouse columns (Segment's snake_case of the mapping's names)."""
    return rule if rule.keeps_all else rule.with_names(snake_case)


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


def _iso_ms(value: dt.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC (naive values are taken as UTC)."""
    return _utc(value).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _timestamps(values: list[Any]) -> tuple[list[str | None], list[bool]]:
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
    stamps = [_iso_ms(v) if isinstance(v, dt.datetime) else (v if type(v) is str else None) for v in values]
    return stamps, [isinstance(v, dt.datetime) for v in values]


def _number(value: Decimal) -> int | float | None:
    """A numeric as JSON can hold it: an int when integral and within 64 bits, else the nearest
    float; None if not finite."""
    if not value.is_finite():
        return None
    if value == value.to_integral_value() and INT_MIN <= value <= INT_MAX:
        return int(value)
    return float(value)


def _value(value: Any) -> Any:
    """A (non-null) column value as a record value; None for what Hyperline cannot take (dropped, counted)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    if kind is Decimal:
        return _number(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return _iso_ms(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if kind is dict or kind is list:  # json columns: flattened / checked by build_record
        return value
    if kind is uuid.UUID:
        return str(value)
    return None


@dataclass
class _TablePlan:
    """How one table is read: the selected columns and the record's columns per property rule."""

    table: str
    names: tuple[str, ...]
    customer: int | None
    base_properties: tuple[int, ...]  # non-common columns
    context: dict[str, int]  # context_* column -> index (selected only when a rule includes it)
    rules: dict[int, tuple[PropertyRule, tuple[tuple[int, str], ...]]]  # id(rule) -> (column rule, columns)

    def for_rule(self, rule: PropertyRule) -> tuple[PropertyRule, tuple[tuple[int, str], ...]]:
        """The rule with column names, and the (index, name) of the columns it may put in the record."""
        found = self.rules.get(id(rule))
        if found is None:
            column_rule = _column_rule(rule)
            indices = self.base_properties
            if column_rule.include is not None:
                indices += tuple(self.context[c] for c in sorted(column_rule.include) if c in self.context)
            if not column_rule.keeps_all:  # pre-select: unselected columns are not counted as dropped anyway
                indices = tuple(i for i in indices if column_rule.selects(self.names[i], self.names[i]))
            found = self.rules[id(rule)] = (column_rule, tuple((i, self.names[i]) for i in indices))
        return found


class WarehouseSource:
    """The `warehouse` source kind (see module docstring). Implements `sources.PartitionSource`."""

    def __init__(self, pipeline: PipelineConfig) -> None:
        if not isinstance(pipeline.source, WarehouseSourceConfig):
            raise TypeError(f"pipeline {pipeline.name}: not a warehouse source")
        self.config: WarehouseSourceConfig = pipeline.source
        self.mapping: MappingConfig = pipeline.mapping
        self.customer_column = column_for_path(self.mapping.customer_id)
        self._hook: Any = None
        self._plans: dict[str, _TablePlan] = {}

    # -- connection ----------------------------------------------------------------------------
    def _get_hook(self) -> Any:
        if self._hook is None:
            from airflow.providers.common.sql.hooks.sql import DbApiHook
            from airflow.sdk import BaseHook

            conn_id = self.config.conn_id
            try:
                hook = BaseHook.get_connection(conn_id).get_hook()
            except Exception as exc:
                raise WarehouseReadError(f"connection {conn_id}", f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(hook, DbApiHook):
                raise WarehouseReadError(f"connection {conn_id}",
                                         f"its hook {type(hook).__name__} is not a common-sql DbApiHook")
            self._hook = hook
        return self._hook

    @contextmanager
    def _connect(self, what: str) -> Iterator[Any]:
        hook = self._get_hook()
        try:
            conn = hook.get_conn()
        except Exception as exc:
            raise WarehouseReadError(what, f"cannot connect ({self.config.conn_id}): {type(exc).__name__}: {exc}") \
                from exc
        try:
            # No transaction stays open between pages: Segment's loader needs exclusive locks to add columns.
            if getattr(hook, "supports_autocommit", False):
                hook.set_autocommit(conn, True)
            yield conn
        finally:
            with suppress(Exception):
                conn.close()

    def _query(self, conn: Any, what: str, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
        placeholder = self._get_hook().placeholder
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql.replace("{p}", placeholder), tuple(params))
                rows = cursor.fetchall()
                names = [d[0] for d in cursor.description or ()]
            finally:
                cursor.close()
            if not getattr(conn, "autocommit", False):
                conn.commit()  # a driver without autocommit: end the read transaction now
        except Exception as exc:
            raise WarehouseReadError(what, f"{type(exc).__name__}: {str(exc).strip()}") from exc
        return names, rows

    def _table_ref(self, table: str) -> str:
        return f"{quote_identifier(self.config.schema)}.{quote_identifier(table)}"

    # -- listing -------------------------------------------------------------------------------
    def list_units(self, day: dt.date) -> list[WarehouseUnit]:
        """The day's load slices whose hour has ended, oldest load first (then by table)."""
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        schema = self.config.schema
        units: list[WarehouseUnit] = []
        loading = 0
        with self._connect(f"{schema} ({day})") as conn:
            _, rows = self._query(conn, schema, "select current_timestamp")
            now = _utc(rows[0][0])
            _, rows = self._query(
                conn, schema, "select table_name from information_schema.tables where table_schema = {p}", (schema,)
            )
            existing = {row[0] for row in rows}
            if not existing:
                raise WarehouseReadError(schema, f"no tables in schema {schema!r} through connection "
                                                 f"{self.config.conn_id!r}: check source.schema and source.conn_id")
            for table in self.config.tables:
                if table not in existing:
                    log.warning("%s.%s does not exist (yet): no %s events to sync", schema, table, table)
                    continue
                _, slices = self._query(
                    conn,
                    f"{schema}.{table}",
                    "select date_trunc('hour', uuid_ts), count(*), max(uuid_ts) "
                    f"from {self._table_ref(table)} where received_at >= {{p}} and received_at < {{p}} "
                    "group by date_trunc('hour', uuid_ts)",
                    (start, start + dt.timedelta(days=1)),
                )
                for hour, count, last in slices:
                    hour, last = _utc(hour), _utc(last)
                    if hour is not None and hour + HOUR > now:
                        loading += 1  # still loading: listed once its hour has ended
                        continue
                    units.append(self._unit(day, table, hour, int(count), last))
        units.sort(key=lambda u: (u.hour is None, u.hour or start, u.table))
        log.info("%s %s: %d load slices from %d tables%s", schema, day, len(units), len(self.config.tables),
                 f", {loading} still loading (synced after their hour ends)" if loading else "")
        return units

    def _unit(self, day: dt.date, table: str, hour: dt.datetime | None, count: int,
              last: dt.datetime | None) -> WarehouseUnit:
        # A session time zone with a half-hour offset truncates to hh:30 UTC: the key keeps the minutes then.
        suffix = NO_LOAD_TIME if hour is None else f"{hour:%Y-%m-%dT%H}" + (f":{hour:%M}" if hour.minute else "")
        etag = f"{count}:{last.isoformat() if last is not None else ''}"
        return WarehouseUnit(f"{self.config.schema}.{table}@{suffix}", etag, day, table, hour, count, last)

    # -- reading -------------------------------------------------------------------------------
    def chunks(self, unit: WarehouseUnit, chunk_size: int) -> Iterator[ChunkResult]:
        """The slice's rows in `received_at, id` order, `chunk_size` at a time, transformed."""
        start = dt.datetime.combine(unit.day, dt.time(), tzinfo=dt.UTC)
        where = ["received_at >= {p}", "received_at < {p}"]
        bounds: list[Any] = [start, start + dt.timedelta(days=1)]
        if unit.hour is None:
            where.append("uuid_ts is null")
        else:
            where += ["uuid_ts >= {p}", "uuid_ts < {p}"]
            bounds += [unit.hour, unit.hour + HOUR]
        with self._connect(unit.key) as conn:
            plan = self._plan(conn, unit)
            select = (f"select {', '.join(quote_identifier(c) for c in plan.names)} "
                      f"from {self._table_ref(unit.table)} where {' and '.join(where)}")
            order = " order by received_at, coalesce(id, '')"
            after: tuple[Any, str] | None = None  # keyset: (received_at, id) of the last row passed
            ties = 0  # rows passed whose key equals `after` (true duplicates share the whole key)
            line_no = 1
            while True:
                limit = chunk_size + ties
                if after is None:
                    _, fetched = self._query(conn, unit.key, f"{select}{order} limit {int(limit)}", bounds)
                else:
                    keyset = " and (received_at > {p} or (received_at = {p} and coalesce(id, '') >= {p}))"
                    params = [*bounds, after[0], after[0], after[1]]
                    _, fetched = self._query(conn, unit.key, f"{select}{keyset}{order} limit {int(limit)}", params)
                rows = fetched
                skip = 0
                while after is not None and skip < ties and skip < len(rows) and _key(rows[skip]) == after:
                    skip += 1
                rows = rows[skip:] if skip else rows
                if rows:
                    yield self._transform(unit, plan, rows, line_no)
                    line_no += len(rows)
                    last = _key(rows[-1])
                    trailing = 1
                    while trailing < len(rows) and _key(rows[-1 - trailing]) == last:
                        trailing += 1
                    ties = ties + trailing if trailing == len(rows) and last == after else trailing
                    after = last
                if len(fetched) < limit:
                    return

    def _plan(self, conn: Any, unit: WarehouseUnit) -> _TablePlan:
        plan = self._plans.get(unit.table)
        if plan is not None:
            return plan
        names, _ = self._query(conn, unit.key, f"select * from {self._table_ref(unit.table)} where 1 = 0")
        odd = [c for c in names if not _COLUMN_NAME.match(c)]
        if odd:  # not a name Segment makes; never pasted into SQL, even quoted
            log.warning("%s.%s: columns %s are not Segment column names and are not read", self.config.schema,
                        unit.table, ", ".join(map(repr, odd)))
            names = [c for c in names if c not in odd]
        missing = [c for c in _REQUIRED if c not in names]
        if missing:
            raise WarehouseReadError(unit.key, f"not a Segment track table: no column {', '.join(missing)}")
        selected = list(_REQUIRED)
        customer = None
        if self.customer_column in names:
            if self.customer_column not in selected:
                selected.append(self.customer_column)
            customer = selected.index(self.customer_column)
        else:
            log.warning("%s.%s has no column %s (mapping.customer_id %s): its rows are missing_customer_id",
                        self.config.schema, unit.table, self.customer_column, self.mapping.customer_id)
        properties = [c for c in names if c not in COMMON_COLUMNS and not c.startswith(CONTEXT_PREFIX)]
        included = {snake_case(name) for rule in self.mapping.properties.values() for name in rule.include or ()}
        context = [c for c in names if c.startswith(CONTEXT_PREFIX) and c in included]
        for column in properties + context:
            if column not in selected:
                selected.append(column)
        plan = _TablePlan(
            table=unit.table,
            names=tuple(selected),
            customer=customer,
            base_properties=tuple(selected.index(c) for c in properties),
            context={c: selected.index(c) for c in context},
            rules={},
        )
        self._plans[unit.table] = plan
        return plan

    def _transform(self, unit: WarehouseUnit, plan: _TablePlan, rows: list[tuple], first_line: int) -> ChunkResult:
        """Rows of one page -> `TrackColumns` (sanitised, records built) -> the shared mapping stage."""
        mapping, names, customer_at = self.mapping, plan.names, plan.customer
        static, withheld = mapping.static, mapping.withheld
        by_event: dict[str | None, tuple[PropertyRule, tuple[tuple[int, str], ...]]] = {}
        events, message_ids, customers, records, dropped = [], [], [], [], []
        plain = _PLAIN_TYPES
        for row in rows:
            message_id = row[_ID]
            if type(message_id) is not str or not message_id or message_id.isspace():
                message_id = None
            event = row[_EVENT_TEXT]
            if type(event) is not str or not event or event.isspace():
                event = None
            value = row[customer_at] if customer_at is not None else None
            if type(value) is not str or not value or value.isspace():
                value = clean_customer_id(_number(value) if type(value) is Decimal else value)
            found = by_event.get(event)
            if found is None:
                found = by_event[event] = plan.for_rule(mapping.rule_for(event or ""))
            rule, selected = found
            properties = {
                name: v if type(v) in plain else _value(v) for i, name in selected if (v := row[i]) is not None
            }
            record, lost = build_record(message_id, properties, rule, static, withheld)
            events.append(event)
            message_ids.append(message_id)
            customers.append(value)
            records.append(record)
            dropped.append(lost)
        timestamps, canonical = _timestamps([row[_TIMESTAMP] for row in rows])

        def original(i: int) -> dict[str, Any]:
            return dict(zip(names, rows[i], strict=True))

        columns = TrackColumns(
            source_key=unit.key,
            line_no=np.arange(first_line, first_line + len(rows), dtype=np.int64),
            event=events,
            message_id=message_ids,
            customer_id=customers,
            timestamp=timestamps,
            canonical=canonical,
            record=records,
            dropped=dropped,
            original=original,
        )
        result = map_track_columns(columns, mapping)
        result.read = len(rows)
        return result


def _key(row: tuple) -> tuple[Any, str]:
    return row[_RECEIVED_AT], row[_ID] or ""

