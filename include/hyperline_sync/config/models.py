"""The typed pipelines config: state, sources, tuning, one pipeline, the whole file.

Models are built by `loader.load_config` / `loader.parse_config` (which expand `${VAR}` first);
every problem becomes a `ConfigError` naming the bad key's path. Tests and tools may construct
them with keyword arguments.
"""

from __future__ import annotations

import math
import os
import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from hyperline_sync.config.base import ConnId, FrozenModel, Int, Seconds, Text, matching, number_check
from hyperline_sync.config.errors import ConfigError, problem, type_name
from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.config.notifications import NotificationsConfig
from hyperline_sync.config.sources import (
    WAREHOUSE_DEFAULT_LOOKBACK_DAYS,
    WAREHOUSE_RESERVED_TABLES,
    S3ArchiveSourceConfig,
    SourceConfig,
    WarehouseSourceConfig,
)

__all__ = [
    "DAG_ID_PREFIX",
    "DEFAULT_START_DATE",
    "WAREHOUSE_DEFAULT_LOOKBACK_DAYS",
    "WAREHOUSE_RESERVED_TABLES",
    "Config",
    "ConfigError",
    "PipelineConfig",
    "ReportConfig",
    "S3ArchiveSourceConfig",
    "SourceConfig",
    "StateConfig",
    "TuningConfig",
    "WarehouseSourceConfig",
]

DAG_ID_PREFIX = "segment_to_hyperline__"
PIPELINE_NAME = r"^[a-z0-9_]+$"
DEFAULT_SCHEDULE = "0 * * * *"
# Only the DAG's first possible interval: catchup is off, so an old date schedules nothing extra.
DEFAULT_START_DATE = date(2024, 1, 1)
MAX_BATCH_SIZE = 5000  # Hyperline's maxItems for POST /v1/events/batch
_CRON_PRESETS = frozenset({"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"})


def _default_state_dir() -> Path:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return Path(airflow_home) / "hyperline_sync"


