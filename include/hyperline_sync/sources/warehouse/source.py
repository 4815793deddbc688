"""Segment track events from a Segment warehouse schema, through any common-sql Airflow connection.

Layout (docs/segment-formats.md, "Segment warehouses"): one schema per Segment source; `tracks` holds every track
call with the common columns only; one table per event (`api_call`, ...) holds the common columns
plus one column per property (names snake_cased, objects flattened with `_`, arrays as JSON text).

Partitions and units. A partition is a UTC day of `received_at`. Its units are load slices: the
rows of one table received that day whose `uuid_ts` (Segment's load time) falls in one hour. Key
`<schema>.<table>@<YYYY-MM-DDTHH>` (the hour of `uuid_ts`, UTC), version (etag)
`<rows>:<max uuid_ts>` (BigQuery: `loaded_at` wherever `uuid_ts` is named here). Only slices whose
hour has ended by the warehouse's clock are listed, so a slice is normally read once, complete, and never
changes afterwards: a scheduled run at hh:00 (or better hh:10, leaving a load that straddles the hour
time to commit) syncs every load made before hh:00.
Rows loaded late (e.g. 30 h after they were received) form a new slice of their received day; the
first run after the load whose lookback covers that day lists and syncs it, and no run before can
(it does not exist yet). A slice that changes anyway (a load committed after its hour ended,
Redshift overwriting a duplicate) gets a new etag and is read again; the sync's dedup then counts
the rows sent before as duplicates.

Rows (see `rows`). `record.id` = `id`; `event_type` = `event_text` (the
original name, the key of every mapping rule); `customer_id` = the column the mapping's
`customer_id` path names (`userId` -> `user_id`, `context.groupId` -> `context_group_id`,
`properties.accountId` -> `account_id`, or a column name as is); `timestamp` = `"timestamp"` as
`YYYY-MM-DDTHH:MM:SS.mmmZ`. The record holds the event table's property columns: not Segment's
common columns, and `context_*` only when a property rule `include`s one by name. Property names
in the mapping are matched against columns after Segment's snake_casing (`durationMs` matches
`duration_ms`), so an archive mapping keeps working (`naming`). NULL columns are left out (a wide
event table has a column for every property any event ever had; not counted as dropped); other
values are converted by `values`.

Rows of a slice are read in `received_at, id` order with keyset pagination (bounded pages of
`chunk_size` rows, no cursor state kept in the database, no transaction held open while the
events are sent), so the earliest-received copy of a duplicated `id` comes first and wins the
dedup within a slice. Across slices the first one synced wins, and slices are synced in load order:
a copy of an id loaded later is a duplicate even if it was received earlier (a limitation: the
earlier-received copy only wins when it is loaded first or in the same slice). Across days the
sync's dedup rules apply (an earlier day synced after a later one sends its copy again, which
Hyperline upserts on `record.id`).

Dialects: every statement comes from the `dialects.Dialect` of the connection (`connection`):
Postgres, Redshift, Snowflake (names stored upper-case: looked up folded, reported lower-case) or
BigQuery (backticks, `loaded_at` as the load cursor, `_PARTITIONTIME` pruning). Naive timestamps are
read as UTC; every session runs in UTC with the source's statement timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.config.models import PipelineConfig, WarehouseSourceConfig
from hyperline_sync.pipeline.transform import ChunkResult
from hyperline_sync.redact import redact_secrets
from hyperline_sync.sources.warehouse.connection import Connector, WarehouseReadError, connector_for
from hyperline_sync.sources.warehouse.dialects import Dialect, Statement
from hyperline_sync.sources.warehouse.naming import column_for_path
from hyperline_sync.sources.warehouse.rows import ID, RECEIVED_AT, REQUIRED, TablePlan, table_plan, transform_rows
from hyperline_sync.sources.warehouse.values import utc

__all__ = ["WarehouseReadError", "WarehouseSource", "WarehouseUnit"]

log = logging.getLogger(__name__)

HOUR = dt.timedelta(hours=1)
NO_LOAD_TIME = "no_uuid_ts"  # key suffix of the rows without a uuid_ts (not expected from Segment)
_COLUMN_NAME = re.compile(r"^[A-Za-z0-9_]{1,127}$")
_TABLE = "\0table"  # the key of a table's own stored name among its columns' (no column is named so)


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


class WarehouseSource:
    """The `warehouse` source kind (see module docstring). Implements `sources.PartitionSource`."""

    def __init__(self, pipeline: PipelineConfig) -> None:
        if not isinstance(pipeline.source, WarehouseSourceConfig):
            raise TypeError(f"pipeline {pipeline.name}: not a warehouse source")
        self.config: WarehouseSourceConfig = pipeline.source
        self.mapping: MappingConfig = pipeline.mapping
        self.customer_column = column_for_path(self.mapping.customer_id)
        self._connector: Connector | None = None
        self._stored_tables: dict[str, str] = {}  # Segment table name -> as the warehouse stores it
        self._plans: dict[str, tuple[TablePlan, dict[str, str]]] = {}

    # -- connection ----------------------------------------------------------------------------
    @property
    def connector(self) -> Connector:
        if self._connector is None:
            self._connector = connector_for(self.config)
            log.info("warehouse %s: %s SQL through %s", self.config.conn_id, self._connector.dialect.name,
                     self._connector.via)
        return self._connector

    @property
    def dialect(self) -> Dialect:
        return self.connector.dialect

    @contextmanager
    def _connect(self, what: str) -> Iterator[Any]:
        connector = self.connector
        try:
            conn = connector.open()
        except Exception as exc:
            raise WarehouseReadError(what, self._reason(f"cannot connect ({self.config.conn_id})", exc)) from exc
        try:
            yield conn
        finally:
            with suppress(Exception):
                conn.close()

    def _reason(self, doing: str, exc: Exception) -> str:
        return redact_secrets(f"{doing}: {type(exc).__name__}: {str(exc).strip()}", self.connector.secrets)

    def _query(self, conn: Any, what: str, statement: Statement) -> tuple[list[str], list[tuple]]:
        sql, params = statement.render(self.dialect.paramstyle)
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
                names = [d[0] for d in cursor.description or ()]
            finally:
                cursor.close()
            if not getattr(conn, "autocommit", False):
                conn.commit()  # a driver without autocommit: end the read transaction now
        except Exception as exc:
            raise WarehouseReadError(what, self._reason("query failed", exc)) from exc
        return names, rows

    # -- listing -------------------------------------------------------------------------------
    def list_units(self, day: dt.date) -> list[WarehouseUnit]:
        """The day's load slices whose hour has ended, oldest load first (then by table)."""
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        schema = self.config.schema
        units: list[WarehouseUnit] = []
        loading = 0
        with self._connect(f"{schema} ({day})") as conn:
            dialect = self.dialect
            _, rows = self._query(conn, schema, dialect.now())
            now = utc(rows[0][0])
            _, rows = self._query(conn, schema, dialect.tables(schema))
            self._stored_tables = {dialect.segment_name(row[0]): row[0] for row in rows}
            existing = self._stored_tables
            if "tracks" not in existing:  # Segment makes it first in every source schema
                what = f"no table tracks in schema {schema!r}" if existing else f"no tables in schema {schema!r}"
                raise WarehouseReadError(f"{schema}.tracks", f"{what} through connection {self.config.conn_id!r}: "
                                                             "check source.schema and source.conn_id (and the grants)")
            for table in self.config.tables:
                if table not in existing:
                    log.warning("%s.%s does not exist (yet): no %s events to sync", schema, table, table)
                    continue
                _, slices = self._query(conn, f"{schema}.{table}", dialect.slices(schema, existing[table], start))
                for hour, count, last in slices:
                    hour, last = utc(hour), utc(last)
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
        with self._connect(unit.key) as conn:
            plan, stored = self._plan(conn, unit)
            dialect, schema = self.dialect, self.config.schema
            columns = [stored[c] for c in plan.names]
            after: tuple[Any, str] | None = None  # keyset: (received_at, id) of the last row passed
            ties = 0  # rows passed whose key equals `after` (true duplicates share the whole key)
            line_no = 1
            while True:
                limit = chunk_size + ties
                page = dialect.page(schema, stored[_TABLE], columns, start, unit.hour, after, limit)
                _, fetched = self._query(conn, unit.key, page)
                rows = fetched
                skip = 0
                while after is not None and skip < ties and skip < len(rows) and _key(rows[skip]) == after:
                    skip += 1
                rows = rows[skip:] if skip else rows
                if rows:
                    yield transform_rows(unit.key, plan, rows, line_no, self.mapping)
                    line_no += len(rows)
                    last = _key(rows[-1])
                    trailing = 1
                    while trailing < len(rows) and _key(rows[-1 - trailing]) == last:
                        trailing += 1
                    ties = ties + trailing if trailing == len(rows) and last == after else trailing
                    after = last
                if len(fetched) < limit:
                    return

    def message_ids(self, unit: WarehouseUnit, chunk_size: int) -> list[str]:
        """The slice's ids, through the transform: the rows it passes on are the only ones that can be sent."""
        return [i for chunk in self.chunks(unit, chunk_size) for i in chunk.events["message_id"].tolist()]

    def _plan(self, conn: Any, unit: WarehouseUnit) -> tuple[TablePlan, dict[str, str]]:
        """The table's read plan and the stored name of each Segment name (the table's under `_TABLE`)."""
        found = self._plans.get(unit.table)
        if found is not None:
            return found
        dialect, schema = self.dialect, self.config.schema
        stored_table = self._stored_tables.get(unit.table) or dialect.stored(unit.table)
        _, rows = self._query(conn, unit.key, dialect.columns(schema, stored_table))
        if not rows:
            raise WarehouseReadError(unit.key, f"table {schema}.{unit.table} not found (or no grant to read it)")
        odd = [name for name, _ in rows if not _COLUMN_NAME.match(name)]
        if odd:  # not a name Segment makes; never pasted into SQL, even quoted
            log.warning("%s.%s: columns %s are not Segment column names and are not read", schema,
                        unit.table, ", ".join(map(repr, odd)))
        types = {dialect.segment_name(name): (name, kind) for name, kind in rows if name not in odd}
        required = [c if c != "uuid_ts" else dialect.load_column for c in REQUIRED]
        missing = [c for c in required if c not in types]
        if missing:
            raise WarehouseReadError(unit.key, f"not a Segment track table: no column {', '.join(missing)}")
        for name in required:
            problem = dialect.unexpected_type(name, types[name][1])
            if problem:
                raise WarehouseReadError(unit.key, f"column {schema}.{unit.table}.{name} has {problem}")
        plan = table_plan(f"{schema}.{unit.table}", list(types), self.customer_column, self.mapping,
                          load_column=dialect.load_column)
        stored = {name: stored_name for name, (stored_name, _) in types.items()}
        stored[_TABLE] = stored_table
        self._plans[unit.table] = plan, stored
        return plan, stored


def _key(row: tuple) -> tuple[Any, str]:
    return row[RECEIVED_AT], row[ID] or ""
