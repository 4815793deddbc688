"""Airflow asset events: one asset per pipeline, an event for every day a real run left done.

The asset is `hyperline://<pipeline>/usage`. The DAG's `publish` task (after the syncs, whatever
their state) emits one event per partition of the run that ended done, through the asset alias
`segment_to_hyperline__<pipeline>__usage` (an alias lets one task emit several events of one asset,
each with its own extra): the day, the run, its counts and whether anything was new. A day with
nothing new gets its event too, so a downstream DAG scheduled on the asset knows it was checked.
Dry runs emit nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetAlias

from hyperline_sync.config import DAG_ID_PREFIX
from hyperline_sync.orchestration.runtime import load_pipeline, output_location
from hyperline_sync.state.ledger import DONE
from hyperline_sync.state.report import read_outcomes


def usage_asset(pipeline: str) -> Asset:
    return Asset(uri=f"hyperline://{pipeline}/usage", name=f"hyperline_usage__{pipeline}")


def usage_alias(pipeline: str) -> AssetAlias:
    return AssetAlias(name=f"{DAG_ID_PREFIX}{pipeline}__usage")


def done_partitions(pipeline_name: str, groups: list[list[str]] | None, params: dict, run_id: str) -> list[dict]:
    """The extra of each event to emit: the run's partitions that ended done, oldest first."""
    if not groups or params.get("dry_run"):
        return []
    config, pipeline = load_pipeline(pipeline_name)
    outcomes = read_outcomes(output_location(config), pipeline.name, run_id)
    days = sorted({day for group in groups for day in group})
    return [{"pipeline": pipeline.name, "partition": day, "run_id": run_id,
             "replay": bool(params.get("replay_dead_letters")), "new": outcomes[day].counts.read > 0,
             "watermark": outcomes[day].watermark, **outcomes[day].counts.as_dict()}
            for day in days if day in outcomes and outcomes[day].status == DONE]


def emit(outlet_events: Any, pipeline: str, extras: list[dict]) -> None:
    asset, alias = usage_asset(pipeline), usage_alias(pipeline)
    for extra in extras:
        outlet_events[alias].add(asset, extra=extra)
