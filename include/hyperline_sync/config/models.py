"""Load and validate the pipelines YAML file into frozen dataclasses.

The file comes from the `path` argument, else env `HYPERLINE_SYNC_CONFIG`; there is no default
pipeline (a deployment that forgot the variable must not sync a demo). Every string value may use
`${VAR}` (error if unset) and `${VAR:-default}` (default if unset or empty). Unknown keys are
errors, so typos never pass silently; every error is a `ConfigError` whose message starts with the bad key's path.
Relative paths in `state` are resolved against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from croniter import croniter

from hyperline_sync.config import validation as v
from hyperline_sync.config.mapping import MappingConfig, parse_mapping
from hyperline_sync.config.validation import ConfigError

__all__ = [
    "CONFIG_ENV",
    "Config",
    "ConfigError",
    "PipelineConfig",
    "S3ArchiveSourceConfig",
    "SourceConfig",
    "StateConfig",
    "TuningConfig",
    "WarehouseSourceConfig",
    "expand_env",
    "load_config",
    "parse_config",
]

CONFIG_ENV = "HYPERLINE_SYNC_CONFIG"
DAG_ID_PREFIX = "segment_to_hyperline__"
DEFAULT_SCHEDULE = "0 * * * *"
# Only the DAG's first possible interval: catchup is off, so an old date schedules nothing extra.
DEFAULT_START_DATE = date(2024, 1, 1)
MAX_BATCH_SIZE = 5000  # Hyperline's maxItems for POST /v1/events/batch

_NAME = re.compile(r"^[a-z0-9_]+$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SOURCE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
# Segment's warehouse schema and table names (go-snakecase output: ASCII lowercase, digits, `_`).
# Always quoted as identifiers in SQL; this rule also keeps anything that could escape the quotes out.
_SQL_NAME = re.compile(r"^[a-z0-9_]{1,127}$")
# Segment's own tables of a source schema: not event tables (`tracks` is used when `events` is omitted).
WAREHOUSE_RESERVED_TABLES = frozenset(
    {"tracks", "identifies", "users", "pages", "screens", "groups", "accounts", "aliases"}
)
WAREHOUSE_DEFAULT_LOOKBACK_DAYS = 3  # Segment warehouses load late: 24-48 h freshness, catch-up loads
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_CRON_PRESETS = frozenset({"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"})


@dataclass(frozen=True)
class StateConfig:
    """Where progress lives: the ledger (SQLite file in `dir`, or Postgres) and dedup id files."""

    dir: Path
    output_dir: Path
    ledger_conn_id: str | None = None

    @property
    def ledger_path(self) -> Path:
        return self.dir / "ledger.db"


@dataclass(frozen=True)
class S3ArchiveSourceConfig:
    """Segment's S3 archive, on S3 (`s3://bucket/prefix`) or on disk (`file:///dir`).

    `url` names the folder that holds `segment-logs/`.
    """

    url: str
    source_id: str
    aws_conn_id: str | None = None
    kind: Literal["s3_archive"] = field(default="s3_archive", init=False)

    @property
    def scheme(self) -> Literal["s3", "file"]:
        return "s3" if self.url.startswith("s3://") else "file"

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """Key prefix inside the bucket, without leading or trailing `/` (may be empty)."""
        return urlsplit(self.url).path.strip("/")

    @property
    def local_root(self) -> Path:
        return Path(urlsplit(self.url).path)


@dataclass(frozen=True)
class WarehouseSourceConfig:
    """A Segment warehouse schema read through any common-sql Airflow connection (Postgres tested).

    `events` names the event tables to sync (one per Segment event, e.g. `api_call`); empty means
    every track through the `tracks` table (common columns only, so records hold no properties).
    `lookback_days` is the pipeline's effective `tuning.lookback_days` (set from either key).
    """

    conn_id: str
    schema: str
    events: tuple[str, ...] = ()
    lookback_days: int = WAREHOUSE_DEFAULT_LOOKBACK_DAYS
    kind: Literal["warehouse"] = field(default="warehouse", init=False)

    @property
    def tables(self) -> tuple[str, ...]:
        return self.events or ("tracks",)


# `_SOURCE_KINDS` dispatches on `kind`.
SourceConfig = S3ArchiveSourceConfig | WarehouseSourceConfig


@dataclass(frozen=True)
class TuningConfig:
    chunk_size: int = 10_000
    batch_size: int = MAX_BATCH_SIZE
    dedup_window_days: int = 7
    lookback_days: int = 1
    claim_ttl_minutes: int = 60
    max_requests_per_second: float | None = None
    retries: int = 3  # Airflow task retries of a partition (exponential backoff from retry_delay_seconds)
    retry_delay_seconds: int = 60
    pool: str = "hyperline"  # Airflow pool capping concurrent senders to Hyperline
    breaker_failures: int = 3  # batches failing in a row (after the hook's retries) that open the breaker
    breaker_cooldown_minutes: int = 15
    # The hook's retries of one request (429/5xx/dropped connections) before the batch counts as failed.
    send_max_attempts: int = 8
    send_backoff_seconds: float = 1.0  # first backoff delay; doubles per attempt, with jitter
    send_max_retry_seconds: float = 300.0  # time budget of one request, waits included
    # After each run, remove the dedup id files of days older than this (never of days a sync still
    # reads; see retention.py). None keeps them forever.
    state_retention_days: int | None = None
    # A partition fails (its dead letters kept) when Hyperline refuses more than this share of the
    # events it answered, and at least 100 of them: a proxy or API refusing everything is no bad data.
    max_rejected_share: float = 0.5


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    source: SourceConfig
    hyperline_conn_id: str = "hyperline_default"
    start_date: date = DEFAULT_START_DATE
    schedule: str | None = DEFAULT_SCHEDULE
    mapping: MappingConfig = field(default_factory=MappingConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)

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


@dataclass(frozen=True)
class Config:
    state: StateConfig
    pipelines: tuple[PipelineConfig, ...]
    path: Path | None = None

    def pipeline(self, name: str) -> PipelineConfig:
        for pipeline in self.pipelines:
            if pipeline.name == name:
                return pipeline
        known = ", ".join(p.name for p in self.pipelines)
        raise ConfigError("pipelines", f"no pipeline named {name!r} (known: {known})")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, expand and validate the config file (see module docstring for the lookup order)."""
    given = path if path is not None else os.environ.get(CONFIG_ENV)
    if not given:
        raise ConfigError("", f"no config file: pass --config FILE or set {CONFIG_ENV}")
    chosen = Path(given)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file: {exc.strerror or exc}", str(chosen)) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML: {exc}", str(chosen)) from exc
    try:
        return parse_config(raw, base_dir=chosen.resolve().parent, path=chosen)
    except ConfigError as exc:
        raise exc.in_file(str(chosen)) from None


