"""Benchmark of the sync DAG end to end through Airflow: `airflow dags test` over a generated archive.

    .venv/bin/python bench/bench_dagrun.py [--lines 1000000] [--days 3] [--reruns 1]

Runs `airflow dags test segment_to_hyperline__bench -c '{"start": .., "end": ..}'` in a subprocess with
its own AIRFLOW_HOME under bench/data/dagrun, HYPERLINE_SYNC_CONFIG pointing at a bench config with
a file:// archive, and AIRFLOW_CONN_HYPERLINE_DEFAULT pointing at the Hyperline emulator run in its own
process on 127.0.0.1 (`--no-store`). First over fresh state (every event is sent), then `--reruns`
times again over the same archive with nothing new (every object done: the run sends nothing, which
is Airflow's and the ledger's overhead alone). The RSS of the `airflow dags test` process and its
children is sampled every 0.2 s; the peak of their sum is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _common import DATA, REPO, Meter, TreeRss, admin, archive_days, archive_for, connection_env, write_config
from bench_pipeline import PIPELINE, Emulator

DAG_ID = f"segment_to_hyperline__{PIPELINE}"
HOME = DATA / "dagrun"


def airflow_env(url: str) -> dict[str, str]:
    venv_bin = Path(sys.executable).parent
    return {
        **os.environ,
        "AIRFLOW_HOME": str(HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "HYPERLINE_SYNC_CONFIG": str(HOME / "pipelines.yaml"),
        **connection_env(url),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def airflow(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(["airflow", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def prepare(archive: Path, url: str) -> dict[str, str]:
    """Fresh pipeline state over `archive`; Airflow's metadata DB migrated (kept between invocations)."""
    shutil.rmtree(HOME / "state", ignore_errors=True)
    write_config(HOME / "pipelines.yaml", archive, HOME / "state", PIPELINE)
    env = airflow_env(url)
    airflow(env, "db", "migrate")
    airflow(env, "pools", "set", "hyperline", "2", "Concurrent senders to Hyperline")
    return env


def dag_test(env: dict[str, str], emulator: Emulator, conf: dict[str, str], label: str) -> dict[str, Any]:
    """One `airflow dags test` DagRun; wall time, tree RSS, emulator counters, the run report's totals."""
    admin(emulator.url, "/_emulator/reset", {})
    cpu_before = emulator.cpu()
    log_path = HOME / f"{label}.log"
    reports = HOME / "state" / "reports" / PIPELINE / "runs"
    before = set(reports.glob("*/report.json"))
    with log_path.open("w") as log:
        meter = Meter(extra=[emulator.ps])
        proc = subprocess.Popen(["airflow", "dags", "test", DAG_ID, "-c", json.dumps(conf)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        rss = TreeRss(proc.pid)
        code = proc.wait()
        rss.stop()
        meter.stop()
    stats = admin(emulator.url, "/_emulator/stats")
    new = sorted(set(reports.glob("*/report.json")) - before)
    if code or len(new) != 1:
        raise RuntimeError(f"DagRun {label} failed (exit {code}, {len(new)} new reports): see {log_path}")
    report = json.loads(new[0].read_text())
    if report["status"] != "success":
        raise RuntimeError(f"DagRun {label} ended {report['status']}: see {new[0]}")
    return {
        "label": label,
        **report["totals"],
        **meter.as_dict(),
        "task_seconds": task_seconds(log_path),
        "reschedules": log_path.read_text(errors="replace").count("marking task as UP_FOR_RESCHEDULE"),
        "requests": stats["requests"],
        "emulator_events": stats["events_received"],
        "emulator_statuses": stats["statuses"],
        "emulator_cpu_seconds": emulator.cpu() - cpu_before,
        "peak_rss_mb": rss.peak_mb,
        "peak_single_rss_mb": rss.peak_single_mb,
        "max_processes": rss.max_processes,
        "log": str(log_path),
        "report": str(new[0]),
    }


_TASK_EVENT = re.compile(r"^(\S+Z) .*\[DAG TEST\] (starting|end task) task_id=(\w+) map_index=(-?\d+)")


def task_seconds(log_path: Path) -> dict[str, float]:
    """Seconds spent inside each task id, from dag.test's `[DAG TEST] starting/end task` log lines.

    A rescheduled try counts its own short run; the wait before the next try is outside every task.
    """
    spent: dict[str, float] = {}
    open_at: dict[tuple[str, str], datetime] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        match = _TASK_EVENT.match(line)
        if not match:
            continue
        stamp, what, task, index = match.groups()
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if what == "starting":
            open_at[(task, index)] = at
        elif (task, index) in open_at:
            spent[task] = spent.get(task, 0.0) + (at - open_at.pop((task, index))).total_seconds()
    return spent


def run_dagruns(emulator: Emulator, archive: Path, days: int, reruns: int,
                scheduled: bool = True) -> tuple[dict, list[dict]]:
    """The first DagRun over fresh state, then `reruns` runs with nothing new over the same range, then
    (with `scheduled`) one run without conf, which syncs its own data interval (today and yesterday
    with lookback_days 1: folders with no objects), as an hourly scheduled run would.
    """
    env = prepare(archive, emulator.url)
    span = archive_days(days)
    conf = {"start": span[0].isoformat(), "end": (span[-1] + timedelta(days=1)).isoformat()}  # end exclusive
    first = dag_test(env, emulator, conf, "first")
    again = [dag_test(env, emulator, conf, f"nothing-new-{i + 1}") for i in range(reruns)]
    if scheduled:
        again.append(dag_test(env, emulator, {}, "scheduled-interval"))
    return first, again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--reruns", type=int, default=1, help="runs with nothing new after the first")
    parser.add_argument("--no-scheduled", action="store_true", help="skip the run over its own data interval")
    args = parser.parse_args()
    archive = archive_for(args.lines, args.days)
    emulator = Emulator()
    try:
        first, again = run_dagruns(emulator, archive, args.days, args.reruns, not args.no_scheduled)
    finally:
        emulator.close()
    for label, run in [("first run", first), *((f"nothing new {i + 1}", r) for i, r in enumerate(again))]:
        in_tasks = run["task_seconds"]
        print(f"{label:>14}: {run['seconds']:6.1f}s (in sync tasks {in_tasks.get('sync', 0):.1f}s, other tasks "
              f"{sum(in_tasks.values()) - in_tasks.get('sync', 0):.1f}s, {run['reschedules']} reschedules)  "
              f"read {run['read']:>9,}  sent {run['sent']:>9,}  "
              f"{run['read'] / run['seconds']:>9,.0f} lines/s  requests {run['requests']:>5}  "
              f"peak RSS {run['peak_rss_mb']:5.0f} MB ({run['max_processes']} processes)  "
              f"load1 {run['load_before']:.2f}->{run['load_after']:.2f}  others {run['others_cores']:.2f} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
