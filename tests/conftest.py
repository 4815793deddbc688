"""Test-wide setup: a private AIRFLOW_HOME, set before anything imports Airflow, and shared fixtures."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = REPO / ".airflow-test"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

# HYPERLINE_TEST_CPUS=1 pins the tests (and what they start) to one core, so `tuning.processes`, which
# defaults to the cores a task may use, is 1: the sync reads in its own process, without workers.
if cpus := os.environ.get("HYPERLINE_TEST_CPUS"):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: int(cpus)])

MOTO_CONN_ID = "moto_s3"
POSTGRES_ADMIN_URL = os.environ.get("HYPERLINE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the real Postgres (127.0.0.1:5432), dropped after the test."""
    import sqlalchemy as sa

    name = f"hyperline_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata DB (SQLite under the test AIRFLOW_HOME), migrated once per session."""
    import subprocess
    import sys

    AIRFLOW_HOME.mkdir(exist_ok=True)
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws_conn_id(moto_server: str) -> Iterator[str]:
    variable = f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}"
    previous = os.environ.get(variable)
    os.environ[variable] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {
                "endpoint_url": moto_server,
                "region_name": "us-east-1",
                "config_kwargs": {"s3": {"addressing_style": "path"}},
            },
        }
    )
    try:
        yield MOTO_CONN_ID
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous


@pytest.fixture(scope="session")
def s3_client(moto_server: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