def parse_config(raw: Any, base_dir: Path | None = None, path: Path | None = None) -> Config:
    """Validate an already-parsed YAML document. `base_dir` anchors relative state paths."""
    raw = expand_env(raw, "")
    raw = v.mapping(raw, "", {"state", "pipelines"}, required={"pipelines"})
    pipelines_raw = raw["pipelines"]
    if not isinstance(pipelines_raw, list) or not pipelines_raw:
        raise ConfigError("pipelines", "must be a non-empty list of pipelines")
    pipelines = tuple(_parse_pipeline(item, f"pipelines[{i}]") for i, item in enumerate(pipelines_raw))
    seen: set[str] = set()
    for i, pipeline in enumerate(pipelines):
        if pipeline.name in seen:
            raise ConfigError(f"pipelines[{i}].name", f"duplicate pipeline name {pipeline.name!r}")
        seen.add(pipeline.name)
    return Config(state=_parse_state(raw.get("state"), base_dir or Path.cwd()), pipelines=pipelines, path=path)


def expand_env(value: Any, path: str) -> Any:
    """Expand `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree (keys excepted)."""
    if isinstance(value, str):
        return _expand_string(value, path)
    if isinstance(value, list):
        return [expand_env(item, v.child(path, i)) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: expand_env(item, v.child(path, str(key))) for key, item in value.items()}
    return value


