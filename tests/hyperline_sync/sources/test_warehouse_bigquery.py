"""The Postgres warehouse scenarios (tests/hyperline_sync/sources/test_warehouse_postgres.py) on
BigQuery: google-cloud-bigquery's client, built from a `google_cloud_platform` Airflow connection whose
extra points it at a fake BigQuery REST server on 127.0.0.1 (tests/hyperline_sync/sources/fake_bigquery.py:
the SQL the client sends, transpiled by sqlglot, run on DuckDB). The scenario functions are the Postgres
module's, run with this module's `warehouse` fixture; the tests below them are BigQuery's own."""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperline_sync.config import parse_config
from hyperline_sync.sources.warehouse.source import WarehouseReadError, WarehouseSource
from tests.hyperline_sync.sources import test_warehouse_postgres as scenarios
from tests.hyperline_sync.sources.fake_bigquery import (
    TOKEN,
    BigQueryWarehouse,
    FakeBigQuery,
    QueryError,
    bigquery_warehouse,
    fake_bigquery,
)
from tests.hyperline_sync.sources.test_warehouse_postgres import CONN_ID, D1, SCHEMA

harness = scenarios.harness
SECRET = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC-never-shown"
__all__ = ["bigquery_warehouse", "fake_bigquery", "harness"]


@pytest.fixture
def warehouse(bigquery_warehouse: BigQueryWarehouse) -> Iterator[BigQueryWarehouse]:
    yield bigquery_warehouse


globals().update({scenario.__name__: scenario for scenario in scenarios.ENGINE_SCENARIOS})  # collected here too


# -- BigQuery's own ----------------------------------------------------------------------------------
def test_each_statement_is_one_jobs_query_with_named_parameters_and_the_job_timeout(
        harness: scenarios.Harness, fake_bigquery: FakeBigQuery, tmp_path: Path) -> None:
    harness.warehouse.insert(scenarios.bulk(D1, 12, [3], "q"))  # 8 api_call rows: pages of 7 (chunk_size)
    _, pipeline = scenarios.pipeline_config(tmp_path, events=["api_call"])
    mark, bodies_mark = len(fake_bigquery.requests), len(fake_bigquery.bodies)
    [outcome] = harness.sync(pipeline, D1)
    assert outcome.counts.sent == outcome.counts.read == 8

    # One jobs.query per statement; a result longer than the server's answers (3 rows) is read on
    # through jobs.get and getQueryResults pages.
    project = harness.warehouse.project
    calls = {(method, re.sub(r"/job_\w+$", "/<job>", path)) for method, path in fake_bigquery.requests[mark:]}
    assert calls == {("POST", f"/bigquery/v2/projects/{project}/queries"),
                     ("GET", f"/bigquery/v2/projects/{project}/jobs/<job>"),
                     ("GET", f"/bigquery/v2/projects/{project}/queries/<job>")}
    bodies = [b for b in fake_bigquery.bodies[bodies_mark:] if "query" in b]
    assert {b["useLegacySql"] for b in bodies} == {False}
    assert {b["jobTimeoutMs"] for b in bodies} == {str(pipeline.source.query_timeout_seconds * 1000)}
    assert {b["location"] for b in bodies} == {"US"}
    page = next(b for b in bodies if "limit" in b["query"])
    assert "_PARTITIONTIME" in page["query"] and "%(" not in page["query"]
    assert page["parameterMode"] == "NAMED"
    names = [p["name"] for p in page["queryParameters"]]
    assert names == [f"p{i}" for i in range(len(names))] and all(f"@{n}" in page["query"] for n in names)
    assert page["queryParameters"][0] == {"name": "p0", "parameterType": {"type": "STRING"},
                                          "parameterValue": {"value": "2026-03-01 00:00:00.000000+00:00"}}


@pytest.mark.parametrize("how", ["keyfile_dict_text", "keyfile_dict_object", "key_path"])
def test_a_service_account_key_signs_in_and_never_appears_in_errors(
        harness: scenarios.Harness, fake_bigquery: FakeBigQuery, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key = {"type": "service_account", "project_id": harness.warehouse.project, "private_key_id": "k1",
           "private_key": pem, "client_email": "hyperline@example.iam.gserviceaccount.com",
           "client_id": "1", "token_uri": f"{fake_bigquery.url}/token"}
    extra: dict[str, Any] = {"api_endpoint": fake_bigquery.url}
    if how == "key_path":
        (tmp_path / "key.json").write_text(json.dumps(key))
        extra["key_path"] = str(tmp_path / "key.json")
    else:
        extra["keyfile_dict"] = json.dumps(key) if how == "keyfile_dict_text" else key
    conn = {"conn_type": "google_cloud_platform", "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    harness.warehouse.insert(scenarios.bulk(D1, 3, [3], "k"))
    _, pipeline = scenarios.pipeline_config(tmp_path, events=["api_call"])
    mark = len(fake_bigquery.authorizations)
    assert [u.key for u in WarehouseSource(pipeline).list_units(D1)] == [f"{SCHEMA}.api_call@2026-03-01T04"]
    # The project is the key's; the queries carry the token the key was exchanged for.
    assert set(fake_bigquery.authorizations[mark:]) == {f"Bearer {TOKEN}"}

    # A failing query's error holds neither the key nor a line of it, however the driver words it.
    harness.warehouse.sql(f"alter table {SCHEMA}.api_call drop column _PARTITIONTIME")
    body_line = pem.splitlines()[3]
    monkeypatch.setattr(FakeBigQuery, "query", _echo_key(pem))
    with pytest.raises(WarehouseReadError) as info:
        WarehouseSource(pipeline).list_units(D1)
    text = str(info.value)
    assert "Not found" in text and body_line not in text and pem not in text and "***" in text


def _echo_key(pem: str) -> Any:
    def query(self: FakeBigQuery, project: str, body: dict[str, Any]) -> dict[str, Any]:
        raise QueryError(404, "notFound", f"Not found: {pem} {json.dumps(pem)} {pem.splitlines()[3]}")
    return query


@pytest.mark.parametrize("keyfile", ['{"private_key": "' + SECRET + '"', {"private_key": SECRET, "type": "x"},
                                     '["' + SECRET + '"]'])
def test_an_unusable_key_fails_clearly_without_quoting_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           keyfile: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
        {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": keyfile, "project": "analytics-prod"}}))
    _, pipeline = scenarios.pipeline_config(tmp_path, events=["api_call"])
    with pytest.raises(WarehouseReadError, match=r"keyfile_dict") as info:
        WarehouseSource(pipeline).list_units(D1)
    # Nor in the chained errors a log of the traceback would show.
    assert SECRET not in "".join(traceback.format_exception(info.value))


def test_a_missing_dataset_and_a_table_without_partitions_fail_naming_them(
        harness: scenarios.Harness, tmp_path: Path) -> None:
    raw, pipeline = scenarios.pipeline_config(tmp_path, events=["api_call"])
    raw["pipelines"][0]["source"]["schema"] = "no_such_dataset"
    with pytest.raises(WarehouseReadError, match=r"Not found: Dataset .*:no_such_dataset") as info:
        WarehouseSource(parse_config(raw).pipelines[0]).list_units(D1)
    assert info.value.key == "no_such_dataset"

    harness.warehouse.sql(f"alter table {SCHEMA}.api_call drop column _PARTITIONTIME")
    with pytest.raises(WarehouseReadError, match=r"query failed: BadRequest: .*_PARTITIONTIME") as info:
        WarehouseSource(pipeline).list_units(D1)
    assert info.value.key == f"{SCHEMA}.api_call"
