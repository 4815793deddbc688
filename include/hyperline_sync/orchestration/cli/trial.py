"""The throwaway runs behind `preview` and `diff`: the DAG's code path (`sync_partition`: listing,
transform, dedup, ledger, dead letters) over a range of days, against a temporary ledger and state
directory so that they never touch real progress, with the usage of what was sent tallied.

A range is at most MAX_DAYS days: each run reads the source in full, and a longer one is a backfill
(trigger the DAG with `dry_run`). A source that cannot be read (its listing fails, or one of the
day's objects) raises `SourceUnreadableError`: the command cannot answer what it was asked.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hyperline_sync.config import PipelineConfig
from hyperline_sync.insight.usage import UsageTally
from hyperline_sync.pipeline.partitions import PlanError, day_range, parse_day
from hyperline_sync.pipeline.ports import Sender
from hyperline_sync.pipeline.sync import PartitionFailedError, SyncJob, sync_partition
from hyperline_sync.sources.base import open_source
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.state.ledger import FAILED, Ledger
from hyperline_sync.state.report import PartitionOutcome

__all__ = ["MAX_DAYS", "DiscardSender", "PreviewResult", "SourceUnreadableError", "TrialRun", "day_span",
           "trial_run"]

MAX_DAYS = 31


class SourceUnreadableError(RuntimeError):
    """The pipeline's source (or an object of it) could not be read; the message says where and why."""


@dataclass
class PreviewResult:
    accepted: int
    failed: list = field(default_factory=list)
    requests: int = 0
    retries: int = 0


class DiscardSender:
    """Accepts every event and keeps none (the tally counts them)."""

    def send_events(self, events: Iterable[Mapping], *, prevalidated: bool = False) -> PreviewResult:
        return PreviewResult(accepted=sum(1 for _ in events))


def day_span(start: str, end: str) -> list[dt.date]:
    """The days in [start, end): PlanError unless end is after start and within MAX_DAYS of it."""
    first, stop = parse_day(start, "--start"), parse_day(end, "--end")
    if stop <= first:
        raise PlanError(f"--end ({stop}) must be after --start ({first}); end is exclusive")
    if (stop - first).days > MAX_DAYS:
        raise PlanError(f"--start {first} to --end {stop} is {(stop - first).days} days; at most {MAX_DAYS} at a "
                        "time (run several ranges, or trigger the DAG with dry_run)")
    return day_range(first, stop)


@dataclass
class TrialRun:
    outcomes: list[PartitionOutcome]
    usage: UsageTally

    @property
    def failed(self) -> list[str]:
        return [o.partition for o in self.outcomes if o.status != "done"]

    def unreadable(self) -> str | None:
        """Why some objects of the days could not be read, or None when every one was."""
        errors = [f"{o.partition}: {o.error}" for o in self.outcomes if o.objects_synced < o.objects_total]
        return "cannot read the source: " + "; ".join(errors) if errors else None


def trial_run(pipeline: PipelineConfig, days: list[dt.date], sender: Sender) -> TrialRun:
    usage = UsageTally(pipeline.report.sum_properties)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="hyperline-trial-") as tmp:
        try:
            job = SyncJob(
                pipeline=pipeline,
                ledger=Ledger.sqlite(Path(tmp) / "ledger.db"),
                source=open_source(pipeline),
                state_dir=Path(tmp) / "state",
                output_dir=Path(tmp) / "reports",
                run_id="preview",
                owner="preview",
                sender=sender,
                usage=usage,
            )
            for day in days:
                try:
                    outcomes.append(sync_partition(job, day))
                except PartitionFailedError as exc:
                    outcomes.append(getattr(exc, "partition_outcome", None)
                                    or PartitionOutcome(day.isoformat(), FAILED, error=str(exc)))
        except UnitReadError as exc:  # the source itself: its connection, its listing
            raise SourceUnreadableError(f"cannot read the source of pipeline {pipeline.name}: {exc}") from exc
    return TrialRun(outcomes, usage)
