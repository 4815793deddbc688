"""Notifications: the config section, the callbacks built from it, and the deadline callback.
The notifier classes are defined here (the providers' are not installed) and named by import path."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from airflow.sdk.bases.notifier import BaseNotifier

from hyperline_devtools.demo import ui_help
from hyperline_sync.config import ConfigError, parse_config
from hyperline_sync.orchestration.notify import dag_callbacks, deadline_alert, deadline_missed

HERE = "tests.hyperline_sync.orchestration.test_notify"
SOURCE = {"kind": "s3_archive", "url": "file:///data", "source_id": "s1"}


class BrokenNotifier(BaseNotifier):
    def notify(self, context) -> None:
        raise TimeoutError("smtp timed out")


def pipeline(tmp_path, **extra):
    config = {"state": {"dir": str(tmp_path)}, "pipelines": [{"name": "acme", "source": SOURCE, **extra}]}
    return parse_config(config).pipelines[0]


def test_notifications_default_to_none_and_refuse_a_bad_class_path(tmp_path):
    plain = pipeline(tmp_path)
    assert dag_callbacks(plain) == {} and deadline_alert(plain) is None
    with pytest.raises(ConfigError, match=r"notifications\.on_failure\[0\]\.class: must match"):
        pipeline(tmp_path, notifications={"on_failure": [{"class": "not a path"}]})
    with pytest.raises(ConfigError, match="kwarg"):
        pipeline(tmp_path, notifications={"on_failure": [{"class": "a.B", "kwarg": {}}]})


def test_a_failing_notifier_is_logged_and_the_others_still_run(tmp_path, caplog):
    out = tmp_path / "out.jsonl"
    p = pipeline(tmp_path, notifications={"on_failure": [
        {"class": f"{HERE}.BrokenNotifier"}, {"class": f"{HERE}.Missing"}, {"class": "no_such_module.Notifier"},
        {"class": "tests.notifiers.FileNotifier", "kwargs": {"path": str(out), "message": "run {{ run_id }} failed"}}]})
    callbacks = dag_callbacks(p)
    assert set(callbacks) == {"on_failure_callback"}
    with caplog.at_level(logging.ERROR):
        callbacks["on_failure_callback"]({"run_id": "r1", "reason": "task_failure"})
    assert json.loads(out.read_text()) == {"message": "run r1 failed", "state": "None", "reason": "task_failure"}
    assert "BrokenNotifier failed: TimeoutError: smtp timed out" in caplog.text
    assert "Missing failed: AttributeError" in caplog.text
    assert "no_such_module.Notifier failed: ModuleNotFoundError" in caplog.text


def test_deadline_missed_calls_the_deadline_notifiers_of_the_config_as_it_is_now(tmp_path, monkeypatch):
    out = tmp_path / "deadline.jsonl"
    notifier = {"class": "tests.notifiers.FileNotifier", "kwargs": {"path": str(out), "message": "late"}}
    config = tmp_path / "pipelines.yaml"
    config.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path)}, "pipelines": [
        {"name": "acme", "source": SOURCE, "tuning": {"deadline_minutes": 45},
         "notifications": {"on_failure": [notifier]}}]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(config))
    deadline_missed("acme", context={})
    assert json.loads(out.read_text()) == {"message": "late", "state": "None",
                                           "reason": "pipeline acme: run not done within 45 minutes of being queued"}
    # on_deadline, when given, replaces on_failure for deadlines (an empty list: nobody)
    config.write_text(config.read_text().replace("on_failure:", "on_deadline: []\n      on_failure:"))
    deadline_missed("acme", context={})
    assert len(out.read_text().splitlines()) == 1


def test_the_demo_instructions_use_the_ports_given():
    env = {"AIRFLOW_HOME": "/h", "AIRFLOW__CORE__DAGS_FOLDER": "/d", "AIRFLOW__CORE__PLUGINS_FOLDER": "/p",
           "HYPERLINE_SYNC_HOME": "/s", "HYPERLINE_SYNC_CONFIG": "/c.yaml"}
    text = ui_help(env, ui_port=8181, emulator_port=8092)
    assert "make emulator PORT=8092" in text and "http://127.0.0.1:8092" in text
    assert "AIRFLOW__API__PORT=8181" in text and "http://localhost:8181/execution/" in text
    assert "8080" not in text and "8090" not in text
