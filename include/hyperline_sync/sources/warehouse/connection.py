"""DB-API connections to a warehouse from its Airflow connection, and the dialect it speaks.

The dialect is `source.dialect` or the connection type's (`dialects.dialect_for`). Postgres and
Redshift connect through the connection's common-sql hook (PostgresHook, RedshiftSQLHook).
BigQuery connects with google-cloud-bigquery from the `google_cloud_platform` connection's extra
(`bigquery`: the Google provider cannot be installed with this project's pinned tenacity and
protobuf). Snowflake connects with snowflake-connector-python from the
connection's fields (login, password, schema and the extra's account, warehouse, database, role,
region, host, port, protocol, insecure_mode: the fields SnowflakeHook reads): the Snowflake provider
cannot be installed beside this project's pinned SQLAlchemy and protobuf (docs/warehouse.md), and
its hook would not pass `protocol` on anyway. Every session reads timestamps in UTC and gets the
source's statement timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hyperline_sync.config.models import WarehouseSourceConfig
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.sources.warehouse.bigquery import bigquery_settings
from hyperline_sync.sources.warehouse.dialects import Dialect, dialect_for

__all__ = ["Connector", "WarehouseReadError", "connector_for"]

_PROVIDERS = {"redshift": "apache-airflow-providers-amazon",
              "postgres": "apache-airflow-providers-postgres"}
_SNOWFLAKE_EXTRA = ("account", "warehouse", "database", "role", "region", "host", "port", "protocol",
                    "insecure_mode")


class WarehouseReadError(UnitReadError):
    """A slice (or the listing of a day) could not be read. `key` names the slice or the table."""


@dataclass
class Connector:
    """How to open a connection: the dialect and a function returning a ready DB-API connection."""

    dialect: Dialect
    open: Callable[[], Any]
    secrets: tuple[str, ...]  # removed from any error text
    via: str  # what connects: the hook's class, or the Snowflake connector


def connector_for(config: WarehouseSourceConfig) -> Connector:
    from airflow.sdk import BaseHook

    conn_id = config.conn_id
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise WarehouseReadError(f"connection {conn_id}", f"cannot be read: {type(exc).__name__}") from exc
    dialect = dialect_for(conn.conn_type, config.dialect)
    secrets = tuple(s for s in (conn.password, quote(conn.password or "", safe="")) if s)
    if dialect.name == "snowflake":
        return Connector(dialect, lambda: _snowflake(conn, config.query_timeout_seconds), secrets,
                         "snowflake-connector-python")
    if dialect.name == "bigquery":
        try:
            settings = bigquery_settings(_extra(conn))
        except ValueError as exc:
            raise WarehouseReadError(f"connection {conn_id}", str(exc)) from None
        return Connector(dialect, lambda: settings.connect(config.query_timeout_seconds),
                         secrets + settings.secrets, "google-cloud-bigquery")
    try:
        hook = conn.get_hook()
    except Exception as exc:
        provider = _PROVIDERS.get(dialect.name, "its Airflow provider")
        raise WarehouseReadError(
            f"connection {conn_id}", f"no {dialect.name} hook for connection type {conn.conn_type!r} "
            f"({type(exc).__name__}; is {provider} installed?)") from exc
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    if not isinstance(hook, DbApiHook):
        raise WarehouseReadError(f"connection {conn_id}",
                                 f"its hook {type(hook).__name__} is not a common-sql DbApiHook")

    def open_with_hook() -> Any:
        db = hook.get_conn()
        # No transaction stays open between pages: Segment's loader needs exclusive locks to add columns.
        if getattr(hook, "supports_autocommit", False):
            hook.set_autocommit(db, True)
        for statement in dialect.session_setup(config.query_timeout_seconds):
            cursor = db.cursor()
            try:
                cursor.execute(statement)
            finally:
                cursor.close()
        return db

    return Connector(dialect, open_with_hook, secrets, type(hook).__name__)


def _snowflake(conn: Any, timeout: int) -> Any:
    import snowflake.connector

    extra = _extra(conn)
    params: dict[str, Any] = {k: extra[k] for k in _SNOWFLAKE_EXTRA if extra.get(k) not in (None, "")}
    if "port" in params:
        params["port"] = int(params["port"])
    if conn.schema:
        params.setdefault("schema", conn.schema)
    return snowflake.connector.connect(
        user=conn.login, password=conn.password, autocommit=True, **params,
        session_parameters={"TIMEZONE": "UTC", "STATEMENT_TIMEOUT_IN_SECONDS": timeout,
                            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False})


def _extra(conn: Any) -> dict[str, Any]:
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else json.loads(conn.extra or "{}")
    return extra if isinstance(extra, dict) else {}
