"""A warehouse schema that is not a Segment source (missing, or without its `tracks` table) fails the
partition naming `schema.tracks`, on the real Postgres: it must not pass for a quiet day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperline_sync.config import parse_config
from hyperline_sync.sources.warehouse.source import WarehouseReadError
from hyperline_sync.state.ledger import DONE, FAILED, Ledger
from tests.hyperline_sync.sources.test_warehouse_postgres import (
    CONN_ID,
    D1,
    SCHEMA,
    Harness,
    SegmentWarehouse,
    pipeline_config,
)


@pytest.fixture
def harness(postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Harness]:
    wh = SegmentWarehouse(postgres_url).create()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", wh.airflow_uri)
    yield Harness(wh, tmp_path)
    wh.engine.dispose()


@pytest.mark.parametrize("schema", ["no_such_schema", "without_tracks"])
def test_a_schema_without_tracks_fails_the_partition_naming_it(harness: Harness, tmp_path: Path, schema: str) -> None:
    harness.warehouse.sql("create schema without_tracks")
    harness.warehouse.sql(f"create table without_tracks.api_call as select * from {SCHEMA}.api_call")
    raw, _ = pipeline_config(tmp_path, events=["api_call"])
    raw["pipelines"][0]["source"]["schema"] = schema
    with pytest.raises(WarehouseReadError) as caught:
        harness.sync(parse_config(raw).pipelines[0], D1)
    assert caught.value.key == f"{schema}.tracks"
    assert "check source.schema and source.conn_id" in str(caught.value)
    state = Ledger.sqlite(tmp_path / "state" / "ledger.db").partitions("wh")[D1.isoformat()]
    assert state.status == FAILED and f"{schema}.tracks" in state.last_error


def test_a_quiet_day_of_a_segment_schema_is_an_empty_success(harness: Harness, tmp_path: Path) -> None:
    _, pipeline = pipeline_config(tmp_path, events=["api_call"])
    [outcome] = harness.sync(pipeline, D1)
    assert (outcome.status, outcome.counts.read, outcome.objects_total) == (DONE, 0, 0)