class StateConfig(FrozenModel):
    """Where progress lives: the ledger (SQLite file in `dir`, or Postgres), dedup id files, reports.

    `dir` and `output_dir` are local folders (paths) or object storage URLs (`s3://bucket/prefix`, or
    another scheme Airflow's ObjectStoragePath supports); see `state.store`.
    """

    dir: Path | str = Field(default_factory=_default_state_dir,
                            description="Dedup ids, checkpoints, dead letters and the SQLite ledger: a folder "
                                        "(relative to the config file's folder) or an object storage URL such "
                                        "as s3://bucket/prefix; default $AIRFLOW_HOME/hyperline_sync.")
    output_dir: Path | str = Field(default_factory=lambda data: _below(data["dir"], "reports"),
                                   description="Run reports and dry-run output (folder or URL); default "
                                               "<dir>/reports.")
    conn_id: ConnId | None = Field(None, description="Airflow connection for a `dir`/`output_dir` in object "
                                                     "storage (credentials, endpoint_url); default: the "
                                                     "client's own credentials chain.")
    ledger_conn_id: ConnId | None = Field(None, description="Postgres connection of the ledger; "
                                                            "default: SQLite in `dir`.")

    @field_validator("dir", "output_dir", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            if isinstance(value, Path):
                return value
            raise problem(f"must be a path, got {type_name(value)}")
        if not value:
            raise problem("must not be empty")
        scheme, sep, rest = value.partition("://")
        if sep and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            return _storage_url(scheme, rest)
        path = Path(value).expanduser()
        base_dir = (info.context or {}).get("base_dir") or Path.cwd()
        return path if path.is_absolute() else base_dir / path

    @model_validator(mode="after")
    def _ledger_shared_with_the_state(self) -> StateConfig:
        if isinstance(self.dir, str) and self.ledger_conn_id is None:
            raise problem(f"is in object storage ({self.dir}), so the workers share it, but the ledger is SQLite: "
                          "a SQLite file cannot live in object storage, and a file per worker is no ledger (two "
                          "workers would both sync a day). Set state.ledger_conn_id to a Postgres connection",
                          at=("dir",))
        return self

    @property
    def ledger_path(self) -> Path:
        if isinstance(self.dir, str):
            raise ValueError(f"state.dir {self.dir} is in object storage: the ledger is state.ledger_conn_id")
        return self.dir / "ledger.db"


def _below(folder: Path | str, name: str) -> Path | str:
    return folder / name if isinstance(folder, Path) else f"{folder}/{name}"


def _storage_url(scheme: str, rest: str) -> Path | str:
    """A `file://` URL as its path; any other URL checked and kept (`state.store` opens it)."""
    if scheme == "file":
        if not rest.startswith("/"):
            raise problem("a file:// URL must hold an absolute path (file:///srv/state), got {value}",
                          value=f"{scheme}://{rest}")
        return Path(rest)
    bucket = rest.split("/", 1)[0]
    if "@" in bucket:
        raise problem("must not hold credentials: put them in the Airflow connection named by state.conn_id")
    if not bucket:
        raise problem(f"names no bucket: use {scheme}://bucket/prefix, got {{value}}", value=f"{scheme}://{rest}")
    return f"{scheme}://{rest.strip('/')}"


class TuningConfig(FrozenModel):
    """How a pipeline reads, sends and retries; every key has a default."""

    chunk_size: Int = Field(10_000, ge=1, description="Source lines (or rows) transformed at a time.")
    processes: Int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)), ge=1,
        description="Worker processes reading, decoding and transforming a day's archive objects ahead of the sync, "
                    "at most one per object to sync (default: the cores this process may use); 1 reads in the "
                    "sync's own process. A warehouse source always reads in its own process.")
    batch_size: Int = Field(MAX_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE, description="Events per Hyperline batch request.")
    dedup_window_days: Int = Field(7, ge=0, description="Days of earlier message ids a day is deduplicated against.")
    lookback_days: Int = Field(1, ge=0, description="Days before the run's interval re-read by scheduled runs.")
    claim_ttl_minutes: Int = Field(
        5, ge=1, description="A claim not renewed for this long expires and another attempt may take the partition "
        "over; a live sync renews it every third of it, so it only bounds how long a dead worker blocks its day.")
    max_requests_per_second: float | None = Field(
        None, description="Cap on Hyperline requests per second of one sync task; null: no cap.")
    retries: Int = Field(3, ge=0, le=20, description="Airflow task retries of a partition (exponential backoff "
                                                     "from retry_delay_seconds).")
    retry_delay_seconds: Int = Field(60, ge=0, description="First delay between Airflow task retries.")
    pool: Annotated[Text, matching(r"^[A-Za-z0-9_.-]{1,256}$", "an Airflow pool name: letters, digits, _ . -")] = \
        Field("hyperline", description="Airflow pool capping concurrent senders to Hyperline.")
    breaker_failures: Int = Field(3, ge=1, description="Batches failing in a row (after the hook's retries) that "
                                                       "open the circuit breaker.")
    breaker_cooldown_minutes: Int = Field(15, ge=0, description="How long an open breaker stops sending.")
    send_max_attempts: Int = Field(8, ge=1, le=100, description="The hook's tries of one request (429/5xx/dropped "
                                                                "connections) before the batch counts as failed.")
    send_backoff_seconds: Seconds = Field(1.0, description="First backoff delay; doubles per attempt, with jitter.")
    send_max_retry_seconds: Seconds = Field(300.0, description="Time budget of one request, waits included.")
    state_retention_days: Int | None = Field(None, ge=1, description="Remove the dedup id files of days older than "
                                                                     "this after each run; null keeps them forever.")
    max_rejected_share: Annotated[float, number_check("must be a number > 0 and <= 1", lambda x: 0 < x <= 1)] = \
        Field(0.5, description="Largest share of a partition's read events that may be rejected before the "
                               "partition fails instead of completing.")
    min_volume_share: Annotated[float, number_check("must be a number >= 0 and <= 1", lambda x: 0 <= x <= 1)] = \
        Field(0.1, description="A day reading fewer events than this share of the recent daily volume is "
                               "flagged as suspiciously small.")
    empty_partition: Annotated[Literal["warn", "fail"], BeforeValidator(lambda v: _one_of(v, ("warn", "fail")))] = \
        Field("warn", description="What a partition with nothing to read does: warn (log, report) or fail.")
    corrections_approval_over: Int = Field(1000, ge=0, description="With corrections: retract, a run deleting more "
                                           "events than this waits for a human's approval before deleting them.")
    deadline_minutes: Int | None = Field(None, ge=1, description="Alert (notifications.on_deadline) when a "
                                                                 "scheduled run is not done this many minutes after "
                                                                 "it was queued; null: no deadline.")

    @field_validator("max_requests_per_second", mode="before")
    @classmethod
    def _positive_rate(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            raise problem("must be a positive number or null, got {value}", value=value)
        return value if value is None else float(value)


def _field_names(fields: tuple[str, ...]) -> tuple[str, ...]:
    if not fields:
        raise problem("must list at least one record field (or leave the event type out)")
    for i, name in enumerate(fields):
        if name == "id":
            raise problem("record.id is the messageId, not a number to sum", at=(i,))
        if name in fields[:i]:
            raise problem("{value} is listed twice", at=(i,), value=name)
    return fields


class ReportConfig(FrozenModel):
    """What a run's usage summary (usage.csv, report.html) adds up besides the event counts."""

    sum_properties: dict[Text, Annotated[tuple[Text, ...], AfterValidator(_field_names)]] = Field(
        default_factory=dict,
        description="Hyperline event type (after event_types renames) -> record fields (names as sent, after "
                    "property renames) whose numeric values are summed per day, customer and event type: one "
                    "sum_<field> column each.")


def _one_of(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise problem(f"must be one of: {', '.join(allowed)}, got {{value}}", value=value)
    return value


def _schedule(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise problem(f"must be a string or null, got {type_name(value)}")
    if value in _CRON_PRESETS or (len(value.split()) == 5 and croniter.is_valid(value)):
        return value
    raise problem("must be a 5-field cron expression or an @preset such as @hourly, got {value}", value=value)


def _start_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise problem("must be a date YYYY-MM-DD, got {value}", value=value)


_SOURCE_KINDS: dict[str, type[S3ArchiveSourceConfig | WarehouseSourceConfig]] = {
    "s3_archive": S3ArchiveSourceConfig,
    "warehouse": WarehouseSourceConfig,
}


def _source(value: Any) -> Any:
    if not isinstance(value, dict):
        if isinstance(value, S3ArchiveSourceConfig | WarehouseSourceConfig):
            return value
        raise problem(f"must be a mapping, got {type_name(value)}")
    model = _SOURCE_KINDS.get(value.get("kind"))  # type: ignore[arg-type]
    if model is None:
        known = ", ".join(_SOURCE_KINDS)
        raise problem(f"must be one of: {known} (got {{value}})", at=("kind",), value=value.get("kind"))
    return model.model_validate(value)  # its errors keep their key paths


class PipelineConfig(FrozenModel):
    """One Segment source synced into one Hyperline account: one DAG."""

    name: Annotated[Text, matching(PIPELINE_NAME, "lowercase letters, digits and _")] = Field(
        description="The pipeline's name; its DAG is segment_to_hyperline__<name>.")
    source: Annotated[SourceConfig, BeforeValidator(_source)] = Field(
        description="Where the Segment events are read: kind s3_archive or warehouse.")
    hyperline_conn_id: ConnId = Field("hyperline_default", description="Airflow connection of the Hyperline API.")
    start_date: Annotated[date, BeforeValidator(_start_date)] = Field(
        DEFAULT_START_DATE, description="The DAG's start date (catchup is off).")
    schedule: Annotated[str | None, BeforeValidator(_schedule)] = Field(
        DEFAULT_SCHEDULE, description="5-field cron or @preset, UTC; null: manual runs only.")
    mapping: MappingConfig = Field(default_factory=MappingConfig, description="Which events and how they map.")
    tuning: TuningConfig = Field(default_factory=TuningConfig, description="Throughput, retries and limits.")
    corrections: Annotated[Literal["off", "report", "retract"],
                           BeforeValidator(lambda v: _one_of(v, ("off", "report", "retract")))] = Field(
        "report", description="When a synced unit changes at the source (new ETag, new slice version): off "
                              "ignores it; report lists the events changed or gone; retract also resends the "
                              "changed ones and deletes the gone ones at Hyperline.")
    report: ReportConfig = Field(default_factory=ReportConfig, description="What the usage summary adds up.")
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig,
                                               description="Airflow notifiers called on failure, success, deadline.")

    @model_validator(mode="before")
    @classmethod
    def _one_lookback(cls, data: Any) -> Any:
        """`source.lookback_days` and `tuning.lookback_days` are one setting for a warehouse (the
        planner reads the tuning one); either may be given, both only if equal; neither: 3 days."""
        if not isinstance(data, dict):
            return data
        source, tuning = data.get("source"), data.get("tuning") or {}
        if not isinstance(source, dict) or source.get("kind") != "warehouse" or not isinstance(tuning, dict):
            return data
        in_source, in_tuning = source.get("lookback_days"), tuning.get("lookback_days")
        if in_source is not None and in_tuning is not None and in_source != in_tuning:
            raise problem("{value} conflicts with tuning.lookback_days ({other}); set one of them",
                          at=("source", "lookback_days"), value=in_source,
                          other=(("tuning", "lookback_days"), in_tuning))
        days = next((d for d in (in_source, in_tuning) if d is not None), WAREHOUSE_DEFAULT_LOOKBACK_DAYS)
        if isinstance(days, bool) or not isinstance(days, int):
            return data  # the given key reports it
        return {**data, "source": {**source, "lookback_days": days}, "tuning": {**tuning, "lookback_days": days}}

    @model_validator(mode="after")
    def _retention_covers_the_reach(self) -> PipelineConfig:
        retention, needed = self.tuning.state_retention_days, self.ids_reach_days
        if retention is not None and retention < needed:
            raise problem(f"must be at least {needed}: the scheduled runs read the ids of that many days back "
                          f"(two intervals of the schedule, lookback_days and dedup_window_days)",
                          at=("tuning", "state_retention_days"))
        return self

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.name

    @property
    def ids_reach_days(self) -> int:
        """How many days back from today a scheduled run may still read dedup ids: two of the
        schedule's longest intervals (the latest run may still be running or waiting while the next
        is due), rounded up to whole days, then `lookback_days` and `dedup_window_days`."""
        return math.ceil(2 * _longest_interval_days(self.schedule)) + self.tuning.lookback_days + \
            self.tuning.dedup_window_days


class Config(FrozenModel):
    """The whole file: shared state and the pipelines (names unique)."""

    state: StateConfig = Field(default_factory=StateConfig, description="Where progress lives.")
    pipelines: tuple[PipelineConfig, ...] = Field(min_length=1, description="One DAG each.")
    path: Path | None = Field(None, exclude=True, description="The file it was read from (not a YAML key).")

    def pipeline(self, name: str) -> PipelineConfig:
        for pipeline in self.pipelines:
            if pipeline.name == name:
                return pipeline
        known = ", ".join(p.name for p in self.pipelines)
        raise ConfigError("pipelines", f"no pipeline named {name!r} (known: {known})")


@lru_cache(maxsize=64)
def _longest_interval_days(schedule: str | None) -> float:
    """The longest gap between two runs of a cron schedule, in days (fractional); a manual-only
    pipeline counts as hourly. Sampled over up to 1,000 runs or 400 days, whichever ends first."""
    if schedule is None:
        return 1 / 24
    runs = croniter(schedule, datetime(2026, 1, 1))
    previous, longest = runs.get_next(datetime), 0.0
    end = previous + timedelta(days=400)
    for _ in range(1000):
        current = runs.get_next(datetime)
        longest = max(longest, (current - previous).total_seconds() / 86_400)
        if current > end:
            break
        previous = current
    return longest
