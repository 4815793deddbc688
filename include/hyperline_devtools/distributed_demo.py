"""`make distributed-demo`: the multi-worker deployment of docker-compose.yaml on one machine, no Docker.

Airflow with CeleryExecutor (scheduler, DAG processor, API server, two Celery workers: see
`cluster`), Postgres (127.0.0.1:5432) as its metadata DB and as the ledger, Redis (127.0.0.1:6379)
as the broker, the state in S3 (a local moto server), the archive in S3 too, and the local Hyperline
emulator. It syncs a few days of a sample archive, prints where the UI is and which worker ran each
task, and stops everything it started (after Enter with `--keep`).

Needs Postgres and Redis running locally (the test suite's prerequisites).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from hyperline_devtools.cluster import POSTGRES, REPO, CeleryCluster
from hyperline_devtools.emulator import Emulator
from hyperline_devtools.sample_archive import generate_archive

PIPELINE = "celery_demo"
DAG_ID = f"segment_to_hyperline__{PIPELINE}"
API_KEY = "test_demo_key"
DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(4)]
AWS_CONN_ID = "demo_s3"


def upload_archive(s3: Any, bucket: str, root: Path, prefix: str = "logs") -> None:
    """Put a sample archive (generate_archive's folder) in a bucket under `prefix`."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "sample-manifest.json":
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(root).as_posix()}", Body=path.read_bytes())


def pipelines_config(*, bucket: str, source_id: str, aws_conn_id: str, ledger_conn_id: str, hyperline_conn_id: str,
                     pipeline: str, tuning: dict[str, Any]) -> dict:
    """A config of one pipeline reading s3://<bucket>/logs, with its state in s3://<bucket>/hyperline-sync."""
    return {
        "state": {"dir": f"s3://{bucket}/hyperline-sync", "conn_id": aws_conn_id, "ledger_conn_id": ledger_conn_id},
        "pipelines": [{
            "name": pipeline,
            "source": {"kind": "s3_archive", "url": f"s3://{bucket}/logs", "source_id": source_id,
                       "aws_conn_id": aws_conn_id},
            "hyperline_conn_id": hyperline_conn_id,
            "schedule": None,
            "tuning": tuning,
        }],
    }


def where_it_ran(cluster: CeleryCluster, dag_id: str, run_id: str) -> str:
    """A table: each task attempt of the run and the worker that ran it."""
    lines = [f"{'task':<12} {'map':>4} {'try':>4} {'state':<10} worker"]
    for task_id, map_index, try_number, state, celery_id in cluster.attempts(dag_id, run_id):
        lines.append(f"{task_id:<12} {map_index:>4} {try_number:>4} {state or '':<10} "
                     f"{cluster.worker_of(celery_id) or '?'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep everything running until Enter is pressed")
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: a line per request otherwise
    root = REPO / ".demo-distributed"
    shutil.rmtree(root, ignore_errors=True)
    manifest = generate_archive(root / "archive", "demoSrc01", DAYS, 2000, seed=7, objects_per_day=2)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="demo",
                      aws_secret_access_key="demo")
    bucket = "hyperline-demo"
    s3.create_bucket(Bucket=bucket)
    upload_archive(s3, bucket, manifest.root)
    ledger_db = f"hyperline_demo_ledger_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{ledger_db}"'))
    config = root / "pipelines.yaml"
    config.write_text(yaml.safe_dump(pipelines_config(
        bucket=bucket, source_id=manifest.source_id, aws_conn_id=AWS_CONN_ID, ledger_conn_id="demo_ledger",
        hyperline_conn_id="demo_hyperline", pipeline=PIPELINE, tuning={"retries": 1, "batch_size": 500})))
    ledger_url = sa.engine.make_url(POSTGRES).set(database=ledger_db)
    try:
        with Emulator(api_key=API_KEY) as emulator:
            env = {
                "HYPERLINE_SYNC_CONFIG": str(config),
                f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps({
                    "conn_type": "aws", "login": "demo", "password": "demo",
                    "extra": {"endpoint_url": endpoint, "region_name": "us-east-1",
                              "config_kwargs": {"s3": {"addressing_style": "path"}}}}),
                "AIRFLOW_CONN_DEMO_LEDGER": json.dumps({
                    "conn_type": "postgres", "host": ledger_url.host, "port": ledger_url.port,
                    "login": ledger_url.username, "schema": ledger_db}),
                "AIRFLOW_CONN_DEMO_HYPERLINE": json.dumps(
                    {"conn_type": "hyperline", "host": emulator.url, "password": API_KEY}),
            }
            cluster = CeleryCluster(root / "airflow", env, workers=2)
            try:
                print("starting Airflow (CeleryExecutor: scheduler, DAG processor, API server, 2 workers)...")
                cluster.start()
                print(f"Airflow UI: {cluster.ui_url} (every user is admin); logs in {cluster.home}")
                cluster.wait(lambda: cluster.query("SELECT 1 FROM dag WHERE dag_id = :d", d=DAG_ID), "the DAG")
                cluster.airflow("dags", "unpause", DAG_ID)
                conf = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}
                run_id = cluster.trigger(DAG_ID, conf)
                print(f"triggered {DAG_ID} {run_id} over {conf['start']} .. {conf['end']} (end exclusive)")
                state = cluster.wait(lambda: cluster.run_state(DAG_ID, run_id), "the run to end", 900)
                print(f"\nrun {run_id}: {state}\n\nwhat ran where:\n{where_it_ran(cluster, DAG_ID, run_id)}")
                print(f"\nHyperline emulator: {len(emulator.events)} events held, {emulator.requests} requests; "
                      f"state in s3://{bucket}/hyperline-sync (moto at {endpoint})")
                if args.keep:
                    input(f"\nAirflow UI: {cluster.ui_url} — press Enter to stop everything ")
            finally:
                cluster.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{ledger_db}" WITH (FORCE)'))
        admin.dispose()
        moto.stop()
        print("stopped everything the demo started")


if __name__ == "__main__":
    main()
