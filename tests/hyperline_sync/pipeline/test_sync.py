"""sync's process-level helpers: the relaxed GC while a partition syncs, and claim renewal.

(The sync itself is tested end to end: tests/hyperline_sync/sources, tests/dags and tests/faults.)
"""

from __future__ import annotations

import datetime as dt
import gc
from types import SimpleNamespace

import pytest

from hyperline_sync.pipeline import sync
from hyperline_sync.pipeline.sync import GC_YOUNG_THRESHOLD, RENEW_SECONDS, _ClaimRenewal, _gc_relaxed
from hyperline_sync.state.ledger import PartitionBusyError


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(thresholds) -> None:
    with _gc_relaxed():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_it_is_restored_after_an_error_and_never_lowered(thresholds) -> None:
    gc.set_threshold(GC_YOUNG_THRESHOLD * 2, 5, 5)
    with pytest.raises(RuntimeError), _gc_relaxed():
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 5, 5)
        raise RuntimeError("boom")
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 2, 5, 5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def claim_job(ledger, ttl_minutes: int) -> SimpleNamespace:
    ledger.claim("p", "2026-01-01", "run-a", dt.timedelta(minutes=ttl_minutes), run_id="run-a")
    return SimpleNamespace(ledger=ledger, owner="run-a", dry_run=False, pipeline=SimpleNamespace(name="p"),
                           claim_ttl=dt.timedelta(minutes=ttl_minutes))


def expiry(ledger) -> dt.datetime:
    return ledger.partitions("p")["2026-01-01"].claim_expires_at


@pytest.mark.parametrize(("ttl_minutes", "every"), [(60, RENEW_SECONDS), (2, 30.0)])
def test_the_claim_is_renewed_once_per_interval_not_per_chunk(ledger, monkeypatch, ttl_minutes, every) -> None:
    clock = Clock()
    monkeypatch.setattr(sync.time, "monotonic", clock)
    job = claim_job(ledger, ttl_minutes)
    renewal = _ClaimRenewal(job, "2026-01-01")
    first = expiry(ledger)
    clock.now += every - 1
    renewal.due()
    assert expiry(ledger) == first  # not yet: no ledger write
    clock.now += 1
    renewal.due()
    assert expiry(ledger) > first


def test_a_lost_claim_is_noticed_at_the_next_renewal(ledger, monkeypatch) -> None:
    clock = Clock()
    monkeypatch.setattr(sync.time, "monotonic", clock)
    renewal = _ClaimRenewal(claim_job(ledger, 60), "2026-01-01")
    ledger.release("p", "2026-01-01", "run-a", "pending")
    ledger.claim("p", "2026-01-01", "run-b", dt.timedelta(minutes=60), run_id="run-b")
    clock.now += RENEW_SECONDS
    with pytest.raises(PartitionBusyError, match="lost the claim"):
        renewal.due()
