"""Segment track events from a Segment warehouse schema, through any common-sql Airflow connection.

Layout (docs/segment-formats.md, "Segment warehouses"): one schema per Segment source; `tracks` holds every track
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

Dialect assumptions: `date_trunc('hour', ...)`, `current_timestamp`, `coalesce`, `LIMIT`, double-
quoted identifiers and `information_schema.tables` (Postgres and Redshift; Snowflake folds
Segment's names to upper case, so quoted lowercase names do not match there; BigQuery needs
backticks). Parameters use the hook's placeholder (`%s` for Postgres). Naive timestamps are read
as UTC. Tested on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.config.models import PipelineConfig, WarehouseSourceConfig
from hyperline_sync.pipeline.transform import ChunkResult
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.sources.warehouse.naming import column_for_path, quote_identifier
from hyperline_sync.sources.warehouse.rows import ID, RECEIVED_AT, REQUIRED, TablePlan, table_plan, transform_rows
from hyperline_sync.sources.warehouse.values import utc

__all__ = ["WarehouseReadError", "WarehouseSource", "WarehouseUnit"]

log = logging.getLogger(__name__)

HOUR = dt.timedelta(hours=1)
NO_LOAD_TIME = "no_uuid_ts"  # key suffix of the rows without a uuid_ts (not expected from Segment)
_COLUMN_NAME = re.compile(r"^[A-Za-z0-9_]{1,127}$")


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


class WarehouseSource:
    """The `warehouse` source kind (see module docstring). Implements `sources.PartitionSource`."""

    def __init__(self, pipeline: PipelineConfig) -> None:
        if not isinstance(pipeline.source, WarehouseSourceConfig):
            raise TypeError(f"pipeline {pipeline.name}: not a warehouse source")
        self.config: WarehouseSourceConfig = pipeline.source
        self.mapping: MappingConfig = pipeline.mapping
        self.customer_column = column_for_path(self.mapping.customer_id)
        self._hook: Any = None
        self._plans: dict[str, TablePlan] = {}

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
            now = utc(rows[0][0])
            _, rows = self._query(
                conn, schema, "select table_name from information_schema.tables where table_schema = {p}", (schema,)
            )
            existing = {row[0] for row in rows}
            if "tracks" not in existing:  # Segment makes it first in every source schema
                what = f"no table tracks in schema {schema!r}" if existing else f"no tables in schema {schema!r}"
                raise WarehouseReadError(f"{schema}.tracks", f"{what} through connection {self.config.conn_id!r}: "
                                                             "check source.schema and source.conn_id")
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

    def _plan(self, conn: Any, unit: WarehouseUnit) -> TablePlan:
        plan = self._plans.get(unit.table)
        if plan is not None:
            return plan
        names, _ = self._query(conn, unit.key, f"select * from {self._table_ref(unit.table)} where 1 = 0")
        odd = [c for c in names if not _COLUMN_NAME.match(c)]
        if odd:  # not a name Segment makes; never pasted into SQL, even quoted
            log.warning("%s.%s: columns %s are not Segment column names and are not read", self.config.schema,
                        unit.table, ", ".join(map(repr, odd)))
            names = [c for c in names if c not in odd]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise WarehouseReadError(unit.key, f"not a Segment track table: no column {', '.join(missing)}")
        plan = self._plans[unit.table] = table_plan(f"{self.config.schema}.{unit.table}", names,
                                                     self.customer_column, self.mapping)
        return plan



def _key(row: tuple) -> tuple[Any, str]:
    return row[RECEIVED_AT], row[ID] or ""
