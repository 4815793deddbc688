"""A circuit breaker for sending: when Hyperline keeps failing, stop sending instead of burning the
rate limit and every partition's retries against an outage.

Each batch the hook gives up on (retries exhausted) counts as one failure; any successful send
resets the count. After `threshold` consecutive failures the breaker opens for `cooldown`: every
task of the pipeline then fails its partition at once with a message saying why, and Airflow's
task retries (with backoff) come back after the cool-down. The state lives in the ledger so all
tasks and workers of a pipeline share it.
"""

from __future__ import annotations

import datetime as dt
import logging

from hyperline_sync.state.ledger import Ledger

log = logging.getLogger(__name__)


class CircuitOpenError(RuntimeError):
    """Sending is suspended: Hyperline failed too often in a row."""


class CircuitBreaker:
    def __init__(self, ledger: Ledger, pipeline: str, threshold: int, cooldown: dt.timedelta) -> None:
        self.ledger, self.pipeline, self.threshold, self.cooldown = ledger, pipeline, threshold, cooldown
        self._failures = 0

    def check(self) -> None:
        """Raise CircuitOpenError while the breaker is open."""
        failures, open_until, error = self.ledger.breaker(self.pipeline)
        self._failures = failures
        if open_until is not None and open_until > dt.datetime.now(dt.UTC):
            raise CircuitOpenError(
                f"circuit breaker open until {open_until:%Y-%m-%d %H:%M:%S} UTC: {failures} batches in a row "
                f"failed after retries (last: {error}); not sending to Hyperline until then"
            )

    def failure(self, error: BaseException) -> None:
        failures = self._failures + 1
        opens = failures >= self.threshold
        until = dt.datetime.now(dt.UTC) + self.cooldown if opens else None
        self.ledger.set_breaker(self.pipeline, failures, until, str(error)[:500])
        self._failures = failures
        if opens:
            log.error("circuit breaker for %s opened after %d failed batches; cooling down %s",
                      self.pipeline, failures, self.cooldown)

    def success(self) -> None:
        if self._failures:
            self.ledger.set_breaker(self.pipeline, 0, None, None)
            self._failures = 0
