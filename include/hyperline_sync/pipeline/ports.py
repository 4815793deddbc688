"""The sync's ports: what it needs of a sender, and the one sender error it acts on.

The domain depends on these, never on a client library or on the Airflow provider: an adapter in
``orchestration.sender`` fits the provider's hook to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class SendOutcome(Protocol):
    """What one send settled: ``accepted + len(failed)`` is the number of events given."""

    accepted: int
    failed: list  # of objects with .event (the event as given) and .reason
    requests: int
    retries: int


class Sender(Protocol):
    """Delivers events to Hyperline; resending an event is safe (Hyperline upserts on ``record.id``).

    Raises :class:`HyperlineUnavailableError` when Hyperline stays unavailable past the sender's own
    retries (it counts towards the circuit breaker); any other error fails the partition as it is.
    ``send_events`` is called from several threads at once (a unit sends two chunks at once).
    """

    def send_events(self, events: Iterable[Mapping], *, prevalidated: bool = False) -> SendOutcome: ...


class HyperlineUnavailableError(Exception):
    """Hyperline stayed unreachable or erroring past the sender's retries; retry the partition later."""
