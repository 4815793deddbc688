"""Running the sync DAG for real (dag.test) and reading what a run left behind.

Shared by the DAG end-to-end tests and the fault suite, so every test finds reports the same way
the product writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from hyperline_devtools.emulator import Emulator
from hyperline_sync.config.models import DAG_ID_PREFIX
from hyperline_sync.state import store
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import Ledger
from hyperline_sync.state.report import run_dir
from hyperline_sync.state.store import Location
from tests.conftest import REPO

DAG_FILE = REPO / "dags" / "segment_to_hyperline.py"


def run_dag(dag_id: str, conf: dict | None = None, **kwargs: Any):
    """One real DagRun (plan -> mapped sync -> summarize); returns it whatever its state."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id).test(run_conf=conf, **kwargs)


def read_report(output_dir: Location, pipeline: str, run_id: str) -> dict:
    data = store.read_bytes(run_dir(output_dir, pipeline, run_id) / "report.json")
    assert data is not None, f"no report for {run_id}"
    return orjson.loads(data)


def all_dead_letters(output_dir: Location) -> list[dict]:
    """Every dead-letter row under an output folder (local or in object storage)."""
    names = [e.name for e in store.list_files(output_dir, recursive=True)
             if e.name.endswith(".jsonl.gz") and e.name.split("/")[-3:-2] == ["dead_letters"]]
    return [row for name in names for row in read_dead_letters(output_dir / name)]


def use_pipeline(pipeline: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 state: dict[str, Any] | None = None) -> Path:
    """Make `pipeline` (a config entry) the only one, read at run time through HYPERLINE_SYNC_CONFIG,
    with its state under tmp_path (or as `state` says); returns the local state dir. Called again,
    it replaces the entry."""
    state_dir = tmp_path / "state"
    config_path = tmp_path / "pipelines.yaml"
    config_path.write_text(yaml.safe_dump({"state": state or {"dir": str(state_dir)}, "pipelines": [pipeline]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(config_path))
    return state_dir


@contextmanager
def pipeline_with_emulator(
    pipeline: dict[str, Any], api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    state: dict[str, Any] | None = None,
) -> Iterator[tuple[Path, Emulator]]:
    """`use_pipeline`, with the pipeline's Hyperline connection pointed at a fresh emulator; yields
    (state dir, emulator)."""
    state_dir = use_pipeline(pipeline, tmp_path, monkeypatch, state)
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
    # keyword-only, so that subclasses may add fields without defaults
    output_dir: Location | None = field(default=None, kw_only=True)  # when not state_dir / "reports"
    ledger_url: str | None = field(default=None, kw_only=True)  # when the ledger is in Postgres

    @property
    def outputs(self) -> Location:
        return self.output_dir if self.output_dir is not None else self.state_dir / "reports"

    def run(self, conf: dict | None = None, **kwargs: Any):
        return run_dag(DAG_ID_PREFIX + self.pipeline, conf, **kwargs)

    def report(self, dag_run) -> dict:
        return read_report(self.outputs, self.pipeline, dag_run.run_id)

    def ledger(self) -> Ledger:
        return Ledger(self.ledger_url) if self.ledger_url else Ledger.sqlite(self.state_dir / "ledger.db")

    def dead_letters(self) -> list[dict]:
        return all_dead_letters(self.outputs)

    def read_output(self, where: str) -> bytes:
        """A file a run names in its report (a path, or a URL below the output location)."""
        base = str(self.outputs) + "/"
        data = store.read_bytes(self.outputs / where[len(base):] if where.startswith(base) else Path(where))
        assert data is not None, where
        return data