def _expand_string(value: str, path: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        current = os.environ.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            raise ConfigError(path, f"environment variable {name} is not set (use ${{{name}:-default}})")
        return current

    expanded = _ENV_REF.sub(replace, value)
    if "${" in _ENV_REF.sub("", value):
        raise ConfigError(path, f"malformed ${{...}} reference in {value!r}")
    return expanded


def _parse_state(raw: Any, base_dir: Path) -> StateConfig:
    raw = {} if raw is None else v.mapping(raw, "state", {"ledger_conn_id", "dir", "output_dir"})
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    state_dir = _path(raw.get("dir"), "state.dir", base_dir) or Path(airflow_home) / "hyperline_sync"
    output_dir = _path(raw.get("output_dir"), "state.output_dir", base_dir) or state_dir / "reports"
    return StateConfig(
        dir=state_dir,
        output_dir=output_dir,
        ledger_conn_id=v.optional_string(raw.get("ledger_conn_id"), "state.ledger_conn_id", _CONN_ID),
    )


def _path(raw: Any, path: str, base_dir: Path) -> Path | None:
    if raw is None:
        return None
    value = Path(v.string(raw, path)).expanduser()
    return value if value.is_absolute() else base_dir / value


def _parse_pipeline(raw: Any, path: str) -> PipelineConfig:
    raw = v.mapping(
        raw,
        path,
        {"name", "source", "hyperline_conn_id", "start_date", "schedule", "mapping", "tuning"},
        required={"name", "source"},
    )
    source = _parse_source(raw["source"], v.child(path, "source"))
    tuning = _parse_tuning(raw.get("tuning"), v.child(path, "tuning"))
    if isinstance(source, WarehouseSourceConfig):
        source, tuning = _warehouse_lookback(source, tuning, raw, path)
    pipeline = PipelineConfig(
        name=v.string(raw["name"], v.child(path, "name"), _NAME, "lowercase letters, digits and _"),
        source=source,
        hyperline_conn_id=v.string(
            raw.get("hyperline_conn_id", "hyperline_default"), v.child(path, "hyperline_conn_id"), _CONN_ID
        ),
        start_date=_parse_date(raw.get("start_date"), v.child(path, "start_date")) or DEFAULT_START_DATE,
        schedule=_parse_schedule(raw.get("schedule", DEFAULT_SCHEDULE), v.child(path, "schedule")),
        mapping=parse_mapping(raw.get("mapping"), v.child(path, "mapping")),
        tuning=tuning,
    )
    _check_retention(pipeline, v.child(v.child(path, "tuning"), "state_retention_days"))
    return pipeline


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


def _check_retention(pipeline: PipelineConfig, path: str) -> None:
    """Checked once the lookback is final (a warehouse's defaults to 3 days)."""
    retention, needed = pipeline.tuning.state_retention_days, pipeline.ids_reach_days
    if retention is not None and retention < needed:
        raise ConfigError(path, f"must be at least {needed}: the scheduled runs read the ids of that many days "
                          f"back (two intervals of the schedule, lookback_days and dedup_window_days)")


def _warehouse_lookback(
    source: WarehouseSourceConfig, tuning: TuningConfig, raw: dict[str, Any], path: str
) -> tuple[WarehouseSourceConfig, TuningConfig]:
    """`source.lookback_days` and `tuning.lookback_days` are one setting (the planner reads the
    tuning one); either may be given, both only if equal; neither means 3 days for a warehouse."""
    in_source = raw["source"].get("lookback_days")
    in_tuning = raw["tuning"].get("lookback_days") if isinstance(raw.get("tuning"), dict) else None
    if in_source is not None and in_tuning is not None and source.lookback_days != tuning.lookback_days:
        raise ConfigError(
            v.child(v.child(path, "source"), "lookback_days"),
            f"{source.lookback_days} conflicts with tuning.lookback_days ({tuning.lookback_days}); set one of them",
        )
    days = source.lookback_days if in_source is not None or in_tuning is None else tuning.lookback_days
    return dataclasses.replace(source, lookback_days=days), dataclasses.replace(tuning, lookback_days=days)


def _parse_source(raw: Any, path: str) -> SourceConfig:
    if not isinstance(raw, dict):
        raise ConfigError(path, f"must be a mapping, got {v.type_name(raw)}")
    kind = raw.get("kind")
    parser = _SOURCE_KINDS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        known = ", ".join(sorted(_SOURCE_KINDS))
        raise ConfigError(v.child(path, "kind"), f"must be one of: {known} (got {kind!r})")
    return parser(raw, path)


def _parse_s3_archive(raw: dict[str, Any], path: str) -> S3ArchiveSourceConfig:
    v.mapping(raw, path, {"kind", "url", "source_id", "aws_conn_id"}, required={"url", "source_id"})
    url_path = v.child(path, "url")
    url = v.string(raw["url"], url_path).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not _BUCKET.match(parts.netloc):
            raise ConfigError(url_path, f"invalid S3 bucket name {parts.netloc!r}")
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(url_path, "a file:// url needs an absolute path, e.g. file:///data/segment")
        url = "file://" + parts.path.rstrip("/")
    else:
        raise ConfigError(url_path, "must start with s3:// or file://")
    aws_conn_id = v.optional_string(raw.get("aws_conn_id"), v.child(path, "aws_conn_id"), _CONN_ID)
    if aws_conn_id is None and parts.scheme == "s3":
        aws_conn_id = "aws_default"
    return S3ArchiveSourceConfig(
        url=url,
        source_id=v.string(raw["source_id"], v.child(path, "source_id"), _SOURCE_ID, "a Segment source id"),
        aws_conn_id=aws_conn_id,
    )


def _parse_warehouse(raw: dict[str, Any], path: str) -> WarehouseSourceConfig:
    v.mapping(raw, path, {"kind", "conn_id", "schema", "events", "lookback_days"}, required={"conn_id", "schema"})
    return WarehouseSourceConfig(
        conn_id=v.string(raw["conn_id"], v.child(path, "conn_id"), _CONN_ID),
        schema=_sql_name(raw["schema"], v.child(path, "schema"), "a Segment source schema"),
        events=_warehouse_events(raw.get("events"), v.child(path, "events")),
        lookback_days=v.integer(raw.get("lookback_days", WAREHOUSE_DEFAULT_LOOKBACK_DAYS),
                                v.child(path, "lookback_days"), 0, 366),
    )


def _sql_name(raw: Any, path: str, what: str) -> str:
    value = v.string(raw, path)
    if not _SQL_NAME.match(value):
        raise ConfigError(path, f"must be {what}: lowercase letters, digits and _ only (at most 127), got {value!r}")
    return value


def _warehouse_events(raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ConfigError(path, "must be a non-empty list of event table names, or omitted (every event via tracks)")
    tables: list[str] = []
    for i, item in enumerate(raw):
        item_path = v.child(path, i)
        table = _sql_name(item, item_path, "an event table name such as api_call (Segment snake_cases event names)")
        if table in WAREHOUSE_RESERVED_TABLES:
            raise ConfigError(item_path, f"{table!r} is Segment's own table, not an event table (omit events: tracks)")
        if table in tables:
            raise ConfigError(item_path, f"duplicate event table {table!r}")
        tables.append(table)
    return tuple(tables)


_SOURCE_KINDS: dict[str, Callable[[dict[str, Any], str], SourceConfig]] = {
    "s3_archive": _parse_s3_archive,
    "warehouse": _parse_warehouse,
}


def _parse_date(raw: Any, path: str) -> date | None:
    if raw is None:
        return None
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise ConfigError(path, f"must be a date YYYY-MM-DD, got {raw!r}")


def _parse_schedule(raw: Any, path: str) -> str | None:
    if raw is None:
        return None
    value = v.string(raw, path)
    if value in _CRON_PRESETS or (len(value.split()) == 5 and croniter.is_valid(value)):
        return value
    raise ConfigError(path, f"must be a 5-field cron expression or an @preset such as @hourly, got {value!r}")


def _parse_tuning(raw: Any, path: str) -> TuningConfig:
    if raw is None:
        return TuningConfig()
    defaults = TuningConfig()
    raw = v.mapping(
        raw,
        path,
        {
            "chunk_size",
            "batch_size",
            "dedup_window_days",
            "lookback_days",
            "claim_ttl_minutes",
            "max_requests_per_second",
            "retries",
            "retry_delay_seconds",
            "pool",
            "breaker_failures",
            "breaker_cooldown_minutes",
            "send_max_attempts",
            "send_backoff_seconds",
            "send_max_retry_seconds",
            "state_retention_days",
            "max_rejected_share",
        },
    )

    def get(key: str, minimum: int, maximum: int | None = None) -> int:
        return v.integer(raw.get(key, getattr(defaults, key)), v.child(path, key), minimum, maximum)

    rate = raw.get("max_requests_per_second")
    rate_path = v.child(path, "max_requests_per_second")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0):
        raise ConfigError(rate_path, f"must be a positive number or null, got {rate!r}")

    def seconds(key: str) -> float:
        value = raw.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(v.child(path, key), f"must be a number of seconds >= 0, got {value!r}")
        return float(value)

    share = raw.get("max_rejected_share", defaults.max_rejected_share)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ConfigError(v.child(path, "max_rejected_share"), f"must be a number > 0 and <= 1, got {share!r}")

    retention = raw.get("state_retention_days")
    if retention is not None:
        retention = v.integer(retention, v.child(path, "state_retention_days"), 1)
    return TuningConfig(
        chunk_size=get("chunk_size", 1),
        batch_size=get("batch_size", 1, MAX_BATCH_SIZE),
        dedup_window_days=get("dedup_window_days", 0),
        lookback_days=get("lookback_days", 0),
        claim_ttl_minutes=get("claim_ttl_minutes", 1),
        max_requests_per_second=None if rate is None else float(rate),
        retries=get("retries", 0, 20),
        retry_delay_seconds=get("retry_delay_seconds", 0),
        pool=_pool_name(raw.get("pool", defaults.pool), v.child(path, "pool")),
        breaker_failures=get("breaker_failures", 1),
        breaker_cooldown_minutes=get("breaker_cooldown_minutes", 0),
        send_max_attempts=get("send_max_attempts", 1, 100),
        send_backoff_seconds=seconds("send_backoff_seconds"),
        send_max_retry_seconds=seconds("send_max_retry_seconds"),
        state_retention_days=retention,
        max_rejected_share=float(share),
    )


def _pool_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,256}", value):
        raise ConfigError(path, f"must be an Airflow pool name (letters, digits, _ . -), got {value!r}")
    return value
