"""The sync DAG under a real scheduler, not dag.test: `airflow standalone` (scheduler, DAG processor,
API server and LocalExecutor workers, each its own process) with its own AIRFLOW_HOME and ports.

Runs are started as a user starts them (unpausing the DAG, `airflow dags trigger` with a range) and
watched in the metadata DB. What arrives is checked against the archive generator's manifest and
the Hyperline emulator, which runs in this process on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hyperline_devtools.emulator import Emulator, Faults
from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from hyperline_sync.config.models import DAG_ID_PREFIX
from tests.conftest import REPO, unused_port
from tests.dag_runs import read_report

pytestmark = pytest.mark.slow

API_KEY = "test_scheduler_secret_key"
PIPELINE = "sched"
DAG_ID = DAG_ID_PREFIX + PIPELINE
# Long before the scheduled run's interval (today and its lookback day): only the backfill reads them.
DAYS = [dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(3)]
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}
WAIT_SECONDS = 300
ENDED = ("success", "failed")


class Standalone:
    """`airflow standalone` in a private home; the state of its DagRuns read from its SQLite DB."""

    def __init__(self, home: Path, config: Path, emulator: Emulator) -> None:
        self.home = home
        api_port = unused_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(unused_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(unused_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(unused_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "HYPERLINE_SYNC_CONFIG": str(config),
            "AIRFLOW_CONN_HYPERLINE_SCHED": json.dumps(
                {"conn_type": "hyperline", "host": emulator.url, "password": API_KEY}),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        self.env = env
        self.process: subprocess.Popen | None = None

    def airflow(self, *args: str) -> str:
        done = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"airflow {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done.stdout

    def start(self) -> None:
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "hyperline", "2", "Concurrent senders to Hyperline")
        log = (self.home / "standalone.log").open("w")
        self.process = subprocess.Popen(["airflow", "standalone"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def query(self, sql: str, *args: object) -> list[tuple]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def runs(self) -> dict[str, tuple[str, str]]:
        """run_id -> (run_type, state) of the sync DAG's runs."""
        rows = self.query("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ?", DAG_ID)
        return {run_id: (run_type, state) for run_id, run_type, state in rows}

    def wait(self, until, what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log_tail()
            if until():
                return
            time.sleep(2)
        raise AssertionError(f"timed out waiting for {what}; runs: {self.runs()}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return (self.home / "standalone.log").read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> SampleManifest:
    return generate_archive(tmp_path_factory.mktemp("archive"), "schedSrc01", DAYS, 800, seed=5, objects_per_day=2)


@pytest.fixture(scope="module")
def airflow(archive, tmp_path_factory) -> Iterator[tuple[Standalone, Emulator, Path]]:
    root = tmp_path_factory.mktemp("scheduler")
    state = root / "state"
    config = root / "pipelines.yaml"
    config.write_text(yaml.safe_dump({"state": {"dir": str(state)}, "pipelines": [{
        "name": PIPELINE,
        "source": {"kind": "s3_archive", "url": f"file://{archive.root}", "source_id": archive.source_id},
        "hyperline_conn_id": "hyperline_sched",
        "start_date": DAYS[0].isoformat(),
        "tuning": {"retries": 0, "chunk_size": 300, "batch_size": 200},
    }]}))
    with Emulator(api_key=API_KEY, faults=Faults(latency_ms=150)) as emulator:
        standalone = Standalone(root / "airflow", config, emulator)
        standalone.start()
        try:
            yield standalone, emulator, state
        finally:
            standalone.stop()


def test_scheduled_run_and_a_backfill_under_the_real_scheduler(airflow, archive):
    standalone, emulator, state = airflow
    standalone.wait(lambda: standalone.query("SELECT 1 FROM dag WHERE dag_id = ?", DAG_ID), "the DAG to be parsed")
    standalone.airflow("dags", "unpause", DAG_ID)
    standalone.airflow("dags", "trigger", DAG_ID, "--conf", json.dumps(RANGE))

    def both_ended() -> bool:
        kinds = {run_type for run_type, state in standalone.runs().values() if state in ENDED}
        return {"scheduled", "manual"} <= kinds

    standalone.wait(both_ended, "the scheduled run and the backfill to end")
    # The first of each kind: another scheduled run starts if an hour boundary passes meanwhile.
    runs = {kind: min(run_id for run_id, (run_type, _) in standalone.runs().items() if run_type == kind)
            for kind in ("scheduled", "manual")}
    assert {kind: standalone.runs()[run_id][1] for kind, run_id in runs.items()} == {
        "scheduled": "success", "manual": "success"}
    reports = {kind: read_report(state / "reports", PIPELINE, run_id) for kind, run_id in runs.items()}

    # The scheduled run covers its own hour and the lookback day: folders this archive does not have.
    assert reports["scheduled"]["totals"]["read"] == 0
    backfill = reports["manual"]
    assert [p["partition"] for p in backfill["partitions"]] == [d.isoformat() for d in DAYS]
    totals = backfill["totals"]
    assert totals["read"] == archive.lines_total
    assert totals["read"] == totals["sent"] + totals["rejected"] + totals["skipped"] + totals["duplicates"]
    assert totals["sent"] == len(archive.expected_events)
    assert set(emulator.events) == set(archive.expected_events)
    assert max(emulator.post_counts.values()) == 1  # an id on two days: posted once, from the earlier day
    # The days ran side by side on the pool's 2 slots (the emulator's latency stretches each send).
    spans = standalone.query("SELECT start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ? "
                             "AND task_id = 'sync' ORDER BY start_date", DAG_ID, runs["manual"])
    assert any(later_start < end for (_, end), (later_start, _) in itertools.pairwise(spans)), spans

    # The same range again, as a user reruns it: nothing is read again and nothing is posted twice.
    standalone.airflow("dags", "trigger", DAG_ID, "--conf", json.dumps(RANGE))
    standalone.wait(lambda: sum(t == "manual" and s in ENDED for t, s in standalone.runs().values()) == 2,
                    "the rerun to end")
    rerun_id = next(run_id for run_id, (run_type, _) in standalone.runs().items()
                    if run_type == "manual" and run_id != runs["manual"])
    assert standalone.runs()[rerun_id][1] == "success"
    assert read_report(state / "reports", PIPELINE, rerun_id)["totals"]["read"] == 0
    assert max(emulator.post_counts.values()) == 1
