"""Every statement each dialect produces, parsed by sqlglot in that dialect: one SELECT, Segment's
names quoted as the warehouse stores them (upper-case on Snowflake), timestamps cast as the
warehouse needs, BigQuery's partition pruning present. Redshift's statements, transpiled to
Postgres, also run on the real Postgres and give the Postgres dialect's answers. Names from the
config or the catalog cannot break out of their quotes in any dialect."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from hyperline_sync.config import ConfigError, parse_config
from hyperline_sync.sources.warehouse.dialects import DIALECTS, Dialect, Statement, dialect_for
from tests.hyperline_sync.sources.test_warehouse_postgres import D1, SCHEMA, SegmentWarehouse, at, bulk, nasty

START = dt.datetime.combine(D1, dt.time(), tzinfo=dt.UTC)
HOUR = at(D1, 10)
COLUMNS = ["id", "received_at", "uuid_ts", "timestamp", "event_text", "duration_ms"]


def statements(dialect: Dialect, schema: str = SCHEMA) -> dict[str, Statement]:
    table = dialect.stored("api_call")
    columns = [dialect.stored("loaded_at" if c == "uuid_ts" and dialect.load_column == "loaded_at" else c)
               for c in COLUMNS]
    return {
        "now": dialect.now(),
        "tables": dialect.tables(schema),
        "columns": dialect.columns(schema, table),
        "slices": dialect.slices(schema, table, START),
        "first page": dialect.page(schema, table, columns, START, HOUR, None, 100),
        "next page": dialect.page(schema, table, columns, START, HOUR, (at(D1, 9, 30), "dup-1"), 101),
        "no load time": dialect.page(schema, table, columns, START, None, None, 100),
    }


def inline(statement: Statement) -> str:
    """The statement with its parameters as SQL string literals (how sqlglot can read it)."""
    def literal(value: Any) -> str:
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
        return "'" + text.replace("'", "''") + "'"

    parts = statement.sql.split("{p}")
    return parts[0] + "".join(literal(v) + part for v, part in zip(statement.params, parts[1:], strict=True))


CASES = [(name, what) for name in DIALECTS for what in statements(DIALECTS[name])]


@pytest.mark.parametrize(("name", "what"), CASES)
def test_every_statement_parses_in_its_dialect_with_segment_names_as_stored(name: str, what: str) -> None:
    dialect = DIALECTS[name]
    statement = statements(dialect)[what]
    [tree] = sqlglot.parse(inline(statement), read=dialect.sqlglot, error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Select)
    # (sqlglot reads BigQuery's INFORMATION_SCHEMA.TABLES as one quoted name: the catalog's, not Segment's)
    quoted = [i.this for i in tree.find_all(exp.Identifier) if i.quoted and not i.this.startswith("INFORMATION_")]
    if what in ("slices", "first page", "next page", "no load time"):
        assert quoted, "names are quoted"
    for ident in quoted:
        assert ident == (ident.upper() if dialect.upper else ident.lower()), ident
    if name == "snowflake":
        assert "SHOP_PROD" in statement.params or '"SHOP_PROD"' in statement.sql or what == "now"
    casts = [c for c in tree.find_all(exp.Cast)]
    if name == "snowflake" and what in ("slices", "first page", "next page"):
        assert casts and all(c.to.this == exp.DataType.Type.TIMESTAMPTZ for c in casts)
    if name == "bigquery" and what in ("slices", "first page", "next page"):
        assert "_PARTITIONTIME" in statement.sql
        assert '"' not in statement.sql  # backticks only


@pytest.mark.parametrize("name", list(DIALECTS))
def test_statements_render_in_the_drivers_parameter_style(name: str) -> None:
    dialect = DIALECTS[name]
    sql, params = statements(dialect)["next page"].render(dialect.paramstyle)
    assert "{p}" not in sql
    if name == "bigquery":
        assert isinstance(params, dict) and "%(p0)s" in sql and len(params) == sql.count("%(")
    else:
        assert sql.count("%s") == len(params)


def test_a_bigquery_dataset_of_another_project_is_named_project_dataset() -> None:
    bigquery = DIALECTS["bigquery"]
    sql = bigquery.tables("analytics-prod.shop_prod").sql
    assert sql == "select table_name from `analytics-prod`.`shop_prod`.INFORMATION_SCHEMA.TABLES"
    tree = sqlglot.parse_one(inline(bigquery.slices("analytics-prod.shop_prod", "api_call", START)), read="bigquery")
    table = next(tree.find_all(exp.Table))
    assert (table.catalog, table.db, table.name) == ("analytics-prod", "shop_prod", "api_call")
    assert "loaded_at" in sql or "`loaded_at`" in bigquery.slices(SCHEMA, "api_call", START).sql


@pytest.mark.parametrize(("conn_type", "declared", "expected"), [
    ("postgres", None, "postgres"), ("postgres", "redshift", "redshift"), ("redshift", None, "redshift"),
    ("snowflake", None, "snowflake"), ("google_cloud_platform", None, "bigquery"), ("gcpbigquery", None, "bigquery"),
    ("mysql", None, "postgres"), ("google_cloud_platform", "bigquery", "bigquery"),
])
def test_the_dialect_comes_from_the_connection_type_unless_declared(conn_type, declared, expected) -> None:
    assert dialect_for(conn_type, declared).name == expected


# -- injection -------------------------------------------------------------------------------------
HOSTILE = ['x"; drop table users; --', "x`; drop table users; --", "x'--", "Shop Prod", "a.b.c", "x\\", "ü"]


@pytest.mark.parametrize("name", list(DIALECTS))
@pytest.mark.parametrize("hostile", HOSTILE)
def test_no_identifier_can_leave_its_quotes(name: str, hostile: str) -> None:
    dialect = DIALECTS[name]
    with pytest.raises(ValueError):
        dialect.quote(hostile)
    with pytest.raises(ValueError):
        dialect.page(SCHEMA, "api_call", ["id", hostile], START, HOUR, None, 10)
    with pytest.raises(ValueError):
        dialect.slices(hostile if "." not in hostile else hostile + "`", "api_call", START)


@pytest.mark.parametrize("hostile", [*HOSTILE, "proj.shop_prod", "bad_project!.shop_prod", "`p`.x"])
@pytest.mark.parametrize("dialect", ["postgres", "redshift", "snowflake"])
def test_the_config_refuses_names_that_are_not_segments(tmp_path: Path, hostile: str, dialect: str) -> None:
    for key, value in (("schema", hostile), ("events", [hostile])):
        source = {"kind": "warehouse", "conn_id": "wh", "schema": SCHEMA, "dialect": dialect, key: value}
        raw = {"state": {"dir": str(tmp_path)}, "pipelines": [{"name": "wh", "source": source,
                                                                  "hyperline_conn_id": "h", "mapping": {}}]}
        with pytest.raises(ConfigError):
            parse_config(raw)


def test_the_config_takes_project_dataset_for_bigquery_only(tmp_path: Path) -> None:
    def source(**extra: Any) -> Any:
        raw = {"state": {"dir": str(tmp_path)}, "pipelines": [{
            "name": "wh", "hyperline_conn_id": "h", "mapping": {},
            "source": {"kind": "warehouse", "conn_id": "wh", "schema": "analytics-prod.shop_prod", **extra}}]}
        return parse_config(raw).pipelines[0].source

    assert source(dialect="bigquery").schema == "analytics-prod.shop_prod"
    assert source().dialect is None  # the connection type decides at run time
    assert source().query_timeout_seconds == 900
    with pytest.raises(ConfigError, match="BigQuery"):
        source(dialect="snowflake")


# -- Redshift's statements on the real Postgres ----------------------------------------------------
@pytest.fixture
def postgres_warehouse(postgres_url: str) -> Iterator[SegmentWarehouse]:
    wh = SegmentWarehouse(postgres_url).create()
    wh.insert(bulk(D1, 12, [9], "r") + nasty(D1))
    yield wh
    wh.engine.dispose()


def test_redshift_statements_transpiled_to_postgres_answer_as_postgres_does(postgres_warehouse) -> None:
    wh = postgres_warehouse
    redshift, postgres = DIALECTS["redshift"], DIALECTS["postgres"]
    for what, statement in statements(redshift).items():
        [sql] = sqlglot.transpile(inline(statement), read="redshift", write="postgres")
        got = wh.sql(sql.replace("%", "%%") if "%" in sql else sql)
        if what == "now":
            assert abs(got[0][0] - dt.datetime.now(dt.UTC)) < dt.timedelta(hours=1)
            continue
        assert got == wh.sql(inline(statements(postgres)[what])), what
        if what in ("slices", "first page", "next page", "columns", "tables"):
            assert got, what  # the data has rows for each


def test_bigquery_prunes_to_the_load_days_partitions_with_a_day_of_margin() -> None:
    bigquery = DIALECTS["bigquery"]
    listing = bigquery.slices(SCHEMA, "api_call", START)
    assert "_PARTITIONTIME >= TIMESTAMP({p})" in listing.sql and "_PARTITIONTIME <" not in listing.sql
    assert "2026-02-28 00:00:00.000000+00:00" in listing.params  # rows are ingested after they are received
    page = bigquery.page(SCHEMA, "api_call", ["id"], START, at(D1, 23), None, 10)
    assert {"2026-02-28 00:00:00.000000+00:00", "2026-03-03 00:00:00.000000+00:00"} <= set(page.params)
