"""What the pipeline sends for a received day, derived again without sending: the reconcile's truth.

It runs the sync's own code path as a dry run does (`sync_partition` with `dry_run`: listing,
transform, dedup), with every unit of the day read (`resend`: done units included) and the dedup
against the earlier days of the window as the real sync had it: an id first sent from an earlier
day (even one before the range) is not expected again. The days of one derivation dedup against
each other through the dry run's own store, in a throwaway folder; the ledger and the real state are
only read.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hyperline_sync.config.models import PipelineConfig
from hyperline_sync.pipeline.sync import SyncJob, sync_partition
from hyperline_sync.sources.base import PartitionSource
from hyperline_sync.state.ledger import Ledger
from hyperline_sync.state.store import Location


def expected_by_day(pipeline: PipelineConfig, ledger: Ledger, source: PartitionSource, state_dir: Location,
                    days: list[dt.date]) -> Iterator[tuple[dt.date, list[dict]]]:
    """For each day (oldest first), the events the pipeline sends for it, as it sends them.

    Raises what the sync raises for the day (PartitionFailedError when a unit cannot be read)."""
    with tempfile.TemporaryDirectory(prefix="hyperline-reconcile-") as tmp:
        for day in sorted(days):
            events: list[dict] = []

            def keep(_partition: str, batch: list[dict], into: list[dict] = events) -> None:
                into.extend(batch)

            job = SyncJob(pipeline=pipeline, ledger=ledger, source=source, state_dir=state_dir,
                          output_dir=Path(tmp), run_id="reconcile", owner="reconcile", dry_run=True, resend=True,
                          event_sink=keep)
            sync_partition(job, day)
            yield day, events
