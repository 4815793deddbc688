"""What to do about an answer worth resending: how long to wait, and when to stop trying.

Waits are capped exponential backoff with jitter. A server-given wait is honoured up to
``max_server_wait``: ``Retry-After`` (or ``X-RateLimit-Reset``) on a 429 is the wait itself; on a
503 (Hyperline's ``IngestionOverloadedError`` asks for ``Retry-After`` with backoff and jitter) or
another transient answer it is a floor under the backoff. A ``Retry-After`` that is negative or not
a number/date counts as absent, so it never means "resend at once".
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from hyperline_provider.client.answers import Kind
from hyperline_provider.throttle import parse_reset, parse_retry_after


@dataclass
class RetryPolicy:
    """How a request that got no usable answer is resent.

    :param max_attempts: attempts per request (first one included) before giving up.
    :param max_retry_seconds: time budget per request, waits included, before giving up.
    :param backoff_base: first backoff delay in seconds; doubles per attempt, with jitter.
    :param backoff_max: cap of one backoff delay.
    :param max_server_wait: cap of one wait asked for by Hyperline (``Retry-After``, ``X-RateLimit-Reset``).
    """

    max_attempts: int = 8
    max_retry_seconds: float = 300.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_server_wait: float = 60.0
    random: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so waits still grow."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay / 2 + self.random.uniform(0, delay / 2)

    def delay(self, kind: Kind | None, headers: Mapping[str, str], attempt: int) -> float:
        """Seconds to wait before resending after answer ``kind`` (None: no answer, e.g. a dropped connection)."""
        asked = parse_retry_after(headers.get("Retry-After"))
        if kind is Kind.RATE_LIMITED:
            if asked is None:
                asked = parse_reset(headers.get("X-RateLimit-Reset"))
            return self.backoff(attempt) if asked is None else min(asked, self.max_server_wait)
        backoff = self.backoff(attempt)
        return backoff if asked is None else max(min(asked, self.max_server_wait), backoff)

    def hold(self, headers: Mapping[str, str]) -> float | None:
        """After an answer saying the rate-limit budget is spent, how long to hold the next request."""
        if headers.get("X-RateLimit-Remaining", "").strip() != "0":
            return None
        reset = parse_reset(headers.get("X-RateLimit-Reset"))
        return min(reset, self.max_server_wait) if reset else None

    def gives_up(self, attempt: int, elapsed: float, delay: float) -> bool:
        """True once the attempts are spent or waiting ``delay`` more would exceed the time budget."""
        return attempt >= self.max_attempts or elapsed + delay > self.max_retry_seconds
