"""Every SQL statement the warehouse source issues, one `Dialect` per warehouse.

The source has one code path; what differs between Postgres, Redshift, Snowflake and BigQuery is
here: identifier quoting and case folding (Snowflake stores Segment's unquoted names upper-case),
the load cursor (`uuid_ts`; `loaded_at` on BigQuery), the clock, hour truncation, timestamp
parameters, partition pruning (BigQuery's ingestion-time `_PARTITIONTIME`), the catalog queries and
the driver's parameter style. A statement is built with `{p}` markers and rendered by `Statement`.

Only names matching `_NAME` (Segment's column and table names, validated config values) are ever
pasted into SQL, quoted; values always go as parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DIALECTS", "Dialect", "DialectName", "Statement", "dialect_for"]

DialectName = Literal["postgres", "redshift", "snowflake", "bigquery"]
_NAME = re.compile(r"^[A-Za-z0-9_]{1,127}$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
DAY = dt.timedelta(days=1)
# Airflow connection types -> dialect (`source.dialect` overrides: Redshift behind a `postgres` connection).
_CONN_TYPES: dict[str, DialectName] = {
    "postgres": "postgres", "redshift": "redshift", "snowflake": "snowflake",
    "google_cloud_platform": "bigquery", "gcpbigquery": "bigquery",
}
_TEXT = ("TEXT", "STRING", "CHARACTER VARYING", "VARCHAR", "CHARACTER", "CHAR", "NVARCHAR", "BPCHAR")


@dataclass(frozen=True)
class Statement:
    """SQL with `{p}` markers and their values, rendered in the driver's parameter style."""

    sql: str
    params: tuple[Any, ...] = ()

    def render(self, paramstyle: str) -> tuple[str, Any]:
        parts = self.sql.split("{p}")
        if len(parts) - 1 != len(self.params):
            raise ValueError("statement markers and parameters differ")
        if paramstyle == "pyformat_named":  # our BigQuery cursor (warehouse/bigquery.py) binds a dict
            names = [f"p{i}" for i in range(len(self.params))]
            sql = parts[0] + "".join(f"%({n})s{part}" for n, part in zip(names, parts[1:], strict=True))
            return sql, dict(zip(names, self.params, strict=True))
        return "%s".join(parts), self.params


