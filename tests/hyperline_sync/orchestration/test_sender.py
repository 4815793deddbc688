"""The hook fitted to the sync's Sender port: provider errors the sync acts on become the domain's."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from hyperline_devtools.emulator import Emulator, Faults
from hyperline_provider.exceptions import HyperlineAuthError
from hyperline_provider.exceptions import HyperlineUnavailableError as ProviderUnavailableError
from hyperline_sync.config import PipelineConfig, S3ArchiveSourceConfig, TuningConfig
from hyperline_sync.orchestration.sender import HookSender, make_sender
from hyperline_sync.pipeline.breaker import CircuitBreaker
from hyperline_sync.pipeline.ports import HyperlineUnavailableError
from hyperline_sync.pipeline.sync import SyncJob, sync_partition
from hyperline_sync.sources.base import ArchiveSource
from hyperline_sync.state.ledger import Ledger
from tests.hyperline_sync.conftest import HYPERLINE_CONN_ID, HYPERLINE_KEY

KEY, CONN_ID = HYPERLINE_KEY, HYPERLINE_CONN_ID


@pytest.fixture
def emulator(hyperline_emulator: Emulator) -> Emulator:
    return hyperline_emulator


def pipeline(source: S3ArchiveSourceConfig | None = None) -> PipelineConfig:
    tuning = TuningConfig(send_max_attempts=2, send_backoff_seconds=0.001, breaker_failures=1)
    source = source or S3ArchiveSourceConfig(url="file:///nonexistent", source_id="unused")
    return PipelineConfig(name="p", source=source, hyperline_conn_id=CONN_ID, tuning=tuning)


def events(count: int) -> list[dict[str, Any]]:
    stamp = "2026-11-20T10:00:00Z"
    return [{"customer_id": "c", "event_type": "api_call", "timestamp": stamp, "record": {"id": f"r{i}"}}
            for i in range(count)]


def test_sends_through_the_hook(emulator: Emulator) -> None:
    sender = make_sender(pipeline())

    result = sender.send_events(events(3), prevalidated=True)

    assert isinstance(sender, HookSender)
    assert result.accepted == 3 and sorted(emulator.events) == ["r0", "r1", "r2"]


def test_an_unavailable_hyperline_becomes_the_domains_error(emulator: Emulator) -> None:
    emulator.set_faults(Faults(always_status=503))

    with pytest.raises(HyperlineUnavailableError) as raised:
        make_sender(pipeline()).send_events(events(2))

    assert "unavailable" in str(raised.value) and "HTTP 503" in str(raised.value)
    assert isinstance(raised.value.__cause__, ProviderUnavailableError)
    assert type(raised.value).__name__ == "HyperlineUnavailableError"  # run reports name it as before


def test_a_refused_key_passes_through_for_the_dag_to_fail_without_retry(emulator: Emulator, monkeypatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}",
                       json.dumps({"conn_type": "hyperline", "host": emulator.url, "password": "test_wrong_1"}))

    with pytest.raises(HyperlineAuthError):
        make_sender(pipeline()).send_events(events(1))


def test_the_sync_counts_an_unavailable_hyperline_on_the_breaker(emulator: Emulator, sample_source, tmp_path) -> None:
    emulator.set_faults(Faults(always_status=503))
    config = pipeline(sample_source)
    ledger, run_id = Ledger.sqlite(tmp_path / "ledger.db"), f"it-{uuid.uuid4().hex[:8]}"
    breaker = CircuitBreaker(ledger, config.name, threshold=1, cooldown=dt.timedelta(minutes=5))
    job = SyncJob(pipeline=config, ledger=ledger, source=ArchiveSource(config), state_dir=tmp_path,
                  output_dir=tmp_path / "out", run_id=run_id, owner=run_id, sender=make_sender(config),
                  breaker=breaker)

    with pytest.raises(HyperlineUnavailableError):
        sync_partition(job, dt.date(2026, 3, 1))

    failures, open_until, last_error = ledger.breaker(config.name)
    assert failures == 1 and open_until is not None
    assert "unavailable" in last_error and KEY not in last_error
