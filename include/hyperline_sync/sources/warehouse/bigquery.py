"""BigQuery through google-cloud-bigquery, shaped like the DB-API connection the warehouse source uses.

apache-airflow-providers-google (BigQueryHook) cannot be installed with this project's pinned tenacity
and protobuf, so the source reads the `google_cloud_platform` Airflow connection's extra as that
provider does and opens a `google.cloud.bigquery.Client` itself:

- `project` (or `extra__google_cloud_platform__project`): the project that runs the query jobs
  (default: the service account's project);
- `keyfile_dict` (the service account key, JSON text or an object) or `key_path` (a key file);
  neither: Application Default Credentials (workload identity, `GOOGLE_APPLICATION_CREDENTIALS`);
- `location`: where the jobs run (the dataset's location);
- `api_endpoint`: another endpoint (an emulator); without a key it connects anonymously.

Each `execute` is one query job (`jobs.query`) with named parameters (`@p0`: the dialect renders
`%(p0)s`, as BigQuery's DB-API takes them) and the source's statement timeout as the job timeout.
The service account's private key is one of the connection's secrets: it never reaches an error text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["BigQueryConnection", "BigQuerySettings", "bigquery_settings"]

_MARKER = re.compile(r"%\((\w+)\)s")
_PREFIX = "extra__google_cloud_platform__"
_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
# Python type -> BigQuery parameter type (bool before int: a bool is an int).
_TYPES: tuple[tuple[type, str], ...] = ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"),
                                        (Decimal, "NUMERIC"), (dt.datetime, "TIMESTAMP"), (str, "STRING"))


def _extra(extra: dict[str, Any], name: str) -> Any:
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(_PREFIX + name)
    return None if value in (None, "") else value


@dataclass(frozen=True)
class BigQuerySettings:
    """What the connection's extra says, read without connecting."""

    project: str | None
    location: str | None
    api_endpoint: str | None
    key: dict[str, Any] | None  # the service account key
    key_source: str  # where the key came from, for error texts: "keyfile_dict", the key_path, "ADC"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The private key as it may appear in a text: as is, JSON-escaped, and its base64 lines."""
        private = str((self.key or {}).get("private_key") or "")
        if not private:
            return ()
        lines = [line for line in private.splitlines() if len(line) >= 16 and "PRIVATE KEY" not in line]
        return (private, json.dumps(private)[1:-1], *lines)

    def connect(self, timeout_seconds: int) -> BigQueryConnection:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        credentials = self._credentials()
        project = self.project or (self.key or {}).get("project_id")
        options = ClientOptions(api_endpoint=self.api_endpoint) if self.api_endpoint else None
        client = bigquery.Client(project=project, credentials=credentials, location=self.location,
                                 client_options=options)
        return BigQueryConnection(client, timeout_seconds)

    def _credentials(self) -> Any:
        if self.key is not None:
            from google.oauth2 import service_account

            try:
                return service_account.Credentials.from_service_account_info(self.key, scopes=_SCOPES)
            except Exception as exc:  # its text may quote the key: the type alone
                raise ValueError(f"the service account key in {self.key_source} is not usable "
                                 f"({type(exc).__name__})") from None
        if self.api_endpoint:
            from google.auth.credentials import AnonymousCredentials

            if not self.project:
                raise ValueError("an api_endpoint without a key needs the extra's project")
            return AnonymousCredentials()
        import google.auth

        credentials, _ = google.auth.default(scopes=_SCOPES)
        return credentials


def bigquery_settings(extra: dict[str, Any]) -> BigQuerySettings:
    """The settings of a `google_cloud_platform` connection's extra; ValueError (never quoting the key)
    if the key cannot be read."""
    key: Any = _extra(extra, "keyfile_dict")
    source = "keyfile_dict"
    if key is None and _extra(extra, "key_path") is not None:
        source = f"key_path {_extra(extra, 'key_path')}"
        try:  # read here rather than by from_service_account_file: its private key is a secret to redact
            key = Path(str(_extra(extra, "key_path"))).read_text()
        except OSError as exc:
            raise ValueError(f"{source} cannot be read ({type(exc).__name__})") from None
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except ValueError:
            raise ValueError(f"{source} is not JSON") from None  # the decoder's error holds the text
    if key is not None and not isinstance(key, dict):
        raise ValueError(f"{source} is not a JSON object")
    return BigQuerySettings(project=_extra(extra, "project"), location=_extra(extra, "location"),
                            api_endpoint=_extra(extra, "api_endpoint"), key=key,
                            key_source=source if key is not None else "ADC")


def _parameter(name: str, value: Any) -> Any:
    from google.cloud.bigquery import ScalarQueryParameter

    kind = next((t for python, t in _TYPES if isinstance(value, python)), None)
    if kind is None and value is not None:
        raise TypeError(f"parameter {name}: no BigQuery type for {type(value).__name__}")
    return ScalarQueryParameter(name, kind or "STRING", value)


class BigQueryConnection:
    """The part of a DB-API connection the source uses; every query is a job of its own (no transaction)."""

    autocommit = True

    def __init__(self, client: Any, timeout_seconds: int) -> None:
        self.client = client
        self.timeout_seconds = int(timeout_seconds)

    def cursor(self) -> BigQueryCursor:
        return BigQueryCursor(self)

    def close(self) -> None:
        self.client.close()


class BigQueryCursor:
    """Runs one statement as a query job and holds its rows as tuples in select order."""

    def __init__(self, connection: BigQueryConnection) -> None:
        self.connection = connection
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        from google.cloud.bigquery import QueryJobConfig

        params = params or {}
        used = set(_MARKER.findall(sql))
        if used != set(params):
            raise ValueError(f"statement parameters {sorted(used)} differ from the values {sorted(params)}")
        timeout = self.connection.timeout_seconds
        config = QueryJobConfig(query_parameters=[_parameter(n, v) for n, v in params.items()],
                                use_legacy_sql=False, job_timeout_ms=timeout * 1000)
        result = self.connection.client.query_and_wait(_MARKER.sub(r"@\1", sql), job_config=config,
                                                       wait_timeout=timeout)
        self._rows = [tuple(row.values()) for row in result]
        self.description = [(f.name, f.field_type, None, None, None, None, f.is_nullable)
                            for f in result.schema or ()]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def close(self) -> None:
        self._rows = []
