"""Fixtures of the fault suite: Airflow's metadata DB, the generated archive on moto S3, an AWS
connection with a distinctive secret, a per-test Harness, and the session-wide Evidence that the
secrets scan (run last) reads."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hyperline_devtools.emulator import Emulator
from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from tests.faults.harness import (
    API_KEY,
    ARCHIVE_BUCKET,
    ARCHIVE_PREFIX,
    AWS_ACCESS_KEY_ID,
    AWS_CONN_ID,
    AWS_SECRET,
    DAYS,
    EVENTS_PER_DAY,
    HYPERLINE_CONN_ID,
    OBJECTS_PER_DAY,
    SOURCE_ID,
    Evidence,
    Harness,
    upload,
)

SECRETS_TEST = "test_no_secret_in_any_log_report_dead_letter_or_xcom"


@pytest.fixture(autouse=True)
def _migrated(airflow_db):
    return airflow_db


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The secrets scan reads what every other scenario left behind: run it last."""
    last = [item for item in items if item.name == SECRETS_TEST]
    if last:
        items[:] = [item for item in items if item.name != SECRETS_TEST] + last


@pytest.fixture(scope="session")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidence]:
    """Session-wide: secrets in use, and every place they could leak to. A root log handler keeps
    every log record of the session (task logs of dag.test runs included) in one file."""
    folder = tmp_path_factory.mktemp("evidence")
    found = Evidence(log_file=folder / "captured.log")
    handler = logging.FileHandler(found.log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    found.secrets.update({"Hyperline API key": API_KEY, "AWS secret": AWS_SECRET})
    try:
        yield found
    finally:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="session")
def fault_archive(tmp_path_factory: pytest.TempPathFactory, evidence: Evidence) -> SampleManifest:
    """A nasty 3-day archive of 27,000 lines (~21,000 deliverable events), written once."""
    manifest = generate_archive(tmp_path_factory.mktemp("fault-archive"), SOURCE_ID, DAYS, EVENTS_PER_DAY,
                                seed=2026, objects_per_day=OBJECTS_PER_DAY)
    assert len(manifest.expected_events) >= 20_000
    evidence.secrets["Segment writeKey"] = manifest.write_key
    return manifest


@pytest.fixture(scope="session")
def fault_aws_conn(moto_server: str) -> Iterator[str]:
    """An AWS connection to moto whose secret is distinctive, so a leak is findable (moto accepts any)."""
    variable = f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}"
    os.environ[variable] = json.dumps({
        "conn_type": "aws",
        "login": AWS_ACCESS_KEY_ID,
        "password": AWS_SECRET,
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1",
                  "config_kwargs": {"s3": {"addressing_style": "path"}}},
    })
    try:
        yield AWS_CONN_ID
    finally:
        os.environ.pop(variable, None)


@pytest.fixture(scope="session")
def archive_url(fault_archive: SampleManifest, s3_client: Any, fault_aws_conn: str) -> str:
    """The session archive on moto S3, read-only for every scenario."""
    upload(s3_client, ARCHIVE_BUCKET, fault_archive.root)
    return f"s3://{ARCHIVE_BUCKET}/{ARCHIVE_PREFIX}"


@pytest.fixture
def harness(fault_archive, archive_url, evidence, tmp_path, monkeypatch, caplog, capfd) -> Iterator[Harness]:
    """A fresh state dir and emulator; the test's captured output (dag.test task logs go to stdout) and
    log records are handed to the evidence when it ends."""
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(tmp_path / "pipelines.yaml"))
    evidence.state_dirs.append(tmp_path / "state")  # outputs only: some tests put input archives in tmp_path
    with Emulator(api_key=API_KEY) as emulator:
        monkeypatch.setenv(f"AIRFLOW_CONN_{HYPERLINE_CONN_ID.upper()}",
                           json.dumps({"conn_type": "hyperline", "host": emulator.url, "password": API_KEY}))
        h = Harness(fault_archive, emulator, tmp_path / "state", tmp_path / "pipelines.yaml", evidence, archive_url,
                    capfd=capfd)
        h.configure()
        try:
            yield h
        finally:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?")
            out, err = capfd.readouterr()
            evidence.text(f"stdout of {test}", out)
            evidence.text(f"stderr of {test}", err)
            evidence.text(f"caplog of {test}", caplog.text)
            sys.stdout.write(out)  # still shown if the test fails
            sys.stderr.write(err)


@pytest.fixture
def bucket_name() -> str:
    return f"faults-{uuid.uuid4().hex[:10]}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    results = getattr(terminalreporter.config, "_fault_results", None)
    if not results:
        return
    terminalreporter.section("fault scenarios")
    terminalreporter.write_line(f"{'scenario':<58}{'expected':>10}{'at Hyperline':>14}{'sent twice':>12}"
                                f"{'posted again':>14}  result")
    for row in results:
        terminalreporter.write_line(f"{row['scenario']:<58}{row['expected']:>10}{row['at_hyperline']:>14}"
                                    f"{row['sent_twice']:>12}{row['posted_again']:>14}  {row['result']}")


@pytest.fixture(scope="session", autouse=True)
def _fault_summary(request: pytest.FixtureRequest, evidence: Evidence) -> None:
    request.config._fault_results = evidence.results  # type: ignore[attr-defined]
