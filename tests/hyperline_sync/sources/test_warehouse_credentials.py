"""The warehouse reader drops credential columns (Segment snake_cases `writeKey` to `write_key`)
like the archive does, counted as dropped properties; `mapping.allow_properties` lets one through
in either spelling. On a real Postgres, through `sync_partition`."""

from __future__ import annotations

import pytest

from tests.hyperline_sync.sources import test_warehouse_postgres as postgres
from tests.hyperline_sync.sources.test_warehouse_postgres import D1, SCHEMA, Harness, Row, at, pipeline_config

warehouse, harness = postgres.warehouse, postgres.harness  # its fixtures: a fresh Segment-shaped schema

SECRET = "sk_live_in_a_warehouse_column"


@pytest.fixture
def credential_rows(harness: Harness) -> Harness:
    for column in ("write_key", "password", "api_key", "Authorization"):
        harness.warehouse.sql(f'alter table {SCHEMA}.api_call add column "{column}" text')
    harness.warehouse.insert([Row("api_call", "c1", at(D1, 1), at(D1, 2, 1), props={
        "endpoint": "/x", "write_key": SECRET, "password": SECRET, "api_key": "k1", "Authorization": SECRET})])
    return harness


@pytest.mark.parametrize("mapping", [{}, {"properties": {"API Call": {"include": ["endpoint", "apiKey",
                                                                                  "password"]}}}])
def test_credential_columns_are_dropped_and_counted(credential_rows: Harness, tmp_path, mapping: dict) -> None:
    _, pipeline = pipeline_config(tmp_path, events=["api_call"], mapping=mapping)
    [outcome] = credential_rows.sync(pipeline, D1)
    [event] = credential_rows.sender.events
    assert event["record"] == {"id": "c1", "endpoint": "/x"}
    included = 2 if mapping else 4  # the rule selects apiKey and password only
    assert outcome.dropped_properties == included


def test_allow_properties_lets_a_column_through_by_its_camel_case_name(credential_rows: Harness, tmp_path) -> None:
    mapping = {"allow_properties": ["apiKey"], "properties": {"API Call": {"include": ["endpoint", "apiKey"]}}}
    _, pipeline = pipeline_config(tmp_path, events=["api_call"], mapping=mapping)
    [outcome] = credential_rows.sync(pipeline, D1)
    [event] = credential_rows.sender.events
    assert event["record"] == {"id": "c1", "endpoint": "/x", "api_key": "k1"}
    assert outcome.dropped_properties == 0
