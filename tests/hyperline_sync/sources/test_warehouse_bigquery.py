"""The Postgres warehouse scenarios (tests/hyperline_sync/sources/test_warehouse_postgres.py) on
BigQuery: google-cloud-bigquery's client, built from a `google_cloud_platform` Airflow connection whose
extra points it at a fake BigQuery REST server on 127.0.0.1 (tests/hyperline_sync/sources/fake_bigquery.py:
the SQL the client sends, transpiled by sqlglot, run on DuckDB). The scenario functions are the Postgres
module's, run with this module's `warehouse` fixture; the tests below them are BigQuery's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hyperline_sync.sources import test_warehouse_postgres as scenarios
from tests.hyperline_sync.sources.fake_bigquery import BigQueryWarehouse, bigquery_warehouse, fake_bigquery

harness = scenarios.harness
__all__ = ["bigquery_warehouse", "fake_bigquery", "harness"]


@pytest.fixture
def warehouse(bigquery_warehouse: BigQueryWarehouse) -> Iterator[BigQueryWarehouse]:
    yield bigquery_warehouse


test_every_row_ends_in_its_bucket_and_sent_events_are_exact = (
    scenarios.test_every_row_ends_in_its_bucket_and_sent_events_are_exact)
test_the_result_does_not_depend_on_the_chunk_size = scenarios.test_the_result_does_not_depend_on_the_chunk_size
test_late_loads_are_new_slices_read_by_the_next_run_alone = (
    scenarios.test_late_loads_are_new_slices_read_by_the_next_run_alone)
test_a_slice_that_grows_is_read_again_and_only_its_new_rows_are_sent = (
    scenarios.test_a_slice_that_grows_is_read_again_and_only_its_new_rows_are_sent)
test_slices_still_loading_are_not_listed = scenarios.test_slices_still_loading_are_not_listed
test_every_event_through_tracks_when_no_events_are_configured = (
    scenarios.test_every_event_through_tracks_when_no_events_are_configured)
test_mapping_customer_id_column_renames_and_property_rules = (
    scenarios.test_mapping_customer_id_column_renames_and_property_rules)
