"""Two DAGs per pipeline of the config: `segment_to_hyperline__<name>` (the hourly sync) and its
companion `segment_to_hyperline__<name>__daily` (one run per day: what Airflow's Backfill is for).

plan (which days) -> sync (mapped, one task per day or group of days, capped by a pool) ->
publish (always runs; one asset event per partition left done) -> summarize (always runs; writes
the report and fails the run naming failed partitions). Notifiers of the config are the DAGs'
success/failure callbacks; `tuning.deadline_minutes` is a deadline alert on the hourly DAG.
A pipeline whose config is invalid gets a DAG of the same id whose one task fails with the error.
The task bodies live in `hyperline_sync.orchestration` (`planning`, `tasks`); this file only wires
them to Airflow. It imports them inside the task functions: parsing the file (the scheduler's DAG
processor, and every task process before its task runs) loads the config and airflow.sdk only, and
a task loads what its own body needs (`plan` and `publish` never load pandas or the sync pipeline).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from hyperline_sync.config import CONFIG_ENV, DAG_ID_PREFIX, ConfigError, PipelineConfig, read_pipelines
from hyperline_sync.config.models import DEFAULT_SCHEDULE, DEFAULT_START_DATE
from hyperline_sync.orchestration import assets, corrections_approval
from hyperline_sync.orchestration.notify import dag_callbacks, deadline_alert
from hyperline_sync.orchestration.reconcile_dag import build_reconcile_dag
from hyperline_sync.pipeline.partitions import PlanError, group_label

DOC = """
Syncs Segment `track` events of pipeline **{name}** into Hyperline, one received day per partition.

* Scheduled hourly: the days overlapping the data interval plus {lookback} day(s) before; only
  units not yet done are read (archive objects by key + ETag, warehouse load slices by version).
