"""The reconcile DAG of a pipeline, `segment_to_hyperline__<name>__reconcile`: once a day, prove that
Hyperline holds what the pipeline sent for the last RECONCILE_DAYS received days (see
`pipeline.reconcile`); built next to the sync DAG by the DAGs file.

Params `start`/`end` (end exclusive) choose another range, `repair` resends what is missing or
different, `counts` compares only counts per event type and UTC day of event timestamp. The run fails
when Hyperline does not hold exactly what the pipeline sends (after a repair: when something is
still wrong; counts: when a count differs) or when the reconcile could not finish; its report is
`reconcile.json` in the run's folder under `state.output_dir`.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from hyperline_sync.config import PipelineConfig

log = logging.getLogger(__name__)

RECONCILE_SCHEDULE = "30 5 * * *"  # daily, after the night's hourly syncs have settled yesterday
RECONCILE_DAYS = 7
SUFFIX = "__reconcile"

PARAMS = {
    "start": Param(None, type=["null", "string"], format="date",
                   description=f"First received day (YYYY-MM-DD); empty: the {RECONCILE_DAYS} days before the run."),
    "end": Param(None, type=["null", "string"], format="date",
                 description="Day after the last one (exclusive); empty: the run's day."),
    "repair": Param(False, type="boolean", description="Resend the missing and different events."),
    "counts": Param(False, type="boolean", description="Compare only counts per event type and UTC day of event "
                                                       "timestamp (no id lookups; cannot repair)."),
}


def reconcile_range(params: dict, today: dt.date) -> tuple[str, str]:
    """The range a run checks: its params, else the RECONCILE_DAYS days before `today`."""
    end = params.get("end") or today.isoformat()
    start = params.get("start") or (dt.date.fromisoformat(end) - dt.timedelta(days=RECONCILE_DAYS)).isoformat()
    return start, end


def run_reconcile(pipeline_name: str, params: dict, run_id: str, today: dt.date) -> dict:
    """The task body: reconcile the run's range; raise AirflowFailException unless Hyperline is exact."""
    from hyperline_sync.orchestration import runtime
    from hyperline_sync.orchestration.reconcile_run import ReconcileRequest, default_output, reconcile, summary

    config, pipeline = runtime.load_pipeline(pipeline_name)
    start, end = reconcile_range(params, today)
    request = ReconcileRequest(config, pipeline, start, end, run_id, repair=bool(params.get("repair")),
                               secrets=runtime.hyperline_secrets(pipeline), counts=bool(params.get("counts")))
    report = reconcile(request)
    text, path = summary(report), default_output(config, pipeline.name, run_id)
    log.info("%s; report: %s", text, path)
    if not report.complete or not report.exact:
        raise AirflowFailException(f"{text}; report: {path}")
    return {"report": str(path), "checked": report.checked, "unexpected": len(report.unexpected),
            "repaired": report.repaired}


def build_reconcile_dag(pipeline: PipelineConfig) -> DAG:
    name = pipeline.name

    @dag(
        dag_id=pipeline.dag_id + SUFFIX,
        schedule=CronDataIntervalTimetable(RECONCILE_SCHEDULE, timezone="UTC"),
        start_date=dt.datetime.combine(pipeline.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["segment", "hyperline", "billing", "reconcile"],
        params=PARAMS,
        doc_md=__doc__,
        default_args={"owner": "billing", "retries": 0},
    )
    def reconcile_dag() -> None:
        @task(pool=pipeline.tuning.pool)
        def reconcile() -> dict:
            ctx = get_current_context()
            moment = ctx.get("data_interval_end") or ctx["dag_run"].run_after
            return run_reconcile(name, dict(ctx["params"]), ctx["run_id"], moment.date())

        reconcile()

    return reconcile_dag()
