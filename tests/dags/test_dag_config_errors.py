"""A broken pipeline in the config does not take the others' DAGs down: it gets a DAG that fails at once."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO

DAG_FILE = REPO / "dags" / "segment_to_hyperline.py"


def pipeline(name: str, **keys: object) -> dict:
    return {"name": name, "source": {"kind": "s3_archive", "url": "file:///data", "source_id": "src1"}, **keys}


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    def write(document: dict | str) -> str:
        path = tmp_path / "pipelines.yaml"
        path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
        monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(path))
        return str(path)

    return write


def load_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FILE))


def test_a_broken_pipeline_keeps_the_others_and_gets_a_failing_dag(config_file, tmp_path, capsys, caplog):
    state = {"dir": str(tmp_path / "state")}
    config_file("state: " + yaml.safe_dump(state, default_flow_style=True) + "pipelines:\n"
                + yaml.safe_dump([pipeline("good"), pipeline("other")])
                + "- {name: broken, source: {kind: s3_archive, url: 'file:///data', source_id: src1},"
                  " start_date: 2026-13-01}\n")
    bag = load_bag()

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {f"segment_to_hyperline__{n}" for n in ("good", "other", "broken")} | {
        f"segment_to_hyperline__{n}__{kind}" for n in ("good", "other") for kind in ("reconcile", "daily")
    }  # a broken pipeline has only its failing DAG
    assert set(bag.get_dag("segment_to_hyperline__good").task_dict) == {"plan", "sync", "publish", "summarize"}
    broken = bag.get_dag("segment_to_hyperline__broken")
    assert set(broken.task_dict) == {"config_error"}
    assert "pipelines[2].start_date: must be a date YYYY-MM-DD, got '2026-13-01'" in broken.doc_md
    # Airflow's structlog writes to standard output, or to the logging handlers once a test set them up
    logged = capsys.readouterr().out + caplog.text
    assert "pipeline broken is not scheduled, its config is invalid: pipelines[2].start_date" in logged


def test_the_failing_dag_run_fails_naming_the_key(config_file, capsys):
    path = config_file({"pipelines": [pipeline("good"), pipeline("broken", tuning={"batch_size": 0})]})
    dag = load_bag().get_dag("segment_to_hyperline__broken")

    run = dag.test()

    assert run.state == "failed"
    (ti,) = run.get_task_instances()
    assert (ti.task_id, ti.state) == ("config_error", "failed")
    assert ti.try_number == 1  # fails at once: no retry can fix a config file
    logged = capsys.readouterr().out
    assert f"invalid config of pipeline broken: pipelines[1].tuning.batch_size: must be >= 1, got 0 (in {path})" \
        in logged


def test_a_shared_section_error_fails_every_pipeline_dag(config_file):
    config_file({"state": {"dirr": "/x"}, "pipelines": [pipeline("a"), pipeline("b")]})
    bag = load_bag()

    assert bag.import_errors == {}
    for name in ("a", "b"):
        dag = bag.get_dag(f"segment_to_hyperline__{name}")
        assert set(dag.task_dict) == {"config_error"}
        assert "state.dirr: unknown key; did you mean 'dir'?" in dag.doc_md


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pipelines: [unclosed\n", "invalid YAML"),
        ("state: {}\n", "pipelines: is required"),
        ("pipelines: []\n", "pipelines: must be a non-empty list"),
    ],
)
def test_a_file_that_cannot_be_read_is_an_import_error_naming_it(config_file, text, expected):
    path = config_file(text)
    bag = load_bag()

    assert bag.dag_ids == []
    (error,) = bag.import_errors.values()
    assert expected in error
    assert path in error
