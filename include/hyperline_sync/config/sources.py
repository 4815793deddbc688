"""The `source` section of a pipeline: Segment's S3 archive, or a Segment warehouse schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from hyperline_sync.config.base import ConnId, FrozenModel, Int, Text, matching
from hyperline_sync.config.errors import problem

__all__ = [
    "WAREHOUSE_DEFAULT_LOOKBACK_DAYS",
    "WAREHOUSE_RESERVED_TABLES",
    "S3ArchiveSourceConfig",
    "SourceConfig",
    "WarehouseSourceConfig",
]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
# Segment's warehouse schema and table names (go-snakecase output: ASCII lowercase, digits, `_`).
# Always quoted as identifiers in SQL; this rule also keeps anything that could escape the quotes out.
_SQL_NAME = re.compile(r"^[a-z0-9_]{1,127}$")
# A BigQuery dataset of another project: `project.dataset` (project ids: 6-30 of a-z, 0-9, -).
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# Segment's own tables of a source schema: not event tables (`tracks` is used when `events` is omitted).
WAREHOUSE_RESERVED_TABLES = frozenset(
    {"tracks", "identifies", "users", "pages", "screens", "groups", "accounts", "aliases"}
)
WAREHOUSE_DEFAULT_LOOKBACK_DAYS = 3  # Segment warehouses load late: 24-48 h freshness, catch-up loads


def _archive_url(url: str) -> str:
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not _BUCKET.match(parts.netloc):
            raise problem("invalid S3 bucket name {value}", value=parts.netloc)
        return url
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise problem("a file:// url needs an absolute path, e.g. file:///data/segment")
        return "file://" + parts.path.rstrip("/")
    raise problem("must start with s3:// or file://")


class S3ArchiveSourceConfig(FrozenModel):
    """Segment's S3 archive, on S3 (`s3://bucket/prefix`) or on disk (`file:///dir`).

    `url` names the folder that holds `segment-logs/`.
    """

    kind: Literal["s3_archive"] = Field("s3_archive", description="s3_archive")
    url: Annotated[Text, AfterValidator(_archive_url)] = Field(
        description="s3://bucket/prefix or file:///dir: the folder holding segment-logs/.")
    source_id: Annotated[Text, matching(r"^[A-Za-z0-9_\-]+$", "a Segment source id")] = Field(
        description="The Segment source id (the folder under segment-logs/).")
    aws_conn_id: ConnId | None = Field(None, description="AWS connection for s3:// (default aws_default).")

    @model_validator(mode="before")
    @classmethod
    def _aws_default(cls, data: Any) -> Any:
        url = data.get("url") if isinstance(data, dict) else None
        if isinstance(url, str) and url.startswith("s3://") and data.get("aws_conn_id") is None:
            return {**data, "aws_conn_id": "aws_default"}
        return data

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


def _sql_name(what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not _SQL_NAME.match(value):
            raise problem(f"must be {what}: lowercase letters, digits and _ only (at most 127), got {{value}}",
                          value=value)
        return value

    return AfterValidator(check)


EventTable = Annotated[Text, _sql_name("an event table name such as api_call (Segment snake_cases event names)")]


def _event_list(value: Any) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not value:
        raise problem("must be a non-empty list of event table names, or omitted (every event via tracks)")
    return value


def _schema_name(value: str) -> str:
    project, dot, dataset = value.rpartition(".")
    if (dot and not _PROJECT.match(project)) or not _SQL_NAME.match(dataset):
        raise problem("must be a Segment source schema: lowercase letters, digits and _ only (at most 127), "
                      "or project.dataset on BigQuery (a project id: 6-30 of a-z, 0-9, -), got {value}", value=value)
    return value


class WarehouseSourceConfig(FrozenModel):
    """A Segment warehouse schema (Postgres, Redshift, Snowflake or BigQuery) read through an Airflow connection.

    `events` names the event tables to sync (one per Segment event, e.g. `api_call`); empty means
    every track through the `tracks` table (common columns only, so records hold no properties).
    `lookback_days` is the pipeline's effective `tuning.lookback_days` (set from either key).
    """

    kind: Literal["warehouse"] = Field("warehouse", description="warehouse")
    conn_id: ConnId = Field(description="Airflow connection of the warehouse.")
    dialect: Literal["postgres", "redshift", "snowflake", "bigquery"] | None = Field(
        None, description="The warehouse's SQL; omitted: from the connection type (redshift behind a postgres one).")
    schema_: Annotated[Text, AfterValidator(_schema_name)] = Field(
        alias="schema", description="The Segment source's schema (BigQuery: dataset, or project.dataset).")
    events: Annotated[tuple[EventTable, ...], BeforeValidator(_event_list)] = Field(
        (), description="Event tables to sync; omitted: every event through `tracks`.")
    lookback_days: Int = Field(WAREHOUSE_DEFAULT_LOOKBACK_DAYS, ge=0, le=366,
                               description="Days re-read for late loads (same setting as tuning.lookback_days).")

    query_timeout_seconds: Int = Field(900, ge=1, le=86_400,
                                       description="Statement timeout of every warehouse query, in seconds.")

    @model_validator(mode="after")
    def _project_on_bigquery(self) -> WarehouseSourceConfig:
        if "." in self.schema_ and self.dialect not in (None, "bigquery"):
            raise problem("project.dataset names a BigQuery dataset; dialect is {value}", at=("schema",),
                          value=self.dialect)
        return self

    @field_validator("events")
    @classmethod
    def _event_tables(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        for i, table in enumerate(events):
            if table in WAREHOUSE_RESERVED_TABLES:
                raise problem("{value} is Segment's own table, not an event table (omit events: tracks)",
                              at=(i,), value=table)
            if table in events[:i]:
                raise problem("duplicate event table {value}", at=(i,), value=table)
        return events

    @property
    def schema(self) -> str:  # type: ignore[override]  # BaseModel.schema is pydantic v1's, deprecated
        return self.schema_

    @property
    def tables(self) -> tuple[str, ...]:
        return self.events or ("tracks",)


SourceConfig = S3ArchiveSourceConfig | WarehouseSourceConfig
