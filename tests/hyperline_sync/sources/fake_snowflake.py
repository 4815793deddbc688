"""A Segment-shaped schema on fakesnow's server (a local Snowflake emulation over HTTP, on DuckDB),
with the interface of `test_warehouse_postgres.SegmentWarehouse`, so the Postgres scenarios run on it.

Names are created unquoted, so they are stored upper-case as Segment's Snowflake loader stores them
(TRACKS, RECEIVED_AT, UUID_TS); timestamps are TIMESTAMP_TZ except UUID_TS (TIMESTAMP_NTZ, UTC wall
time), numbers NUMBER or FLOAT. Each warehouse is a database of its own on one shared server.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import fakesnow
import pytest
import snowflake.connector

from tests.hyperline_sync.sources.segment_tables import SegmentTables
from tests.hyperline_sync.sources.test_warehouse_postgres import CONN_ID, SCHEMA, Row

# Taken at import: fakesnow.server, the function, is shadowed by its submodule once it has run.
_START = fakesnow.server
_TYPES = {"text": "VARCHAR", "bigint": "NUMBER(38,0)", "numeric": "FLOAT", "boolean": "BOOLEAN",
          "timestamptz": "TIMESTAMP_TZ"}
COMMON = ("ID VARCHAR(1024), RECEIVED_AT TIMESTAMP_TZ NOT NULL, UUID_TS TIMESTAMP_NTZ, SENT_AT TIMESTAMP_TZ, "
          "ORIGINAL_TIMESTAMP TIMESTAMP_TZ, TIMESTAMP TIMESTAMP_TZ, USER_ID VARCHAR, ANONYMOUS_ID VARCHAR, "
          "EVENT VARCHAR, EVENT_TEXT VARCHAR, CONTEXT_LIBRARY_NAME VARCHAR, CONTEXT_IP VARCHAR, "
          "CONTEXT_GROUP_ID VARCHAR")


def _keep_null_timestamps() -> None:
    """fakesnow 0.12.1's server sends a NULL timestamp as 1970-01-01 (its Arrow struct drops the
    null mask); real Snowflake sends NULL. Put the mask back, so the scenarios see what Snowflake sends."""
    import pyarrow as pa
    from fakesnow import arrow

    original = arrow.timestamp_to_sf_struct
    if getattr(original, "keeps_nulls", False):
        return

    def with_nulls(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
        struct = original(ts)
        ts = ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts
        fields = [struct.type.field(i) for i in range(struct.type.num_fields)]
        return pa.StructArray.from_arrays([struct.field(i) for i in range(len(fields))], fields=fields,
                                          mask=ts.is_null())

    with_nulls.keeps_nulls = True  # type: ignore[attr-defined]
    arrow.timestamp_to_sf_struct = with_nulls


@functools.cache
def _server() -> dict[str, Any]:
    """One server per test process, on a free port of 127.0.0.1 (several modules import the fixture)."""
    _keep_null_timestamps()
    manager = _START(host="127.0.0.1")
    kwargs = manager.__enter__()
    atexit.register(manager.__exit__, None, None, None)
    return kwargs


@pytest.fixture(scope="session")
def fakesnow_server() -> dict[str, Any]:
    return _server()


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return "NaN" if value.is_nan() else float(value)  # FLOAT holds NaN; the driver binds it unquoted
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


class SnowflakeWarehouse(SegmentTables):
    """A Segment-like source schema in one fakesnow database."""

    TYPES, COMMON = _TYPES, COMMON

    def __init__(self, server: dict[str, Any], schema: str = SCHEMA) -> None:
        self.server = server
        self.database = f"SEG_{uuid.uuid4().hex[:8].upper()}"
        self.schema = schema
        self.rows: list[Row] = []
        self.conn = snowflake.connector.connect(**server)
        self.sql(f"create database {self.database}")
        self.sql(f"use database {self.database}")

    @property
    def airflow_uri(self) -> str:
        """`AIRFLOW_CONN_<ID>` as JSON: a `snowflake` connection whose extra points at the server."""
        s = self.server
        return json.dumps({"conn_type": "snowflake", "login": s["user"], "password": s["password"],
                           "extra": {"account": s["account"], "database": self.database, "host": s["host"],
                                     "port": s["port"], "protocol": s["protocol"]}})

    def _insert(self, table: str, values: list[dict[str, Any]]) -> None:
        names = sorted({k for v in values for k in v})
        columns = ", ".join('"' + n.upper() + '"' for n in names)
        marks = ", ".join("%s" for _ in names)
        cursor = self.conn.cursor()
        for v in values:
            row = [_value(v.get(n)) for n in names]
            row[names.index("uuid_ts")] = row[names.index("uuid_ts")] and row[names.index("uuid_ts")].replace(
                tzinfo=None)  # TIMESTAMP_NTZ holds UTC wall time
            cursor.execute(f"insert into {self.schema}.{table} ({columns}) values ({marks})", row)
        cursor.close()

    def sql(self, statement: str) -> list[tuple]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(statement)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def snowflake_warehouse(fakesnow_server: dict[str, Any],
                        monkeypatch: pytest.MonkeyPatch) -> Iterator[SnowflakeWarehouse]:
    wh = SnowflakeWarehouse(fakesnow_server).create()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", wh.airflow_uri)
    yield wh
    wh.close()
