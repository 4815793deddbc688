"""Parsing the DAG file stays light: the scheduler's DAG processor parses it over and over, and every
task process parses it again before its task runs, so what it imports at parse time is paid by every
task. The pipeline (pandas, pyarrow, the sources, the provider's hook) is imported by the task bodies
that sync, never at parse; the `plan` task's body does not import it either.

Each check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

DAG_FILE = REPO / "dags" / "segment_to_hyperline.py"
# What only syncing needs: none of it may be loaded by a parse or by the plan task's module.
HEAVY = ("pandas", "pyarrow", "numpy", "boto3", "hyperline_sync.pipeline.sync", "hyperline_sync.pipeline.transform",
         "hyperline_sync.sources.base", "hyperline_sync.orchestration.tasks", "hyperline_provider.hooks.hyperline")

PROBE = """
import json, sys
{body}
print(json.dumps({{"loaded": sorted(m for m in {heavy!r} if m in sys.modules), **result}}))
"""


@pytest.fixture
def config_env(tmp_path) -> dict[str, str]:
    """Two pipelines, one with the corrections approval tasks (which are wired at parse time)."""
    source = {"kind": "s3_archive", "url": f"file://{tmp_path}", "source_id": "src1"}
    config = {
        "state": {"dir": str(tmp_path / "state")},
        "pipelines": [{"name": "acme", "source": source},
                      {"name": "globex", "source": dict(source), "corrections": "retract"}],
    }
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(config))
    return {**os.environ, "HYPERLINE_SYNC_CONFIG": str(path),
            "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO / "plugins"), str(REPO)])}


def probe(env: dict[str, str], body: str) -> dict:
    script = PROBE.format(body=body, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_parsing_the_dag_file_imports_no_pipeline(config_env):
    result = probe(config_env, f"""
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAG_FILE)!r})
result = {{"dags": sorted(bag.dag_ids), "errors": {{k: str(v) for k, v in bag.import_errors.items()}}}}
""")
    assert result["errors"] == {}
    assert len(result["dags"]) == 6  # the parse did build every DAG
    assert result["loaded"] == []


def test_the_plan_task_body_imports_no_pipeline(config_env):
    result = probe(config_env, "from hyperline_sync.orchestration import planning\nresult = {}")
    assert result["loaded"] == []


def test_the_sync_task_body_does_import_the_pipeline(config_env):
    # The same check on the module the `sync` task imports: it loads what the two checks above forbid.
    result = probe(config_env, "from hyperline_sync.orchestration import tasks\nresult = {}")
    assert {"pandas", "pyarrow", "hyperline_sync.pipeline.sync", "hyperline_sync.orchestration.tasks"} <= set(
        result["loaded"])
