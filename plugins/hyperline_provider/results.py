"""Outcome of a ``HyperlineHook.send_events`` call (the errors it raises are in ``exceptions``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """An event Hyperline will not hold, with why: ``invalid_event: ...`` or ``rejected_by_hyperline...``."""

    event: Mapping[str, Any]
    reason: str


@dataclass(slots=True)
class SendResult:
    """Counts of one or more ``send_events`` calls.

    ``accepted + len(failed)`` equals the number of events given (for a call that returned normally).
    ``batches`` counts the batches cut from the input, ``requests`` every HTTP request made (retries
    and bisection halves included), ``retries`` the requests that repeated an earlier one.
    """

    accepted: int = 0
    failed: list[FailedEvent] = field(default_factory=list)
    batches: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Events that got an answer: accepted or failed."""
        return self.accepted + len(self.failed)

    @property
    def reasons(self) -> Counter[str]:
        """Failed events counted by reason."""
        return Counter(f.reason for f in self.failed)

    def absorb(self, other: SendResult) -> None:
        """Add ``other``'s counts and failures into this result, in place."""
        self.accepted += other.accepted
        self.failed.extend(other.failed)
        self.batches += other.batches
        self.requests += other.requests
        self.retries += other.retries
        self.seconds += other.seconds

    def merge(self, other: SendResult) -> SendResult:
        """Return a new result adding ``other`` to this one (e.g. several chunks of one partition)."""
        merged = SendResult()
        merged.absorb(self)
        merged.absorb(other)
        return merged
