"""Running the sync DAG for real (dag.test) and reading what a run left behind.

Shared by the DAG end-to-end tests and the fault suite, so every test finds reports the same way
the product writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from hyperline_devtools.emulator import Emulator
from hyperline_sync.config.models import DAG_ID_PREFIX
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import Ledger
from hyperline_sync.state.report import run_dir
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


def use_pipeline(pipeline: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make `pipeline` (a config entry) the only one, read at run time through HYPERLINE_SYNC_CONFIG,
    with its state under tmp_path; returns the state dir. Called again, it replaces the entry."""
    state_dir = tmp_path / "state"
    config_path = tmp_path / "pipelines.yaml"
    config_path.write_text(yaml.safe_dump({"state": {"dir": str(state_dir)}, "pipelines": [pipeline]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(config_path))
    return state_dir


@contextmanager
def pipeline_with_emulator(
    pipeline: dict[str, Any], api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Emulator]]:
    """`use_pipeline`, with the pipeline's Hyperline connection pointed at a fresh emulator; yields
    (state dir, emulator)."""
    state_dir = use_pipeline(pipeline, tmp_path, monkeypatch)
    with Emulator(api_key=api_key) as emulator:
        connection = {"conn_type": "hyperline", "host": emulator.url, "password": api_key}
        monkeypatch.setenv(f"AIRFLOW_CONN_{pipeline['hyperline_conn_id'].upper()}", json.dumps(connection))
        yield state_dir, emulator


@dataclass
class DagHarness:
    """One pipeline's DAG under test: its runs, their reports, its ledger and its dead letters."""

    pipeline: str
    emulator: Emulator
    state_dir: Path

    def run(self, conf: dict | None = None, **kwargs: Any):
        return run_dag(DAG_ID_PREFIX + self.pipeline, conf, **kwargs)

    def report(self, dag_run) -> dict:
        return read_report(self.state_dir / "reports", self.pipeline, dag_run.run_id)

    def ledger(self) -> Ledger:
        return Ledger.sqlite(self.state_dir / "ledger.db")

    def dead_letters(self) -> list[dict]:
        return all_dead_letters(self.state_dir / "reports")
