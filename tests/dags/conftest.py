"""DAG tests need Airflow's metadata DB."""

import pytest


@pytest.fixture(autouse=True)
def _migrated(airflow_db):
    return airflow_db
