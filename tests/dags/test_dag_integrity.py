"""DAG integrity: every configured pipeline parses into a DAG with the expected shape."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from tests.conftest import REPO

DAG_FILE = REPO / "dags" / "segment_to_hyperline.py"


@pytest.fixture
def two_pipelines(tmp_path, monkeypatch):
    config = {
        "state": {"dir": str(tmp_path / "state")},
        "pipelines": [
            {"name": name, "source": {"kind": "s3_archive", "url": f"file://{tmp_path}", "source_id": "src1"},
             "tuning": {"pool": "hyperline", "retries": 2}}
            for name in ("acme", "globex")
        ],
    }
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(path))


def load_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FILE))


def test_one_dag_per_pipeline_with_retries_pool_and_tags(two_pipelines):
    bag = load_bag()
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {f"segment_to_hyperline__{name}{kind}" for name in ("acme", "globex")
                                for kind in ("", "__daily", "__reconcile")}
    dag = bag.get_dag("segment_to_hyperline__acme")
    assert {"segment", "hyperline"} <= set(dag.tags)
    assert dag.max_active_runs == 1
    assert set(dag.task_dict) == {"plan", "sync", "publish", "summarize"}
    sync = dag.task_dict["sync"]
    assert sync.pool == "hyperline"
    assert sync.retries == 2
    assert dag.task_dict["summarize"].trigger_rule == "all_done"
    assert dag.task_dict["publish"].trigger_rule == "all_done"
    assert set(dag.params) == {"start", "end", "partitions", "dry_run", "resend", "replay_dead_letters",
                               "replay_reason"}
    assert all(dag.params.get_param(name).description for name in dag.params)


def test_hourly_schedule_has_a_real_data_interval(two_pipelines):
    # Airflow 3's plain cron schedule gives zero-length intervals; this timetable gives one hour.
    from airflow.sdk import CronDataIntervalTimetable

    dag = load_bag().get_dag("segment_to_hyperline__acme")
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "0 * * * *"
    assert dag.start_date == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_a_bad_pipeline_is_no_import_error_but_a_dag_naming_the_key(tmp_path, monkeypatch):
    # An import error would remove every pipeline's DAG (see test_dag_config_errors.py).
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"pipelines": [{"name": "x", "source": {"kind": "s3_archive", "url": "ftp://x",
                                                                              "source_id": "s"}}]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(path))
    bag = load_bag()
    assert bag.import_errors == {}
    assert set(bag.get_dag("segment_to_hyperline__x").task_dict) == {"config_error"}
    assert "pipelines[0].source.url" in bag.get_dag("segment_to_hyperline__x").doc_md


def test_without_a_config_no_dag_is_defined_and_one_line_says_why(monkeypatch, caplog):
    monkeypatch.delenv("HYPERLINE_SYNC_CONFIG", raising=False)
    bag = load_bag()
    assert bag.import_errors == {}
    assert bag.dag_ids == []
    assert "HYPERLINE_SYNC_CONFIG is not set: no Segment -> Hyperline DAG is defined" in caplog.text


def test_a_null_schedule_means_manual_runs_only(tmp_path, monkeypatch):
    path = tmp_path / "manual.yaml"
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path)}, "pipelines": [
        {"name": "manual", "schedule": None,
         "source": {"kind": "s3_archive", "url": f"file://{tmp_path}", "source_id": "s"}}]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(path))
    dag = load_bag().get_dag("segment_to_hyperline__manual")
    assert not dag.timetable.can_be_scheduled
