"""Benchmark of days side by side: one 12-day DagRun under a real scheduler, with 1 and then 2 slots.

    .venv/bin/python bench/bench_scheduler.py [--lines-per-day 10000] [--days 12]

The deployment is the multi-worker one of the distributed test (`hyperline_devtools.cluster`: scheduler,
DAG processor, API server, two Celery workers of concurrency 1, Postgres metadata DB, Redis broker;
needs Postgres on 127.0.0.1:5432 and Redis on 127.0.0.1:6379). Two pipelines over the same generated
archive (`slots1`, `slots2`: each its own ledger rows and dedup ids, so each run syncs everything), no
schedule (manual runs only), `tuning.processes: 1` when the config has that key (each sync task syncs
in its own process, so the figure measures days side by side, not a pool inside a task). The `hyperline`
pool, which caps the mapped `sync` tasks, is set to 1 slot for the first run and 2 for the second; each
run is triggered with `start`/`end` over the 12 days and timed by its DagRun's start and end dates in the
metadata DB. The Hyperline emulator runs in its own process (`--no-store`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from typing import Any

from _common import DATA, Meter, archive_days, archive_for, connection_env, write_config
from bench_pipeline import Emulator

from hyperline_devtools.cluster import CeleryCluster
from hyperline_sync.config.models import DAG_ID_PREFIX

HOME = DATA / "scheduler"
SLOTS = (1, 2)
RUN_SECONDS = 1800  # the longest a run may take before the benchmark gives up


def pipeline_name(slots: int) -> str:
    return f"slots{slots}"


def run_days(cluster: CeleryCluster, emulator: Emulator, slots: int, days: list[dt.date]) -> dict[str, Any]:
    """One DagRun of `slots`' pipeline over `days` with the pool at `slots`; its times from the metadata DB."""
    dag_id = DAG_ID_PREFIX + pipeline_name(slots)
    cluster.airflow("pools", "set", "hyperline", str(slots), "Concurrent senders to Hyperline")
    cluster.airflow("dags", "unpause", dag_id)
    meter = Meter(extra=[emulator.ps])
    end = days[-1] + dt.timedelta(days=1)  # end is exclusive
    run_id = cluster.trigger(dag_id, {"start": days[0].isoformat(), "end": end.isoformat()})
    state = cluster.wait(lambda: cluster.run_state(dag_id, run_id), f"the {slots}-slot run to end", RUN_SECONDS)
    meter.stop()
    if state != "success":
        raise RuntimeError(f"the {slots}-slot run ended {state}: {cluster.attempts(dag_id, run_id)}")
    where = "dag_id = :dag AND run_id = :run"
    (started, ended), = cluster.query(f"SELECT start_date, end_date FROM dag_run WHERE {where}", dag=dag_id, run=run_id)
    syncs = cluster.query(f"SELECT start_date, end_date FROM task_instance WHERE {where} AND task_id = 'sync'",
                          dag=dag_id, run=run_id)
    reschedules = cluster.query("SELECT count(*) FROM task_reschedule r JOIN task_instance t ON r.ti_id = t.id "
                                f"WHERE t.{where.replace(' AND ', ' AND t.')}", dag=dag_id, run=run_id)[0][0]
    return {
        "slots": slots,
        "seconds": (ended - started).total_seconds(),  # the scheduler's own times of the run
        "observed_seconds": meter.seconds,  # from the trigger until this benchmark saw the run end
        "sync_tasks": len(syncs),
        "sync_task_seconds": sum((end - start).total_seconds() for start, end in syncs if start and end),
        "reschedules": reschedules,
        "load_before": meter.load_before,
        "load_after": meter.load_after,
        "others_cores": meter.others_cores,
    }


def run_scheduler(lines_per_day: int, days: int = 12) -> list[dict[str, Any]]:
    """The 1-slot then the 2-slot run, on one deployment started (and stopped) here."""
    span = archive_days(days)
    archive = archive_for(lines_per_day * days, days)
    shutil.rmtree(HOME, ignore_errors=True)
    config = write_config(HOME / "pipelines.yaml", archive, HOME / "state", [pipeline_name(s) for s in SLOTS],
                          tuning={"processes": 1, "retries": 0}, extra={"schedule": None})
    emulator = Emulator()
    try:
        env = {"HYPERLINE_SYNC_CONFIG": str(config), **connection_env(emulator.url)}
        cluster = CeleryCluster(HOME / "airflow", env, workers=max(SLOTS), redis_db=8)
        try:
            cluster.start()
            for slots in SLOTS:
                dag_id = DAG_ID_PREFIX + pipeline_name(slots)
                cluster.wait(lambda d=dag_id: cluster.query("SELECT 1 FROM dag WHERE dag_id = :d", d=d),
                             "the DAGs to be parsed")
            results = [run_days(cluster, emulator, slots, span) for slots in SLOTS]
        finally:
            cluster.stop()
    finally:
        emulator.close()
    for result in results:
        result.update(days=days, lines=lines_per_day * days)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines-per-day", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=12)
    args = parser.parse_args()
    results = run_scheduler(args.lines_per_day, args.days)
    for r in results:
        print(f"{r['slots']} slot(s): {r['seconds']:6.1f}s ({r['days']} days, {r['lines']:,} lines; "
              f"{r['sync_tasks']} sync tasks, {r['sync_task_seconds']:.1f}s in them, {r['reschedules']} reschedules) "
              f"load1 {r['load_before']:.2f}->{r['load_after']:.2f} others {r['others_cores']:.2f} cores")
    one, two = results
    print(f"2 slots vs 1: x{one['seconds'] / two['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
