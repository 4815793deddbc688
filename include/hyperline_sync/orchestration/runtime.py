"""What every task body reads first, at run time: the pipeline's config as it is now, its ledger, where
run outputs go and the Hyperline key to redact from error texts.

Light on purpose (no pandas, pyarrow, source or sync pipeline): the DAG file's `plan` and `publish`
tasks and the approval tasks import only this, so a task process that does not sync never pays for
the pipeline's imports (`tasks` holds the bodies that do).
"""

from __future__ import annotations

from hyperline_sync.config import Config, PipelineConfig, read_pipelines
from hyperline_sync.state.ledger import Ledger, open_ledger
from hyperline_sync.state.store import Location, locations


def load_pipeline(name: str) -> tuple[Config, PipelineConfig]:
    """The config as it is now: tasks read it at run time, not from the DAG file's parse. Another
    pipeline's config error does not stop this one (as it does not remove its DAG)."""
    return read_pipelines().pipeline(name)


def ledger_for(config: Config, secrets: tuple[str, ...] = ()) -> Ledger:
    return open_ledger(config.state.ledger_conn_id, config.state.dir, secrets)


def output_location(config: Config) -> Location:
    """Where reports, outcomes and dry-run output go: a folder, or a prefix in object storage."""
    return locations(config.state)[1]


def hyperline_secrets(pipeline: PipelineConfig) -> tuple[str, ...]:
    """The API key of the pipeline's Hyperline connection, to redact from error texts (none if unknown)."""
    from airflow.sdk import BaseHook

    try:
        password = BaseHook.get_connection(pipeline.hyperline_conn_id).password
    except Exception:  # no such connection: then no key can leak either
        return ()
    return (password,) if password else ()
