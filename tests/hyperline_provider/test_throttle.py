"""Request pacing: the client-side rate limiter and the rate-limit header parsers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from hyperline_provider.throttle import RateLimiter, parse_reset, parse_retry_after
from tests.fake_clock import FakeClock

NOW = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)


def test_limiter_spaces_requests() -> None:
    clock = FakeClock(now=100.0)
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)

    waits = [limiter.acquire() for _ in range(4)]

    assert waits == [0.0, 0.25, 0.25, 0.25]
    assert clock.now == pytest.approx(100.75)


def test_limiter_without_rate_never_waits_until_held() -> None:
    clock = FakeClock(now=100.0)
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)

    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    limiter.hold_until(clock.now + 2.5)
    assert limiter.acquire() == pytest.approx(2.5)
    assert limiter.reserve() == 0.0


def test_limiter_books_distinct_slots_across_threads() -> None:
    clock = FakeClock(now=100.0)
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def book() -> None:
        for _ in range(25):
            wait = limiter.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=book) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # the clock never moved: 100 bookings must occupy 100 distinct 0.1 s slots
    assert sorted(round(w, 6) for w in waits) == [round(i * 0.1, 6) for i in range(100)]


def test_limiter_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="max_per_second"):
        RateLimiter(0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("0.05", 0.05),
        (" 7 ", 7.0),
        ("-1", None),  # broken: must not read as "retry at once"
        ("Fri, 20 Nov 2026 10:00:30 GMT", 30.0),
        ("Fri, 20 Nov 2026 09:59:00 GMT", 0.0),  # already past
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2026-11-20T10:00:12Z", 12.0),
        ("2026-11-20T10:00:12.500Z", 12.5),
        ("2026-11-20T11:00:12+01:00", 12.0),
        ("2026-11-20T10:00:12", 12.0),  # no zone: UTC assumed
        ("Fri, 20 Nov 2026 10:00:12 GMT", 12.0),
        (str(int((NOW + timedelta(seconds=12)).timestamp())), 12.0),
        (str(int((NOW + timedelta(seconds=12)).timestamp() * 1000)), 12.0),
        ("12", 12.0),
        ("2026-11-20T09:00:00Z", 0.0),
        ("", None),
        ("whenever", None),
    ],
)
def test_parse_reset(value: str, seconds: float | None) -> None:
    assert parse_reset(value, now=NOW) == seconds
