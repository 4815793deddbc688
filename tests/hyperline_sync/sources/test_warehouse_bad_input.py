"""Bad warehouse input fails the partition with a message naming the object, never a credential,
and marks nothing done: a missing schema, a column of an unexpected type (Postgres and Snowflake),
a permission error, a statement timeout, an unreachable server (Postgres)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hyperline_sync.config import parse_config
from hyperline_sync.pipeline.sync import PartitionFailedError
from hyperline_sync.sources.warehouse.source import WarehouseReadError
from hyperline_sync.state.ledger import DONE, FAILED, Ledger
from tests.conftest import unused_port
from tests.hyperline_sync.sources.fake_snowflake import fakesnow_server, snowflake_warehouse
from tests.hyperline_sync.sources.test_warehouse_postgres import (
    CONN_ID,
    D1,
    SCHEMA,
    Harness,
    SegmentWarehouse,
    at,
    bulk,
    pipeline_config,
)

__all__ = ["fakesnow_server", "snowflake_warehouse"]
PASSWORD = "pw-never-shown-9f3a"


@pytest.fixture(params=["postgres", "snowflake"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "postgres":
        wh: Any = SegmentWarehouse(request.getfixturevalue("postgres_url")).create()
        request.getfixturevalue("monkeypatch").setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", wh.airflow_uri)
    else:
        wh = request.getfixturevalue("snowflake_warehouse")
    yield Harness(wh, tmp_path)
    if request.param == "postgres":
        wh.engine.dispose()


def statuses(tmp_path: Path) -> tuple[str, dict[str, str]]:
    ledger = Ledger.sqlite(tmp_path / "state" / "ledger.db")
    state = ledger.partitions("wh")[D1.isoformat()]
    return state.status, {o["key"]: o["status"] for o in ledger.objects("wh", D1.isoformat())}


def test_a_missing_schema_fails_the_partition_naming_it(harness: Harness, tmp_path: Path) -> None:
    raw, _ = pipeline_config(tmp_path, events=["api_call"])
    raw["pipelines"][0]["source"]["schema"] = "no_such_schema"
    with pytest.raises(WarehouseReadError, match=r"no_such_schema\.tracks: no tables in schema 'no_such_schema'"):
        harness.sync(parse_config(raw).pipelines[0], D1)
    assert statuses(tmp_path)[0] == FAILED


def test_a_required_column_of_another_type_fails_its_slice_naming_the_column(harness: Harness,
                                                                             tmp_path: Path) -> None:
    wh = harness.warehouse
    good = wh.insert(bulk(D1, 4, [1], "ok"))
    # An event table whose "timestamp" is text: not what Segment creates, so it is not guessed at.
    wh.sql(f"create table {SCHEMA}.odd_event (id varchar, received_at timestamp{'tz' if _pg(wh) else '_tz'}, "
           f"uuid_ts timestamp{'tz' if _pg(wh) else '_ntz'}, {_quoted(wh, 'timestamp')} varchar, event_text varchar)")
    wh.sql(f"insert into {SCHEMA}.odd_event values ('x1', '{at(D1, 1).isoformat()}', "
           f"'{at(D1, 2, 5).replace(tzinfo=None).isoformat()}', 'yesterday', 'Odd Event')")
    _, pipeline = pipeline_config(tmp_path, events=["api_call", "storage_used", "odd_event"])
    with pytest.raises(PartitionFailedError, match=rf"{SCHEMA}\.odd_event\.timestamp has type"):
        harness.sync(pipeline, D1)
    status, objects = statuses(tmp_path)
    assert status == FAILED and objects[f"{SCHEMA}.odd_event@2026-03-01T02"] == FAILED
    assert sorted(harness.sender.by_id()) == sorted(r.id for r in good)  # the other slices synced
    assert all(v == DONE for k, v in objects.items() if "odd_event" not in k)


def _pg(wh: Any) -> bool:
    return isinstance(wh, SegmentWarehouse)


def _quoted(wh: Any, name: str) -> str:
    return f'"{name}"' if _pg(wh) else f'"{name.upper()}"'


# -- Postgres only: roles, locks and ports -------------------------------------------------------------
@pytest.fixture
def postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Harness]:
    wh = SegmentWarehouse(postgres_url).create()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", wh.airflow_uri)
    yield Harness(wh, tmp_path)
    wh.engine.dispose()


def _connection(monkeypatch: pytest.MonkeyPatch, url: sa.URL, **fields: Any) -> None:
    conn = {"conn_type": "postgres", "host": url.host, "port": url.port, "schema": url.database,
            "login": url.username, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))


def test_a_permission_error_fails_the_listing_naming_the_table(postgres: Harness, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    wh = postgres.warehouse
    wh.insert(bulk(D1, 3, [1], "p"))
    role = f"reader_{uuid.uuid4().hex[:8]}"
    wh.sql(f"create role {role} login password '{PASSWORD}'")
    try:
        # Usage on the schema and select on tracks, but only insert on api_call: listed, not readable.
        wh.sql(f"grant usage on schema {SCHEMA} to {role}; grant select on {SCHEMA}.tracks to {role}; "
               f"grant insert on {SCHEMA}.api_call to {role}")
        _connection(monkeypatch, wh.url, login=role, password=PASSWORD)
        _, pipeline = pipeline_config(tmp_path, events=["api_call"])
        with pytest.raises(WarehouseReadError, match=r"shop_prod\.api_call: query failed: .*permission denied") as e:
            postgres.sync(pipeline, D1)
        assert PASSWORD not in str(e.value)
        assert statuses(tmp_path) == (FAILED, {})
    finally:
        wh.sql(f"drop owned by {role}; drop role {role}")


def test_a_statement_timeout_fails_the_partition_naming_the_table(postgres: Harness, tmp_path: Path) -> None:
    wh = postgres.warehouse
    wh.insert(bulk(D1, 3, [1], "t"))
    raw, _ = pipeline_config(tmp_path, events=["api_call"])
    raw["pipelines"][0]["source"]["query_timeout_seconds"] = 1
    with wh.engine.connect() as blocker:  # Segment's loader altering the table holds this lock
        blocker.execute(sa.text(f"lock table {SCHEMA}.api_call in access exclusive mode"))
        with pytest.raises(WarehouseReadError, match=r"shop_prod\.api_call: query failed: .*statement timeout"):
            postgres.sync(parse_config(raw).pipelines[0], D1)
        blocker.rollback()
    assert statuses(tmp_path) == (FAILED, {})


def test_an_unreachable_server_fails_without_showing_the_password(postgres: Harness, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres.warehouse.url.set(port=unused_port())
    _connection(monkeypatch, url, password=PASSWORD)
    _, pipeline = pipeline_config(tmp_path, events=["api_call"])
    with pytest.raises(WarehouseReadError, match="cannot connect") as e:
        postgres.sync(pipeline, D1)
    assert PASSWORD not in str(e.value) and statuses(tmp_path)[0] == FAILED


# -- connection types ------------------------------------------------------------------------------
def _source(tmp_path: Path, **extra: Any) -> Any:
    raw, _ = pipeline_config(tmp_path, events=["api_call"])
    raw["pipelines"][0]["source"].update(extra)
    return parse_config(raw).pipelines[0].source


def test_a_bigquery_connection_needs_no_google_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hyperline_sync.sources.warehouse.connection import connector_for

    keyfile = json.dumps({"private_key": PASSWORD})
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": keyfile, "project": "analytics-prod"}}))
    connector = connector_for(_source(tmp_path, schema="analytics-prod.shop_prod"))
    assert (connector.dialect.name, connector.via) == ("bigquery", "google-cloud-bigquery")
    assert PASSWORD in connector.secrets  # redacted from every error of the source


@pytest.mark.parametrize(("conn_type", "declared", "dialect", "hook"), [
    ("redshift", None, "redshift", "RedshiftSQLHook"),
    ("postgres", "redshift", "redshift", "PostgresHook"),
    ("postgres", None, "postgres", "PostgresHook"),
])
def test_the_connection_type_picks_the_dialect_and_the_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            conn_type: str, declared: str | None, dialect: str,
                                                            hook: str) -> None:
    from hyperline_sync.sources.warehouse.connection import connector_for

    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
        {"conn_type": conn_type, "host": "127.0.0.1", "port": unused_port(), "login": "u", "schema": "segment"}))
    connector = connector_for(_source(tmp_path, **({"dialect": declared} if declared else {})))
    assert (connector.dialect.name, connector.via) == (dialect, hook)
