"""The `state` section: folders or object storage URLs, the connection for them, and the ledger a
shared (object storage) state needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperline_sync.config import ConfigError, parse_config

PIPELINE = {"name": "acme", "source": {"kind": "s3_archive", "url": "s3://acme-segment/logs", "source_id": "src"},
            "hyperline_conn_id": "hyperline_default"}


def config(state: dict):
    return parse_config({"state": state, "pipelines": [PIPELINE]}, base_dir=Path("/etc/hs"))


def test_an_s3_state_dir_with_its_connection_and_a_postgres_ledger() -> None:
    state = config({"dir": "s3://acme-billing-state/hyperline-sync/", "conn_id": "aws_default",
                    "ledger_conn_id": "hyperline_ledger"}).state
    assert state.dir == "s3://acme-billing-state/hyperline-sync"
    assert state.output_dir == "s3://acme-billing-state/hyperline-sync/reports"
    assert state.conn_id == "aws_default"


def test_other_schemes_are_kept_for_object_storage_path_and_file_urls_are_paths() -> None:
    assert config({"dir": "gs://bucket/p", "ledger_conn_id": "pg"}).state.dir == "gs://bucket/p"
    local = config({"dir": "file:///srv/state"}).state
    assert local.dir == Path("/srv/state") and local.output_dir == Path("/srv/state/reports")
    assert config({"dir": "state"}).state.dir == Path("/etc/hs/state")  # unchanged: relative to the config


def test_a_remote_state_dir_with_a_sqlite_ledger_says_why_it_cannot_work() -> None:
    with pytest.raises(ConfigError) as error:
        config({"dir": "s3://acme-billing-state/hyperline-sync"})
    assert "state.dir" in str(error.value) and "ledger_conn_id" in str(error.value)
    assert "a file per worker is no ledger" in str(error.value)


@pytest.mark.parametrize(("url", "says"), [
    ("s3://", "names no bucket"),
    ("s3://AKIAXXX:s3cr3t@bucket/p", "must not hold credentials"),
    ("file://relative/x", "absolute path"),
])
def test_bad_urls_are_config_errors(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        config({"dir": url, "ledger_conn_id": "pg"})
    assert says in str(error.value) and "s3cr3t" not in str(error.value)
