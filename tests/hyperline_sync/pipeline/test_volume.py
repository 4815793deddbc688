"""Volume checks: a complete day with no data (next to days with data) or far below the trailing median
is flagged in its outcome and the log; `tuning.empty_partition: fail` fails it; today is never judged."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import uuid
from pathlib import Path

import orjson
import pytest

from hyperline_sync.config import ConfigError, PipelineConfig, S3ArchiveSourceConfig, TuningConfig, parse_config
from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.pipeline.sync import PartitionFailedError, SyncJob, sync_partition
from hyperline_sync.pipeline.volume import volume_warning
from hyperline_sync.sources.archive.listing import day_folder
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.ledger import DONE, FAILED, Ledger
from hyperline_sync.state.report import PartitionOutcome
from tests.recording_sender import Recorder

TODAY = dt.date(2026, 1, 20)
D = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(12)]


def history(**reads: int) -> dict[dt.date, int]:
    """Lines read per day, keyed d<n> for D[n]."""
    return {D[int(name[1:])]: read for name, read in reads.items()}


@pytest.mark.parametrize(
    ("day", "read", "days", "flagged"),
    [
        (D[7], 5, history(d0=100, d1=120, d2=90, d3=110, d4=100, d5=95, d6=105), "below 0.1 of the median"),
        (D[7], 10, history(d0=100, d1=120, d2=90, d3=110, d4=100, d5=95, d6=105), None),  # at the bar: fine
        (D[7], 0, history(d6=40), "no data for 2026-01-08, a complete day, while 2026-01-07 has 40 lines"),
        (D[7], 0, history(d8=40), "while 2026-01-09 has 40 lines"),  # a later neighbour (a backfill)
        (D[7], 0, history(d0=100, d1=100, d2=100), "0 lines read for 2026-01-08, below 0.1 of the median"),
        (D[7], 0, {}, None),  # nothing to compare with: a new pipeline
        (D[7], 1, history(d5=100, d6=100), None),  # two days are not enough history for a median
        (D[7], 1, history(d0=100, d1=100, d2=100, d3=100, d4=100, d5=100, d6=100, d8=10_000), "median of the 7"),
        (D[9], 1, history(d0=10_000, d1=10_000, d6=100, d7=100, d8=100), "median of the 3 days before it (100"),
    ],
)
def test_volume_warning(day: dt.date, read: int, days: dict, flagged: str | None) -> None:
    warning = volume_warning(day, read, days, TODAY, 0.1)
    if flagged is None:
        assert warning is None
    else:
        assert warning is not None and flagged in warning, warning


def test_todays_partial_day_is_never_judged() -> None:
    days = history(d0=100, d1=100, d2=100, d3=100)
    assert volume_warning(TODAY, 0, {**days, TODAY - dt.timedelta(days=1): 100}, TODAY, 0.1) is None
    assert volume_warning(TODAY - dt.timedelta(days=1), 0, {TODAY: 100}, TODAY, 0.1) is not None


def test_a_share_of_zero_only_flags_empty_days() -> None:
    days = history(d0=100, d1=100, d2=100, d3=100, d4=100, d5=100, d6=100)
    assert volume_warning(D[7], 1, days, TODAY, 0.0) is None
    assert volume_warning(D[7], 0, days, TODAY, 0.0) is not None  # empty next to a day with data


@pytest.mark.parametrize(
    ("tuning", "error"),
    [({"min_volume_share": 1.5}, "min_volume_share"), ({"min_volume_share": "x"}, "min_volume_share"),
     ({"empty_partition": "ignore"}, "empty_partition")],
)
def test_the_settings_are_validated(tuning: dict, error: str) -> None:
    raw = {"pipelines": [{"name": "p", "source": {"kind": "s3_archive", "url": "file:///x", "source_id": "s"},
                          "tuning": tuning}]}
    with pytest.raises(ConfigError, match=error):
        parse_config(raw)


def test_the_settings_default_to_a_tenth_and_warn() -> None:
    raw = {"pipelines": [{"name": "p", "source": {"kind": "s3_archive", "url": "file:///x", "source_id": "s"},
                          "tuning": {"min_volume_share": 0.25, "empty_partition": "fail"}}]}
    assert (TuningConfig().min_volume_share, TuningConfig().empty_partition) == (0.1, "warn")
    tuning = parse_config(raw).pipelines[0].tuning
    assert (tuning.min_volume_share, tuning.empty_partition) == (0.25, "fail")


# -- through the real sync, on a file:// archive, with the ledger's history ----------------------------

def write_day(root: Path, day: dt.date, lines: int) -> None:
    folder = root / "segment-logs" / "src1" / day_folder(day)
    folder.mkdir(parents=True, exist_ok=True)
    if lines:
        body = b"".join(orjson.dumps({"type": "track", "event": "API Call", "messageId": f"{day}-{i}",
                                      "userId": "u1", "timestamp": f"{day}T10:00:00.000Z"}) + b"\n"
                        for i in range(lines))
        (folder / "a.gz").write_bytes(gzip.compress(body))


def sync(root: Path, day: dt.date, **tuning: object) -> PartitionOutcome:
    source = S3ArchiveSourceConfig(url=f"file://{root / 'archive'}", source_id="src1")
    pipeline = PipelineConfig(name="vol", source=source, mapping=MappingConfig(), tuning=TuningConfig(**tuning))
    run_id = f"run-{uuid.uuid4().hex[:6]}"
    job = SyncJob(pipeline=pipeline, ledger=Ledger.sqlite(root / "ledger.db"), source=ArchiveSource(pipeline),
                  state_dir=root / "state", output_dir=root / "out", run_id=run_id, owner=run_id, sender=Recorder())
    return sync_partition(job, day)


@pytest.fixture
def synced_week(tmp_path: Path) -> Path:
    """Seven complete days of 100 lines each, synced: the ledger's history."""
    for day in D[:7]:
        write_day(tmp_path / "archive", day, 100)
        assert sync(tmp_path, day).warning is None
    return tmp_path


