"""`make demo`: the whole product on one machine, with nothing but this repository.

Generates a realistic Segment archive (nasty cases included) under `.demo/archive`, starts the local
Hyperline emulator, runs the `segment_to_hyperline__demo` DAG over it as a real Airflow DagRun
(`airflow dags test`), prints the run report and what reached the emulator, stops what it started,
and says how to open the Airflow UI to look at the mapped partitions and start a backfill.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from hyperline_devtools.emulator import Emulator
from hyperline_devtools.sample_archive import generate_archive

REPO = Path(__file__).resolve().parents[2]
SOURCE_ID = "demoSrc01"
DEMO_KEY = "test_demo_key"
PIPELINE = "demo"
DEMO_CONFIG = Path(__file__).resolve().parent / "demo_pipelines.yaml"


def demo_env(home: Path, emulator_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "HYPERLINE_SYNC_HOME": str(home),
        "AIRFLOW_CONN_HYPERLINE_DEFAULT": json.dumps(
            {"conn_type": "hyperline", "host": emulator_url, "password": DEMO_KEY}
        ),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    })
    env["HYPERLINE_SYNC_CONFIG"] = str(DEMO_CONFIG)
    return env


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["airflow", *args], env=env, check=False, capture_output=True, text=True)


def latest_report(home: Path) -> dict:
    reports = sorted((home / "airflow" / "hyperline_sync" / "reports" / PIPELINE / "runs").glob("*/report.json"),
                     key=lambda p: p.stat().st_mtime)
    if not reports:
        raise SystemExit("the DAG run left no report; see the output above")
    return orjson.loads(reports[-1].read_bytes()) | {"path": str(reports[-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".demo")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--events-per-day", type=int, default=10_000)
    parser.add_argument("--ui-port", type=int, default=8080, help="port of the Airflow UI in the closing instructions")
    parser.add_argument("--emulator-port", type=int, default=8090,
                        help="port of the `make emulator` the closing instructions start")
    args = parser.parse_args(argv)

    home: Path = args.home
    shutil.rmtree(home, ignore_errors=True)
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=args.days - i) for i in range(args.days)]
    manifest = generate_archive(home / "archive", SOURCE_ID, days, args.events_per_day, seed=7, nasty=True)
    print(f"1/4 sample Segment archive: {home / 'archive'} ({len(days)} days, {manifest.lines_total} lines)")

    with Emulator(api_key=DEMO_KEY) as emulator:
        env = demo_env(home, emulator.url)
        print(f"2/4 Hyperline emulator on {emulator.url}")
        for step in (["db", "migrate"], ["pools", "set", "hyperline", "2", "Concurrent senders to Hyperline"]):
            done = airflow(env, *step)
            if done.returncode:
                print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
                raise SystemExit(f"`airflow {' '.join(step)}` failed")
        conf = {"start": days[0].isoformat(), "end": (days[-1] + dt.timedelta(days=1)).isoformat()}
        print(f"3/4 airflow dags test segment_to_hyperline__{PIPELINE} with {conf} ...")
        run = airflow(env, "dags", "test", f"segment_to_hyperline__{PIPELINE}", "-c", json.dumps(conf))
        (home / "dag_run.log").write_text(run.stdout + run.stderr)
        stored, max_posts = len(emulator.events), max(emulator.post_counts.values(), default=0)

    report = latest_report(home)
    print(f"4/4 run {report['run_id']}: {report['status']} (full log: {home / 'dag_run.log'})\n")
    print(render(report))
    print(f"\nreport:       {report['path']}")
    print(f"dead letters: {report['path'].rsplit('/runs/', 1)[0]}/dead_letters/")
    print(f"Hyperline emulator stored {stored} events; the most any record.id was posted: {max_posts}")
    print(ui_help(env, args.ui_port, args.emulator_port))
    return 0 if run.returncode == 0 and report["status"] == "success" else 1


def render(report: dict) -> str:
    from hyperline_sync.state.report import PartitionOutcome, render_table

    return render_table(PartitionOutcome.from_json(p) for p in report["partitions"])


def ui_help(env: dict[str, str], ui_port: int = 8080, emulator_port: int = 8090) -> str:
    """How to open the demo's data in the Airflow UI on `ui_port`, with an emulator on `emulator_port`.
    The execution API URL follows the UI's port: tasks reach the API server there."""
    home = env["AIRFLOW_HOME"]
    return f"""
To look at it in the Airflow UI (mapped partitions, logs, trigger a backfill with start/end):
  export AIRFLOW_HOME={home} AIRFLOW__CORE__DAGS_FOLDER={env['AIRFLOW__CORE__DAGS_FOLDER']} \\
         AIRFLOW__CORE__PLUGINS_FOLDER={env['AIRFLOW__CORE__PLUGINS_FOLDER']} AIRFLOW__CORE__LOAD_EXAMPLES=False \\
         HYPERLINE_SYNC_HOME={env['HYPERLINE_SYNC_HOME']} HYPERLINE_SYNC_CONFIG={env['HYPERLINE_SYNC_CONFIG']} \\
         PATH={REPO / '.venv' / 'bin'}:$PATH
  make emulator PORT={emulator_port} &   # the demo's emulator stopped with the demo; point the connection at a new one:
  export AIRFLOW_CONN_HYPERLINE_DEFAULT='{{"conn_type":"hyperline","host":"http://127.0.0.1:{emulator_port}","password":"test_local"}}'
  export AIRFLOW__API__PORT={ui_port} AIRFLOW__API__BASE_URL=http://localhost:{ui_port} \\
         AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:{ui_port}/execution/
  airflow standalone   # then open http://localhost:{ui_port} ; user admin, password in
                       # {home}/simple_auth_manager_passwords.json.generated
The DAGs start paused: trigger segment_to_hyperline__{PIPELINE} with start/end (end exclusive), or
backfill segment_to_hyperline__{PIPELINE}__daily (one run per day, to_date inclusive). Unpausing a DAG
starts its schedule. Runbook: docs/operations.md."""


if __name__ == "__main__":
    raise SystemExit(main())