@dataclass(frozen=True)
class Dialect:
    name: DialectName
    sqlglot: str  # the dialect's name in sqlglot (the statement checks)
    load_column: str = "uuid_ts"
    upper: bool = False  # unquoted identifiers are stored upper-case (Snowflake)
    quote_char: str = '"'
    now_sql: str = "current_timestamp"
    paramstyle: str = "format"

    # -- names ---------------------------------------------------------------------------------
    def stored(self, name: str) -> str:
        """How the warehouse stores a Segment name (Segment creates them unquoted)."""
        return name.upper() if self.upper else name

    def segment_name(self, stored: str) -> str:
        """The Segment (lowercase) name of a stored one; a quoted mixed-case name stays as it is."""
        return stored.lower() if self.upper and stored == stored.upper() else stored

    def quote(self, stored: str) -> str:
        if not _NAME.match(stored):  # the config and the column listing refuse these before
            raise ValueError(f"not a Segment identifier: {stored!r}")
        return f"{self.quote_char}{stored}{self.quote_char}"

    def column(self, name: str) -> str:
        return self.quote(self.stored(name))

    def schema_ref(self, schema: str) -> str:
        if "." in schema:
            if self.name != "bigquery":
                raise ValueError(f"schema {schema!r}: project.dataset names a BigQuery dataset only")
            project, dataset = schema.split(".", 1)
            if not _PROJECT.match(project):
                raise ValueError(f"not a BigQuery project id: {project!r}")
            return f"`{project}`.{self.quote(dataset)}"
        return self.quote(self.stored(schema))

    def table_ref(self, schema: str, stored_table: str) -> str:
        return f"{self.schema_ref(schema)}.{self.quote(stored_table)}"

    # -- values --------------------------------------------------------------------------------
    def timestamp(self, value: dt.datetime) -> tuple[str, Any]:
        """A UTC instant as a parameter: (SQL with one `{p}`, value)."""
        if self.name in ("postgres", "redshift"):
            return "{p}", value
        text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return ("{p}::timestamp_tz" if self.name == "snowflake" else "TIMESTAMP({p})"), text

    def hour_of(self, column_sql: str) -> str:
        if self.name == "bigquery":
            return f"TIMESTAMP_TRUNC({column_sql}, HOUR)"
        return f"date_trunc('hour', {column_sql})"

    def _range(self, column: str, start: dt.datetime, end: dt.datetime) -> tuple[list[str], list[Any]]:
        low, a = self.timestamp(start)
        high, b = self.timestamp(end)
        col = self.column(column)
        return [f"{col} >= {low}", f"{col} < {high}"], [a, b]

    def _partitions(self, first: dt.datetime, end: dt.datetime | None) -> tuple[list[str], list[Any]]:
        """BigQuery's ingestion-day pruning: the partitions of the days of `first` .. `end`, and a day
        of margin each side (a load's `loaded_at` and its ingestion day may straddle midnight)."""
        if self.name != "bigquery":
            return [], []
        low, a = self.timestamp(_midnight(first) - DAY)
        where, params = [f"_PARTITIONTIME >= {low}"], [a]
        if end is not None:
            high, b = self.timestamp(_midnight(end) + 2 * DAY)
            where.append(f"_PARTITIONTIME < {high}")
            params.append(b)
        return [f"({' and '.join(where)} or _PARTITIONTIME is null)"], params

    # -- statements ----------------------------------------------------------------------------
    def now(self) -> Statement:
        return Statement(f"select {self.now_sql}")

    def tables(self, schema: str) -> Statement:
        if self.name == "bigquery":
            return Statement(f"select table_name from {self.schema_ref(schema)}.INFORMATION_SCHEMA.TABLES")
        return Statement("select table_name from information_schema.tables where table_schema = {p}",
                         (self.stored(schema),))

    def columns(self, schema: str, stored_table: str) -> Statement:
        """(column_name, data_type) of a table, in table order."""
        if self.name == "bigquery":
            return Statement(f"select column_name, data_type from {self.schema_ref(schema)}.INFORMATION_SCHEMA.COLUMNS"
                             " where table_name = {p} order by ordinal_position", (stored_table,))
        return Statement("select column_name, data_type from information_schema.columns "
                         "where table_schema = {p} and table_name = {p} order by ordinal_position",
                         (self.stored(schema), stored_table))

    def slices(self, schema: str, stored_table: str, day_start: dt.datetime) -> Statement:
        """(load hour, rows, last load) of the rows received in the day starting at `day_start`."""
        where, params = self._range("received_at", day_start, day_start + DAY)
        pruning, more = self._partitions(day_start, None)
        load = self.column(self.load_column)
        return Statement(f"select {self.hour_of(load)}, count(*), max({load}) "
                         f"from {self.table_ref(schema, stored_table)} where {' and '.join(where + pruning)} "
                         "group by 1", (*params, *more))

    def page(self, schema: str, stored_table: str, stored_columns: Sequence[str], day_start: dt.datetime,
             hour: dt.datetime | None, after: tuple[Any, str] | None, limit: int) -> Statement:
        """A page of a load slice in `received_at, id` order, after the keyset `after` (inclusive)."""
        where, params = self._range("received_at", day_start, day_start + DAY)
        load = self.column(self.load_column)
        if hour is None:
            where.append(f"{load} is null")
            pruning: list[str] = []
        else:
            more_where, more = self._range(self.load_column, hour, hour + dt.timedelta(hours=1))
            pruning, parts = self._partitions(hour, hour)
            where += more_where + pruning
            params += more + parts
        received, ident = self.column("received_at"), f"coalesce({self.column('id')}, '')"
        if after is not None:
            at, value = self.timestamp(after[0])
            where.append(f"({received} > {at} or ({received} = {at} and {ident} >= {{p}}))")
            params += [value, value, after[1]]
        select = ", ".join(self.quote(c) for c in stored_columns)
        return Statement(f"select {select} from {self.table_ref(schema, stored_table)} "
                         f"where {' and '.join(where)} order by {received}, {ident} limit {int(limit)}",
                         tuple(params))

    def session_setup(self, timeout_seconds: int) -> list[str]:
        """Statements run once per connection (Snowflake's are session parameters of the connect)."""
        if self.name in ("postgres", "redshift"):
            return [f"set statement_timeout = {int(timeout_seconds) * 1000}"]
        return []  # BigQuery: the job timeout of the connection (docs/warehouse.md)

    # -- types ---------------------------------------------------------------------------------
    def unexpected_type(self, name: str, data_type: str | None) -> str | None:
        """Why a required column's type cannot be read (None: fine, or the catalog did not say)."""
        if not data_type:
            return None
        kind = data_type.upper()
        wants_time = name in ("received_at", self.load_column, "timestamp")
        if wants_time and not ("TIMESTAMP" in kind or kind == "DATETIME"):
            return f"type {data_type}, expected a timestamp"
        if not wants_time and not any(kind.startswith(t) for t in _TEXT):
            return f"type {data_type}, expected text"
        return None


DIALECTS: dict[DialectName, Dialect] = {
    "postgres": Dialect("postgres", "postgres"),
    "redshift": Dialect("redshift", "redshift", now_sql="getdate()"),
    "snowflake": Dialect("snowflake", "snowflake", upper=True, now_sql="current_timestamp()"),
    "bigquery": Dialect("bigquery", "bigquery", load_column="loaded_at", quote_char="`",
                        now_sql="current_timestamp()", paramstyle="pyformat_named"),
}


def _midnight(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def dialect_for(conn_type: str | None, declared: DialectName | None) -> Dialect:
    """`source.dialect` if set, else the connection type's; any other common-sql type speaks Postgres."""
    if declared is not None:
        return DIALECTS[declared]
    return DIALECTS[_CONN_TYPES.get(conn_type or "", "postgres")]
