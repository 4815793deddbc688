"""A minimal BigQuery REST server on 127.0.0.1 for google-cloud-bigquery's `query_and_wait`, on DuckDB,
and a Segment-shaped dataset on it with the interface of `test_warehouse_postgres.SegmentWarehouse`.

The client runs each query with one `jobs.query` call (POST /bigquery/v2/projects/<p>/queries). The
server answers the complete result (`jobComplete`) but at most `page_rows` rows at a time, as BigQuery
pages large results: for the rest the client gets the job (GET .../jobs/<id>) and reads on with
`getQueryResults` (GET .../queries/<id>?pageToken=...). Any other request is answered 501 and every
request is recorded in `requests`, so a test sees what the client asked for.
POST /token stands for Google's OAuth token endpoint (a service account key whose `token_uri` is
here): it answers an access token; `authorizations` records the Authorization header of each query.

A query is parsed as BigQuery SQL by sqlglot, its `@name` parameters bound from `queryParameters`,
`<dataset>.INFORMATION_SCHEMA.TABLES|COLUMNS` replaced by DuckDB's catalog of that schema (types named
as BigQuery names them, without the `_PARTITIONTIME` pseudo-column), written as DuckDB SQL and run on
the project's DuckDB database (one per project id: one per test). Results go back as BigQuery sends
them: every value a string, TIMESTAMP as microseconds (`formatOptions.useInt64Timestamp`). A missing
dataset or table is a 404 `notFound`, any other DuckDB error a 400 `invalidQuery`.

Not emulated: jobs.insert, running jobs (every job is done at once), job timeouts, permissions,
partition pruning's cost.
The dataset: Segment's BigQuery columns (STRING, TIMESTAMP, INT64, FLOAT64, BOOL), `loaded_at` = the
row's `uuid_ts`, and a real `_PARTITIONTIME` column holding the ingestion day (the day of `loaded_at`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from tests.hyperline_sync.sources.segment_tables import SegmentTables
from tests.hyperline_sync.sources.test_warehouse_postgres import CONN_ID, SCHEMA, Row

_QUERIES = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries$")
_JOB = re.compile(r"^/bigquery/v2/projects/([^/]+)/(jobs|queries)/([^/]+)$")
TOKEN = "fake-access-token"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DUCK_TO_BQ = {"VARCHAR": "STRING", "BIGINT": "INT64", "INTEGER": "INT64", "HUGEINT": "INT64",
               "DOUBLE": "FLOAT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
               "TIMESTAMP": "DATETIME", "DATE": "DATE"}
_CATALOG = {
    "TABLES": "select table_name from information_schema.tables where table_schema = {dataset}",
    "COLUMNS": "select table_name, column_name, ordinal_position, case data_type "
               + "".join(f"when '{d}' then '{b}' " for d, b in _DUCK_TO_BQ.items())
               + "else data_type end as data_type from information_schema.columns "
                 "where table_schema = {dataset} and column_name <> '_PARTITIONTIME'",
}
_TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "numeric": "DOUBLE", "boolean": "BOOLEAN",
          "timestamptz": "TIMESTAMPTZ"}
COMMON = ("id VARCHAR, received_at TIMESTAMPTZ NOT NULL, uuid_ts TIMESTAMPTZ, loaded_at TIMESTAMPTZ, "
          "sent_at TIMESTAMPTZ, original_timestamp TIMESTAMPTZ, \"timestamp\" TIMESTAMPTZ, user_id VARCHAR, "
          "anonymous_id VARCHAR, event VARCHAR, event_text VARCHAR, context_library_name VARCHAR, "
          "context_ip VARCHAR, context_group_id VARCHAR, _PARTITIONTIME TIMESTAMPTZ")


class QueryError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class FakeBigQuery:
    """The server: one DuckDB database per project id, requests recorded as (method, path)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.page_rows = 3  # rows per answer: results of more rows are paged (pageToken)
        self.jobs: dict[str, dict[str, Any]] = {}  # job id -> its complete answer
        self._databases: dict[str, duckdb.DuckDBPyConnection] = {}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def database(self, project: str) -> duckdb.DuckDBPyConnection:
        with self.lock:
            if project not in self._databases:
                db = duckdb.connect(":memory:")
                db.execute("set TimeZone = 'UTC'")
                self._databases[project] = db
            return self._databases[project]

    def query(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        tree = sqlglot.parse_one(body["query"], read="bigquery")
        for table in list(tree.find_all(exp.Table)):
            view = table.name.upper().removeprefix("INFORMATION_SCHEMA.")
            if table.name.upper().startswith("INFORMATION_SCHEMA.") and view in _CATALOG:
                self._dataset_exists(project, table.db)
                sql = _CATALOG[view].format(dataset=exp.Literal.string(table.db).sql("duckdb"))
                table.replace(exp.paren(sqlglot.parse_one(sql, read="duckdb")).as_(view))
        params = {p["name"]: _param(p) for p in body.get("queryParameters", [])}
        db = self.database(project)
        with self.lock:
            cursor = db.cursor()
            try:
                cursor.execute(tree.sql("duckdb"), params or None)
                rows, description = cursor.fetchall(), cursor.description or []
            except duckdb.CatalogException as exc:
                raise QueryError(404, "notFound", f"Not found: {exc}") from exc
            except duckdb.Error as exc:
                raise QueryError(400, "invalidQuery", str(exc)) from exc
            finally:
                cursor.close()
        types = [_DUCK_TO_BQ.get(str(d[1]).upper(), "NUMERIC" if str(d[1]).upper().startswith("DECIMAL")
                                 else "STRING") for d in description]
        job = f"job_{uuid.uuid4().hex}"
        self.jobs[job] = {
            "kind": "bigquery#queryResponse",
            "jobReference": {"projectId": project, "jobId": job, "location": "US"},
            "schema": {"fields": [{"name": d[0], "type": t, "mode": "NULLABLE"}
                                  for d, t in zip(description, types, strict=True)]},
            "rows": [{"f": [{"v": _wire(v)} for v in row]} for row in rows],
            "totalRows": str(len(rows)), "jobComplete": True, "cacheHit": False,
        }
        return self.page(job, 0)

    def page(self, job: str, start: int) -> dict[str, Any]:
        """The job's answer with `page_rows` rows from `start`, and the token of the next page if any."""
        answer = dict(self.jobs[job])
        answer["rows"] = answer["rows"][start:start + self.page_rows]
        if start + self.page_rows < int(answer["totalRows"]):
            answer["pageToken"] = str(start + self.page_rows)
        return answer

    def job_resource(self, project: str, job: str) -> dict[str, Any]:
        """jobs.get of a finished query job (the client asks for it before reading further pages)."""
        return {"kind": "bigquery#job", "id": f"{project}:US.{job}", "jobReference": self.jobs[job]["jobReference"],
                "configuration": {"jobType": "QUERY", "query": {"query": "", "useLegacySql": False}},
                "status": {"state": "DONE"}, "statistics": {"query": {"statementType": "SELECT"}}}

    def _dataset_exists(self, project: str, dataset: str) -> None:
        found = self.database(project).execute(
            "select 1 from information_schema.schemata where schema_name = ?", [dataset]).fetchall()
        if not found:
            raise QueryError(404, "notFound", f"Not found: Dataset {project}:{dataset} was not found in location US")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _param(param: dict[str, Any]) -> Any:
    value = param.get("parameterValue", {}).get("value")
    kind = param["parameterType"]["type"]
    if value is None:
        return None
    return {"INT64": int, "FLOAT64": float, "BOOL": lambda v: v.lower() == "true"}.get(kind, str)(value)


def _wire(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return str((aware - _EPOCH) // dt.timedelta(microseconds=1))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _handler(server: FakeBigQuery) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            server.requests.append(("POST", path))
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path == "/token":  # a form: grant_type=...jwt-bearer&assertion=<signed JWT>
                server.bodies.append({"token_request": raw.decode()})
                return self._answer(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
            body = json.loads(raw or b"{}")
            server.bodies.append(body)
            server.authorizations.append(self.headers.get("Authorization"))
            match = _QUERIES.match(path)
            if match is None:
                return self._answer(501, {"error": {"code": 501, "message": f"not emulated: POST {path}"}})
            try:
                return self._answer(200, server.query(match.group(1), body))
            except QueryError as exc:
                return self._answer(exc.status, {"error": {"code": exc.status, "message": str(exc), "errors": [
                    {"reason": exc.reason, "message": str(exc), "domain": "global"}]}})

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            server.requests.append(("GET", path))
            match = _JOB.match(path)
            if match and match.group(3) in server.jobs:
                project, kind, job = match.groups()
                if kind == "jobs":
                    return self._answer(200, server.job_resource(project, job))
                token = parse_qs(query).get("pageToken", ["0"])[0]
                return self._answer(200, server.page(job, int(token)))
            self._answer(501, {"error": {"code": 501, "message": f"not emulated: GET {self.path}"}})

    return Handler


@functools.cache
def _server() -> FakeBigQuery:
    return FakeBigQuery()  # one per test process; its thread is a daemon


@pytest.fixture(scope="session")
def fake_bigquery() -> FakeBigQuery:
    return _server()


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # Segment's FLOAT64 (NaN included)
    return value


class BigQueryWarehouse(SegmentTables):
    """A Segment-like dataset in one project of the fake server."""

    TYPES, COMMON = _TYPES, COMMON

    def __init__(self, server: FakeBigQuery, schema: str = SCHEMA) -> None:
        self.server = server
        self.project = f"seg-{uuid.uuid4().hex[:10]}"
        self.schema = schema
        self.rows: list[Row] = []
        self.db = server.database(self.project)

    @property
    def airflow_uri(self) -> str:
        """`AIRFLOW_CONN_<ID>` as JSON: a `google_cloud_platform` connection to the fake server."""
        return json.dumps({"conn_type": "google_cloud_platform",
                           "extra": {"project": self.project, "api_endpoint": self.server.url, "location": "US"}})

    def _insert(self, table: str, values: list[dict[str, Any]]) -> None:
        for v in values:
            loaded = v["uuid_ts"]
            ingested = (loaded or v["received_at"]).astimezone(dt.UTC)
            v = {**v, "loaded_at": loaded, "_PARTITIONTIME": ingested.replace(hour=0, minute=0, second=0,
                                                                              microsecond=0)}
            names = sorted(v)
            columns = ", ".join('"' + n + '"' for n in names)
            marks = ", ".join("?" for _ in names)
            with self.server.lock:
                self.db.execute(f"insert into {self.schema}.{table} ({columns}) values ({marks})",
                                [_value(v[n]) for n in names])

    def sql(self, statement: str) -> list[tuple]:
        with self.server.lock:
            return [tuple(r) for r in self.db.execute(statement).fetchall()]


@pytest.fixture
def bigquery_warehouse(fake_bigquery: FakeBigQuery, monkeypatch: pytest.MonkeyPatch) -> Iterator[BigQueryWarehouse]:
    wh = BigQueryWarehouse(fake_bigquery).create()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", wh.airflow_uri)
    yield wh
