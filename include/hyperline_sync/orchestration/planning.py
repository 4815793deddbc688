"""The body of the DAG's `plan` task: the run's params and data interval turned into groups of days.

Kept apart from `tasks` (the sync and summarize bodies) so that the plan task's process imports the
config, the ledger and the partition arithmetic only, not pandas, pyarrow or the sync pipeline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from hyperline_sync.orchestration.runtime import hyperline_secrets, ledger_for, load_pipeline, output_location
from hyperline_sync.pipeline.partitions import group_days, plan_days
from hyperline_sync.state.report import write_plan_failure

log = logging.getLogger(__name__)


def plan(
    pipeline_name: str,
    params: dict,
    data_interval: tuple[dt.datetime, dt.datetime] | None,
    run_after: dt.datetime,
    run_id: str | None = None,
    lookback_days: int | None = None,
) -> list[list[str]]:
    """The run's days in groups; a failure is also written down (with `run_id`) for summarize to name.
    `lookback_days` overrides the pipeline's (the daily DAG: one run, one day)."""
    try:
        config, pipeline = load_pipeline(pipeline_name)
        days = plan_days(
            params=params,
            data_interval=data_interval,
            run_after=run_after,
            lookback_days=pipeline.tuning.lookback_days if lookback_days is None else lookback_days,
            failed_partitions=lambda: ledger_for(config).failed_partitions(pipeline.name),
        )
    except Exception as exc:
        if run_id is not None:
            with contextlib.suppress(Exception):  # the config itself may be what failed
                config, pipeline = load_pipeline(pipeline_name)
                write_plan_failure(output_location(config), pipeline.name, run_id, f"{type(exc).__name__}: {exc}",
                                   hyperline_secrets(pipeline))
        raise
    groups = group_days(days)
    log.info("pipeline %s: %d partitions in %d tasks: %s", pipeline.name, len(days), len(groups),
             ", ".join(d.isoformat() for d in days[:10]) + (" ..." if len(days) > 10 else ""))
    return groups
