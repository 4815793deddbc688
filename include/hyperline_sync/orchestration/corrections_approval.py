"""The human approval of a sync run's large deletions (`corrections: retract`).

A run whose corrections would delete more than `tuning.corrections_approval_over` events at Hyperline
audits them as `pending_approval` instead (`pipeline.corrections`). For such pipelines the sync DAG
gets three more tasks after `publish` (which they follow whatever its outcome), beside `summarize`,
which stays a leaf so that a run with failed partitions is failed whatever the approval does:
`corrections_pending` (skips the rest when the run left no deletion waiting), `approve_deletions`
(Airflow 3's human-in-the-loop `ApprovalOperator`: it waits, as its own task, for someone to approve
or reject; no answer within APPROVAL_TIMEOUT counts as a rejection) and `apply_deletions` (deletes
them at Hyperline, 5,000 ids a request, and audits them as `deleted`). After a rejection they stay
`pending_approval` in the audit table: nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from hyperline_sync.orchestration import runtime
from hyperline_sync.state import audit

log = logging.getLogger(__name__)

APPROVAL_TIMEOUT = dt.timedelta(days=7)


def pending(pipeline_name: str, run_id: str) -> list[str]:
    """The record ids the run's corrections wait to delete."""
    config, pipeline = runtime.load_pipeline(pipeline_name)
    rows = audit.rows(runtime.ledger_for(config).engine, pipeline.name, run_id, audit.PENDING_APPROVAL)
    return sorted({r["record_id"] for r in rows})


def apply(pipeline_name: str, run_id: str, deleter: Any = None) -> int:
    """Delete the run's approved deletions at Hyperline and audit them as deleted; how many ids."""
    from hyperline_sync.orchestration.sender import make_sender

    config, pipeline = runtime.load_pipeline(pipeline_name)
    ids = pending(pipeline_name, run_id)
    if ids:
        deleted = (deleter or make_sender(pipeline)).delete_events(ids)
        log.info("deleted %d events of %d record ids, as approved", deleted, len(ids))
    audit.settle_pending(runtime.ledger_for(config).engine, pipeline.name, run_id, audit.DELETED)
    return len(ids)


def wire(pipeline_name: str, after: Any) -> None:
    """Add the approval tasks after `after` (publish), inside the DAG being built."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import TriggerRule, get_current_context, task

    @task.short_circuit(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def corrections_pending() -> int:
        waiting = len(pending(pipeline_name, get_current_context()["run_id"]))
        log.info("%d deletions wait for approval", waiting)
        return waiting

    @task(retries=0)
    def apply_deletions() -> int:
        return apply(pipeline_name, get_current_context()["run_id"])

    approve = ApprovalOperator(
        task_id="approve_deletions",
        subject=f"Pipeline {pipeline_name}: delete events at Hyperline?",
        body=("The source rewrote data already synced: {{ ti.xcom_pull(task_ids='corrections_pending') }} events "
              "are gone from it. Approve to delete them at Hyperline (run {{ run_id }}; the ids are in the ledger's "
              "hyperline_sync_corrections table as pending_approval)."),
        defaults="Reject",
        response_timeout=APPROVAL_TIMEOUT,
    )
    after >> corrections_pending() >> approve >> apply_deletions()
