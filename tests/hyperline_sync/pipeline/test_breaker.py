"""The circuit breaker opens after N consecutive failed batches, for every task of the pipeline."""

from __future__ import annotations

import datetime as dt

import pytest

from hyperline_sync.pipeline.breaker import CircuitBreaker, CircuitOpenError
from hyperline_sync.state.ledger import Ledger


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger.sqlite(tmp_path / "ledger.db")


def test_opens_after_threshold_consecutive_failures_and_is_shared(ledger):
    one = CircuitBreaker(ledger, "p", threshold=2, cooldown=dt.timedelta(minutes=5))
    one.check()
    one.failure(RuntimeError("503 after 8 attempts"))
    one.check()  # one failure is not enough
    one.failure(RuntimeError("503 after 8 attempts"))
    with pytest.raises(CircuitOpenError, match=r"2 batches in a row failed.*503 after 8 attempts"):
        one.check()
    other_task = CircuitBreaker(ledger, "p", threshold=2, cooldown=dt.timedelta(minutes=5))
    with pytest.raises(CircuitOpenError):
        other_task.check()
    CircuitBreaker(ledger, "other-pipeline", threshold=2, cooldown=dt.timedelta(minutes=5)).check()


def test_a_success_resets_the_count(ledger):
    breaker = CircuitBreaker(ledger, "p", threshold=2, cooldown=dt.timedelta(minutes=5))
    breaker.check()
    breaker.failure(RuntimeError("x"))
    breaker.success()
    breaker.failure(RuntimeError("y"))
    breaker.check()
    assert ledger.breaker("p")[0] == 1


def test_it_closes_after_the_cooldown(ledger):
    breaker = CircuitBreaker(ledger, "p", threshold=1, cooldown=dt.timedelta(seconds=-1))
    breaker.check()
    breaker.failure(RuntimeError("x"))
    breaker.check()  # cooldown already over: half-open, sending may try again
