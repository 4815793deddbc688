"""What the fake warehouses (Snowflake on fakesnow, BigQuery on DuckDB) share: Segment's source
tables made and filled from the scenario rows of test_warehouse_postgres.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from tests.hyperline_sync.sources.test_warehouse_postgres import EVENT_TABLES, Row


class SegmentTables:
    """`tracks` plus one table per event, in the engine's types (`TYPES`, `COMMON` columns)."""

    TYPES: dict[str, str]
    COMMON: str
    schema: str
    rows: list[Row]

    def sql(self, statement: str) -> Any:
        raise NotImplementedError

    def _insert(self, table: str, values: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def create(self) -> Self:
        self.sql(f"create schema {self.schema}")
        self.sql(f"create table {self.schema}.tracks ({self.COMMON})")
        for table, props in EVENT_TABLES.items():
            extra = "".join(f", {name} {self.TYPES[kind]}" for name, kind in props.items())
            self.sql(f"create table {self.schema}.{table} ({self.COMMON}{extra})")
        return self

    def insert(self, rows: Iterable[Row]) -> list[Row]:
        rows = list(rows)
        for table in {r.table for r in rows}:
            self._insert(table, [{**r.columns(), **r.props} for r in rows if r.table == table])
        self._insert("tracks", [r.columns() for r in rows])
        self.rows.extend(rows)
        return rows
