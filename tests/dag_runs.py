"""Running the sync DAG for real (dag.test) and reading what a run left behind.

Shared by the DAG end-to-end tests and the fault suite, so every test finds reports the same way
the product writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from hyperline_sync.deadletter import read_dead_letters
from hyperline_sync.report import run_dir
from tests.conftest import REPO

DAG_FILE = REPO / "dags" / "segment_to_hyperline.py"


def run_dag(dag_id: str, conf: dict | None = None, **kwargs: Any):
    """One real DagRun (plan -> mapped sync -> summarize); returns it whatever its state."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id).test(run_conf=conf, **kwargs)


def read_report(output_dir: Path, pipeline: str, run_id: str) -> dict:
    path = run_dir(output_dir, pipeline, run_id) / "report.json"
    assert path.exists(), f"no report for {run_id}"
    return orjson.loads(path.read_bytes())


def all_dead_letters(output_dir: Path) -> list[dict]:
    return [row for p in sorted(output_dir.rglob("dead_letters/*/*.jsonl.gz")) for row in read_dead_letters(p)]
