"""The `notifications` section of a pipeline: Airflow notifiers called when a run fails, succeeds or
misses its deadline, named by import path with their keyword arguments.

The classes are imported when a notification is sent, not when the config is read: `validate` runs
without the providers installed, and a notifier that cannot be imported or fails is logged, never
the sync's failure (`orchestration.notify`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from hyperline_sync.config.base import FrozenModel, Text, matching

IMPORT_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"


class NotifierConfig(FrozenModel):
    """One notifier: `{class: airflow.providers.smtp.notifications.smtp.SmtpNotifier, kwargs: {to: ...}}`."""

    class_path: Annotated[Text, matching(IMPORT_PATH, "a dotted import path: package.module.Class")] = Field(
        alias="class", description="Import path of an Airflow notifier class (a subclass of "
                                   "airflow.sdk.bases.notifier.BaseNotifier), e.g. "
                                   "airflow.providers.slack.notifications.slack.SlackNotifier.")
    kwargs: dict[Text, Any] = Field(default_factory=dict, description="Keyword arguments the class is built with "
                                                                      "(Jinja-templated by the notifier itself).")


class NotificationsConfig(FrozenModel):
    """Who hears about a pipeline's runs; every list is empty by default."""

    on_failure: tuple[NotifierConfig, ...] = Field((), description="Called when a run of the pipeline's DAGs fails.")
    on_success: tuple[NotifierConfig, ...] = Field((), description="Called when a run of the pipeline's DAGs "
                                                                   "succeeds.")
    on_deadline: tuple[NotifierConfig, ...] | None = Field(
        None, description="Called when a scheduled run is still not done `tuning.deadline_minutes` after it was "
                          "queued; null: the on_failure notifiers.")

    @property
    def deadline_notifiers(self) -> tuple[NotifierConfig, ...]:
        return self.on_failure if self.on_deadline is None else self.on_deadline
