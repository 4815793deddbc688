"""A pipeline's notifications wired to Airflow: DAG success/failure callbacks and a deadline alert.

The notifier classes (SmtpNotifier, SlackNotifier, any `BaseNotifier`) are named by import path in
the config (`config.notifications`) and imported when a notification is sent. Whatever goes wrong
there (no such class, bad kwargs, the mail server down) is logged with the pipeline and notifier, and
never fails a run or the scheduler's callback: the sync's state is what the ledger says, a lost mail
must not turn a good run red or hide a bad one.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from hyperline_sync.config import PipelineConfig, read_pipelines
from hyperline_sync.config.notifications import NotifierConfig

log = logging.getLogger(__name__)

DEADLINE_CALLBACK = "hyperline_sync.orchestration.notify.deadline_missed"


def load_class(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def send(notifier: NotifierConfig, context: Mapping[str, Any], pipeline: str, event: str) -> bool:
    """Build the notifier and call it with `context`; False (logged) if anything fails."""
    try:
        load_class(notifier.class_path)(**notifier.kwargs)(context)
    except Exception as exc:  # a notifier never fails the run, whatever it raises
        log.error("pipeline %s: %s notifier %s failed: %s: %s", pipeline, event, notifier.class_path,
                  type(exc).__name__, exc)
        return False
    log.info("pipeline %s: %s notification sent by %s", pipeline, event, notifier.class_path)
    return True


class Notify:
    """A DAG callback calling the pipeline's notifiers of one event, each on its own."""

    def __init__(self, pipeline: str, event: str, notifiers: tuple[NotifierConfig, ...]) -> None:
        self.pipeline, self.event, self.notifiers = pipeline, event, notifiers
        self.dag: Any = None  # the DAG it is a callback of, set once built

    def __call__(self, context: Mapping[str, Any]) -> None:
        if self.dag is not None and not hasattr(context.get("dag"), "get_template_env"):
            # dag.test() hands the serialized DAG, which notifiers cannot render their templates with
            context = {**context, "dag": self.dag}
        for notifier in self.notifiers:
            send(notifier, context, self.pipeline, self.event)


def dag_callbacks(pipeline: PipelineConfig) -> dict[str, Notify]:
    """`on_failure_callback` / `on_success_callback` arguments of the pipeline's DAGs (only those set)."""
    notifications = pipeline.notifications
    callbacks = {"on_failure_callback": Notify(pipeline.name, "failure", notifications.on_failure),
                 "on_success_callback": Notify(pipeline.name, "success", notifications.on_success)}
    return {name: callback for name, callback in callbacks.items() if callback.notifiers}


def deadline_alert(pipeline: PipelineConfig) -> Any:
    """A DeadlineAlert `tuning.deadline_minutes` after a run is queued, or None (no deadline)."""
    minutes = pipeline.tuning.deadline_minutes
    if minutes is None:
        return None
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(minutes=minutes),
                         callback=SyncCallback(DEADLINE_CALLBACK, kwargs={"pipeline": pipeline.name}),
                         name=f"{pipeline.name}: run not done within {minutes} minutes")


def deadline_missed(pipeline: str, context: Mapping[str, Any] | None = None, **_: Any) -> None:
    """Airflow's deadline callback (by import path): log and call the pipeline's on_deadline notifiers,
    read from the config as it is now."""
    context = dict(context or {})
    log.error("pipeline %s: a run missed its deadline (tuning.deadline_minutes); it is still not done", pipeline)
    try:
        _config, config = read_pipelines().pipeline(pipeline)
    except Exception as exc:
        log.error("pipeline %s: cannot read its notifications for the missed deadline: %s: %s", pipeline,
                  type(exc).__name__, exc)
        return
    context.setdefault("reason", f"pipeline {pipeline}: run not done within {config.tuning.deadline_minutes} "
                                 "minutes of being queued")
    Notify(pipeline, "deadline", config.notifications.deadline_notifiers)(context)
