"""Airflow notifiers for the tests, named by import path in pipeline configs (`tests.notifiers.X`)."""

from __future__ import annotations

import json

from airflow.sdk.bases.notifier import BaseNotifier


class FileNotifier(BaseNotifier):
    """Appends one JSON line per notification: what the notifier was told and the run's state."""

    template_fields = ("message",)

    def __init__(self, path: str, message: str) -> None:
        super().__init__()
        self.path, self.message = path, message

    def notify(self, context) -> None:
        run = context.get("dag_run")
        with open(self.path, "a") as f:
            f.write(json.dumps({"message": self.message, "state": str(getattr(run, "state", None)),
                                "reason": context.get("reason")}) + "\n")


class RaisingNotifier(BaseNotifier):
    """A notifier whose service is down."""

    def notify(self, context) -> None:
        raise ConnectionError("the mail server is down")
