"""Request pacing: a client-side rate limiter and the parsing of Hyperline's rate-limit headers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class RateLimiter:
    """Spaces requests at least ``1 / max_per_second`` apart and honours "not before" times.

    Thread-safe: threads of one process sharing a limiter share its budget. The lock is held only to
    book a slot, never while sleeping.
    """

    def __init__(
        self,
        max_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_per_second is not None and max_per_second <= 0:
            raise ValueError(f"max_per_second must be > 0, got {max_per_second}")
        self.interval = 1.0 / max_per_second if max_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next request slot; return the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        return slot - now

    def acquire(self) -> float:
        """Wait for the next request slot; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def hold_until(self, when: float) -> None:
        """Let no request start before ``when`` (a ``clock()`` value), e.g. a rate-limit reset."""
        with self._lock:
            self._next = max(self._next, when)

    def hold_for(self, seconds: float) -> None:
        """Let no request start in the next ``seconds``."""
        self.hold_until(self._clock() + seconds)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds (fractions tolerated) or an HTTP-date.

    None when absent or unusable, including negative seconds: a broken header must not read as
    "retry at once". A date already past is 0.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = _parse_datetime(value)
        if when is None:
            return None
        return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
    return seconds if seconds >= 0 else None  # also refuses NaN


def parse_reset(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` time.

    Hyperline documents it as a date/time; accepted forms are ISO 8601, an HTTP-date, epoch seconds or
    epoch milliseconds, and (being lenient) a small number meaning seconds from now.
    """
    if not value:
        return None
    value = value.strip()
    now = now or datetime.now(UTC)
    try:
        number = float(value)
    except ValueError:
        when = _parse_datetime(value)
        if when is None:
            return None
        return max((when - now).total_seconds(), 0.0)
    if number != number:
        return None
    if number >= 1e12:
        number /= 1000.0
    if number >= 1e9:
        return max(number - now.timestamp(), 0.0)
    return max(number, 0.0)


def _parse_datetime(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