def test_a_day_far_below_the_trailing_median_is_flagged_in_its_outcome_and_log(
    synced_week: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_day(synced_week / "archive", D[7], 4)
    with caplog.at_level(logging.WARNING):
        outcome = sync(synced_week, D[7])
    assert outcome.status == DONE and outcome.counts.sent == 4
    assert outcome.warning == ("4 lines read for 2026-01-08, below 0.1 of the median of the 7 days before it "
                               "(100 lines): data missing from the source, or a wrong source setting?")
    assert outcome.to_json()["warning"] == outcome.warning  # in the outcome file and the run report
    assert outcome.warning in caplog.text

    again = sync(synced_week, D[7])  # a later run with nothing new counts the lines of the done objects
    assert again.counts.read == 0 and again.warning == outcome.warning


def test_an_empty_complete_day_is_flagged_and_fails_with_empty_partition_fail(synced_week: Path) -> None:
    write_day(synced_week / "archive", D[7], 0)  # the day folder exists, without objects
    warned = sync(synced_week, D[7])
    assert warned.status == DONE and "no data for 2026-01-08" in warned.warning

    with pytest.raises(PartitionFailedError, match="no data for 2026-01-08") as failed:
        sync(synced_week, D[7], empty_partition="fail")
    assert failed.value.partition_outcome.status == FAILED
    state = Ledger.sqlite(synced_week / "ledger.db").partitions("vol")[D[7].isoformat()]
    assert state.status == FAILED and "no data for 2026-01-08" in state.last_error


def test_a_day_at_its_usual_volume_is_not_flagged(synced_week: Path) -> None:
    write_day(synced_week / "archive", D[7], 60)
    assert sync(synced_week, D[7]).warning is None
