"""The warehouse DagRuns of tests/dags/test_sync_dag_warehouse.py on Snowflake (fakesnow's server on
127.0.0.1 through a `snowflake` Airflow connection): the same scenario functions, run with this
module's `harness` (the Segment schema upper-case, as Segment's Snowflake loader writes it)."""

from __future__ import annotations

import pytest

from tests.dag_runs import pipeline_with_emulator
from tests.dags import test_sync_dag_warehouse as scenarios
from tests.hyperline_sync.sources.fake_snowflake import SnowflakeWarehouse, fakesnow_server, snowflake_warehouse

__all__ = ["fakesnow_server", "snowflake_warehouse"]
pytestmark = pytest.mark.slow


@pytest.fixture
def harness(snowflake_warehouse: SnowflakeWarehouse, tmp_path, monkeypatch) -> scenarios.Harness:
    with pipeline_with_emulator(scenarios.pipeline(), scenarios.API_KEY, tmp_path, monkeypatch) as (state, emulator):
        yield scenarios.Harness(scenarios.PIPELINE, emulator, state, snowflake_warehouse)


test_a_range_run_delivers_every_row_once_then_reruns_skip_and_dry_run_sends_nothing = (
    scenarios.test_a_range_run_delivers_every_row_once_then_reruns_skip_and_dry_run_sends_nothing)
test_late_rows_arrive_with_the_first_scheduled_run_after_their_load = (
    scenarios.test_late_rows_arrive_with_the_first_scheduled_run_after_their_load)
