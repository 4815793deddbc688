"""The Postgres warehouse scenarios (tests/hyperline_sync/sources/test_warehouse_postgres.py) on
Snowflake: fakesnow's server on 127.0.0.1, reached through a `snowflake` Airflow connection whose
extra gives its host, port and protocol. The scenario functions are the Postgres module's, imported
here so pytest runs them with this module's `warehouse` fixture (the upper-case schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hyperline_sync.sources import test_warehouse_postgres as scenarios
from tests.hyperline_sync.sources.fake_snowflake import SnowflakeWarehouse, fakesnow_server, snowflake_warehouse

harness = scenarios.harness
__all__ = ["fakesnow_server", "harness", "snowflake_warehouse"]


@pytest.fixture
def warehouse(snowflake_warehouse: SnowflakeWarehouse) -> Iterator[SnowflakeWarehouse]:
    yield snowflake_warehouse


globals().update({scenario.__name__: scenario for scenario in scenarios.ENGINE_SCENARIOS})  # collected here too
test_listing_errors_name_the_schema_and_missing_tables_are_skipped = (
    scenarios.test_listing_errors_name_the_schema_and_missing_tables_are_skipped)