* Backfill: trigger with `start` and `end` (**end exclusive**), or use Airflow's Backfill on the
  companion DAG `{daily_dag_id}` (one run per day; Backfill's `to_date` is **inclusive**). Backfill
  on this hourly DAG creates 24 runs per day.
* Rerun failed partitions: trigger with `partitions` = `["failed"]` (or explicit days).
* `dry_run` sends nothing and writes the events it would send next to the run report.
* `replay_dead_letters` sends the dead-lettered lines of the days again, read from the source.
* Unpausing this DAG starts its schedule. Each day left done emits an event of the asset
  `hyperline://{name}/usage`. Runbook: docs/operations.md.
"""

DAILY_DOC = """
Companion of `{hourly_dag_id}` for **backfills from the UI**: one run per received day (the run's
data interval, no lookback), so Airflow's Backfill from D1 to D2 syncs D1..D2 (`to_date` inclusive)
with one run per day. The same tasks, ledger and dedup as the hourly DAG: days already done are
skipped. Backfill runs only run while the DAG is unpaused (the Backfill dialog offers to unpause
it); unpaused, it also runs once a day for the day before, which the hourly DAG has usually done
already (then it only lists the day). Runbook: docs/operations.md.
"""
DAILY_SCHEDULE = "0 0 * * *"

# A sync task reschedules itself (holding no worker slot) while another run syncs all of its days
# (tasks.PartitionsBusyError), polling every WAIT_POLL. After WAIT_LIMIT from the run's start it
# stops waiting and fails as busy (then Airflow's retries apply). Days of one run, and neighbouring
# days of two runs, sync side by side: dedup across them is pipeline.id_index's job.
WAIT_POLL = dt.timedelta(seconds=10)
WAIT_LIMIT = dt.timedelta(hours=6)
log = logging.getLogger(__name__)

PARAMS = {
    "start": Param(None, type=["null", "string"], format="date",
                   description="First received day of a manual range (YYYY-MM-DD); empty: the run's interval."),
    "end": Param(None, type=["null", "string"], format="date",
                 description="Day after the last one of the manual range (end is exclusive)."),
    "partitions": Param([], type="array", items={"type": "string"},
                        description='Explicit days to (re)sync, e.g. ["2026-11-01"]; "failed" means every '
                                    "partition the ledger has as failed. Overrides start/end."),
    "dry_run": Param(False, type="boolean",
                     description="Read, transform and dedup, send nothing; write the events that would be sent."),
    "resend": Param(False, type="boolean",
                    description="Send again partitions already done (e.g. after a mapping change). Safe: Hyperline "
                                "upserts on record.id."),
    "replay_dead_letters": Param(False, type="boolean",
                                 description="Instead of syncing, replay the days' dead letters after a fix: their "
                                             "lines are read again from the source and sent with the same dedup."),
    "replay_reason": Param(None, type=["null", "string"],
                           description="With replay_dead_letters: only dead letters of this reason "
                                       "(e.g. rejected_by_hyperline)."),
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _run_began(dag_run: Any) -> dt.datetime | None:
    """When the run really began: `dag.test` sets a past-dated run's start_date to its logical
    date, which would count as hours of waiting already; run_after is then the creation time."""
    times = [t for t in (dag_run.start_date, getattr(dag_run, "run_after", None)) if t is not None]
    return max(times) if times else None


def _data_interval(ctx) -> tuple[dt.datetime, dt.datetime] | None:
    # Manual runs may have no logical date: the context then lacks the data interval keys.
    start, end = ctx.get("data_interval_start"), ctx.get("data_interval_end")
    return (start, end) if start is not None and end is not None and end > start else None


def build_dag(pipeline: PipelineConfig, *, daily: bool = False) -> DAG:
    """The DAG's shape comes from the config at parse time; the tasks re-read it when they run.
    `daily`: the companion DAG, one run (and no lookback) per day, for backfills."""
    tuning, name = pipeline.tuning, pipeline.name
    schedule = DAILY_SCHEDULE if daily else pipeline.schedule
    lookback = 0 if daily else None
    deadline = None if daily else deadline_alert(pipeline)
    callbacks = dag_callbacks(pipeline)

    @dag(
        dag_id=pipeline.dag_id + ("__daily" if daily else ""),
        # A cron string alone would give zero-length intervals in Airflow 3; null = manual runs only.
        schedule=CronDataIntervalTimetable(schedule, timezone="UTC") if schedule else None,
        start_date=dt.datetime.combine(pipeline.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["segment", "hyperline", "billing"] + (["backfill"] if daily else []),
        params=PARAMS,
        doc_md=(DAILY_DOC.format(hourly_dag_id=pipeline.dag_id) if daily else
                DOC.format(name=name, lookback=tuning.lookback_days, daily_dag_id=pipeline.dag_id + "__daily")),
        on_success_callback=callbacks.get("on_success_callback"),
        on_failure_callback=callbacks.get("on_failure_callback"),
        deadline=deadline,
        default_args={
            "owner": "billing",
            "retries": tuning.retries,
            "retry_delay": dt.timedelta(seconds=tuning.retry_delay_seconds),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(minutes=30),
        },
    )
    def sync_dag() -> None:
        @task
        def plan() -> list[list[str]]:
            from hyperline_sync.orchestration import planning

            ctx = get_current_context()
            try:
                return planning.plan(name, dict(ctx["params"]), _data_interval(ctx), ctx["dag_run"].run_after,
                                     run_id=ctx["run_id"], lookback_days=lookback)
            except PlanError as exc:
                raise AirflowFailException(str(exc)) from exc

        @task(pool=tuning.pool, map_index_template="{{ partition_label }}")
        def sync(days: list[str], plan: list[list[str]]) -> list[dict]:
            from hyperline_provider.exceptions import HyperlineAuthError, HyperlineRequestError
            from hyperline_sync.orchestration import tasks

            ctx = get_current_context()
            ctx["partition_label"] = group_label(days)
            started = _run_began(ctx["dag_run"])
            patient = started is None or _utcnow() - started < WAIT_LIMIT
            ti = ctx["ti"]  # the claims are this attempt's: a zombie of it and its retry never both sync
            try:
                return tasks.sync(name, days, dict(ctx["params"]), ctx["run_id"], wait_if_busy=patient,
                                  map_index=ti.map_index, try_number=ti.try_number,
                                  run_days=[day for group in plan for day in group])
            except tasks.PartitionsBusyError as exc:
                log.info("%s: rescheduled, no slot held", exc)
                raise AirflowRescheduleException(_utcnow() + WAIT_POLL) from exc
            except (HyperlineAuthError, HyperlineRequestError) as exc:  # a retry cannot fix a key or host
                raise AirflowFailException(str(exc)) from exc
            except tasks.SyncError as exc:  # the same, its text redacted
                if exc.fatal:
                    raise AirflowFailException(str(exc)) from None
                raise

        @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
        def summarize(groups: list[list[str]] | None) -> dict:  # None: plan failed
            from hyperline_sync.orchestration import tasks

            ctx = get_current_context()
            try:
                return tasks.summarize(name, groups, dict(ctx["params"]), ctx["run_id"])
            except tasks.RunFailedError as exc:
                raise AirflowFailException(str(exc)) from exc

        @task(trigger_rule=TriggerRule.ALL_DONE, retries=0, outlets=[assets.usage_alias(name)])
        def publish(groups: list[list[str]] | None) -> int:
            """One asset event per partition left done; never fails the run (summarize tells)."""
            ctx = get_current_context()
            try:
                extras = assets.done_partitions(name, groups, dict(ctx["params"]), ctx["run_id"])
            except Exception as exc:
                log.error("no asset events: cannot read the run's outcomes: %s: %s", type(exc).__name__, exc)
                return 0
            assets.emit(ctx["outlet_events"], name, extras)
            log.info("asset events of %s: %s", assets.usage_asset(name).uri,
                     ", ".join(e["partition"] for e in extras) or "none (no partition done)")
            return len(extras)

        groups = plan()
        published = publish(groups)
        sync.partial(plan=groups).expand(days=groups) >> published >> summarize(groups)
        if pipeline.corrections == "retract":
            # beside summarize, never after it: Airflow judges a run by its leaf tasks, and summarize is the
            # one that fails the run for failed partitions
            corrections_approval.wire(name, published)

    built = sync_dag()
    for callback in callbacks.values():
        callback.dag = built
    return built


BROKEN_DOC = """
Pipeline **{name}** is not synced: its configuration is invalid. Every run fails with the error
below until the config file is fixed (the other pipelines of the file are not affected).

```
{error}
```
"""


def build_broken_dag(name: str, error: ConfigError) -> DAG:
    """A stand-in for a pipeline whose config is invalid: its runs fail at once, naming the error.
    Failing loudly (scheduled like a default pipeline) beats a DAG that silently disappears; an
    import error would take every pipeline of the file with it."""
    message = str(error)

    @dag(
        dag_id=DAG_ID_PREFIX + name,
        schedule=CronDataIntervalTimetable(DEFAULT_SCHEDULE, timezone="UTC"),
        start_date=dt.datetime.combine(DEFAULT_START_DATE, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["segment", "hyperline", "billing", "config-error"],
        doc_md=BROKEN_DOC.format(name=name, error=message),
        default_args={"owner": "billing", "retries": 0},
    )
    def broken_dag() -> None:
        @task
        def config_error() -> None:
            raise AirflowFailException(f"invalid config of pipeline {name}: {message}")

        config_error()

    return broken_dag()


if os.environ.get(CONFIG_ENV):
    # Nothing readable at all (no file, invalid YAML, no pipelines list) stays an import error.
    _loaded = read_pipelines()
    for _pipeline in _loaded.pipelines:
        globals()[_pipeline.dag_id] = build_dag(_pipeline)
        globals()[_pipeline.dag_id + "__reconcile"] = build_reconcile_dag(_pipeline)
        globals()[_pipeline.dag_id + "__daily"] = build_dag(_pipeline, daily=True)
    for _name, _error in _loaded.broken:
        log.error("pipeline %s is not scheduled, its config is invalid: %s", _name or "(unnamed)", _error)
        if _name is not None and DAG_ID_PREFIX + _name not in globals():
            globals()[DAG_ID_PREFIX + _name] = build_broken_dag(_name, _error)
else:
    log.warning("%s is not set: no Segment -> Hyperline DAG is defined", CONFIG_ENV)
