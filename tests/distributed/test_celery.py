"""The sync on a real multi-worker Airflow: CeleryExecutor, two Celery workers, Postgres metadata DB,
Redis broker, state in S3 (moto's server), ledger in Postgres (include/hyperline_devtools/cluster.py,
the deployment of docker-compose.yaml without Docker).

A multi-day run is triggered; in the middle of a partition the worker syncing it is SIGKILLed. Its
task is found dead by the scheduler (a short `task_instance_heartbeat_timeout`), retried on the other
worker once the dead attempt's claim expired (a one-minute claim TTL), and ends right: every event is
held once at the emulator, and what was posted twice is at most what was in flight. A rerun sends
nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from hyperline_devtools.cluster import CeleryCluster
from hyperline_devtools.distributed_demo import pipelines_config, upload_archive
from hyperline_devtools.emulator import Emulator, Faults
from hyperline_devtools.sample_archive import SampleManifest, generate_archive
from hyperline_sync.config.models import DAG_ID_PREFIX
from hyperline_sync.pipeline.unit_sync import IN_FLIGHT_BATCHES
from hyperline_sync.state.store import Location, open_location
from tests.dag_runs import read_report

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

API_KEY = "test_distributed_secret_key"
PIPELINE = "dist"
DAG_ID = DAG_ID_PREFIX + PIPELINE
DAYS = [dt.date(2026, 5, 1) + dt.timedelta(days=i) for i in range(4)]
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}
BATCH = 50
# Short, so that a killed worker's task is found dead and retried within the test's minutes.
HEARTBEAT_TIMEOUT = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                     "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"}


@dataclass
class Deployment:
    cluster: CeleryCluster
    emulator: Emulator
    manifest: SampleManifest
    outputs: Location  # the reports' location in S3


def connection(url: str) -> str:
    parsed = sa.engine.make_url(url)
    return json.dumps({"conn_type": "postgres", "host": parsed.host, "port": parsed.port,
                       "login": parsed.username, "schema": parsed.database})


@pytest.fixture
def deployment(tmp_path, s3_client, aws_conn_id, moto_server, postgres_url) -> Iterator[Deployment]:
    # Days without messageIds shared between them, synced in parallel (no dedup window to wait for).
    manifest = generate_archive(tmp_path / "archive", "distSrc01", DAYS, 1000, seed=3, nasty=False, objects_per_day=2)
    bucket = f"dist-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    upload_archive(s3_client, bucket, manifest.root)
    config = tmp_path / "pipelines.yaml"
    config.write_text(yaml.safe_dump(pipelines_config(
        bucket=bucket, source_id=manifest.source_id, aws_conn_id=aws_conn_id, ledger_conn_id="ledger_dist",
        hyperline_conn_id="hyperline_dist", pipeline=PIPELINE,
        tuning={"retries": 2, "retry_delay_seconds": 1, "chunk_size": 200, "batch_size": BATCH,
                "dedup_window_days": 0, "claim_ttl_minutes": 1, "processes": 2})))
    # Slow enough answers that a partition takes seconds: the kill lands in the middle of one.
    with Emulator(api_key=API_KEY, faults=Faults(latency_ms=150)) as emulator:
        env = {
            "HYPERLINE_SYNC_CONFIG": str(config),
            f"AIRFLOW_CONN_{aws_conn_id.upper()}": _aws_connection(aws_conn_id),
            "AIRFLOW_CONN_LEDGER_DIST": connection(postgres_url),
            "AIRFLOW_CONN_HYPERLINE_DIST": json.dumps(
                {"conn_type": "hyperline", "host": emulator.url, "password": API_KEY}),
        }
        cluster = CeleryCluster(tmp_path / "airflow", env, workers=2, redis_db=7, settings=HEARTBEAT_TIMEOUT)
        try:
            cluster.start()
            outputs = open_location(f"s3://{bucket}/hyperline-sync", aws_conn_id) / "reports"
            yield Deployment(cluster, emulator, manifest, outputs)
        finally:
            cluster.stop()


def _aws_connection(conn_id: str) -> str:
    return os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]  # the moto connection of tests/conftest.py


def test_a_run_on_two_celery_workers_survives_a_killed_worker(deployment: Deployment) -> None:
    started = time.monotonic()
    cluster, emulator, manifest = deployment.cluster, deployment.emulator, deployment.manifest
    cluster.wait(lambda: cluster.query("SELECT 1 FROM dag WHERE dag_id = :d", d=DAG_ID), "the DAG to be parsed")
    cluster.airflow("dags", "unpause", DAG_ID)
    run_id = cluster.trigger(DAG_ID, RANGE)

    def syncing() -> tuple | None:  # a sync attempt that has posted, with its worker
        if emulator.requests < 4:
            return None
        running = [r for r in cluster.attempts(DAG_ID, run_id) if r[0] == "sync" and r[3] == "running"]
        return next(((r, w) for r in running if (w := cluster.worker_of(r[4]))), None)

    (victim_task, victim) = cluster.wait(syncing, "a partition in the middle of its sync", 300)
    posted_before_kill = emulator.requests
    cluster.kill(victim, signal.SIGKILL)
    survivor = next(name for name in cluster.worker_names if name != victim)

    cluster.wait(lambda: cluster.run_state(DAG_ID, run_id), "the run to end", 420)
    attempts = cluster.attempts(DAG_ID, run_id)
    assert cluster.run_state(DAG_ID, run_id) == "success", attempts
    assert emulator.requests > posted_before_kill

    # Tasks ran on both workers; the killed attempt's task ended on the other one after a retry.
    workers = {cluster.worker_of(r[4]) for r in attempts}
    assert set(cluster.worker_names) <= workers, attempts
    retried = [r for r in attempts if r[:2] == victim_task[:2] and r[2] > victim_task[2]]
    assert retried and retried[-1][3] == "success" and cluster.worker_of(retried[-1][4]) == survivor, attempts

    # Every event held once; posted twice: at most the batches posted and not yet checkpointed when it died.
    assert set(emulator.events) == set(manifest.expected_events)
    posted_twice = [i for i, n in emulator.post_counts.items() if n > 1]
    assert max(emulator.post_counts.values()) <= 2 and len(posted_twice) <= IN_FLIGHT_BATCHES * BATCH
    report = read_report(deployment.outputs, PIPELINE, run_id)
    assert report["balanced"] and report["status"] == "success"
    # The killed attempt's work is in no outcome but in the ledger, which has every line once.
    assert sum(p["ledger_totals"]["read"] for p in report["partitions"]) == manifest.lines_total
    assert sum(p["ledger_totals"]["sent"] for p in report["partitions"]) == len(manifest.expected_events)

    # A rerun of the range sends nothing.
    requests = emulator.requests
    rerun = cluster.trigger(DAG_ID, RANGE)
    cluster.wait(lambda: cluster.run_state(DAG_ID, rerun), "the rerun to end", 300)
    assert cluster.run_state(DAG_ID, rerun) == "success"
    assert emulator.requests == requests
    assert read_report(deployment.outputs, PIPELINE, rerun)["totals"]["sent"] == 0
    print(f"distributed test: {time.monotonic() - started:.0f} s after the cluster was up; "
          f"killed {victim}, retried on {survivor}")


def test_the_shared_settings_are_those_of_docker_compose() -> None:
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yaml").read_text())
    common = compose["x-airflow-common"]
    assert "include/docker/celery.env" in [str(p) for p in common.get("env_file", [])]
