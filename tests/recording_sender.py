"""A Sender for tests that need the sync's output but not HTTP: it accepts every event and keeps it.

The HTTP side (HyperlineHook against the emulator) has its own tests; these use the real
`sync_partition` with this sender in place of the hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hyperline_sync.orchestration.cli.preview import PreviewResult


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send_events(self, events: Iterable[dict], *, prevalidated: bool = False) -> PreviewResult:
        events = list(events)
        self.events.extend(events)
        return PreviewResult(accepted=len(events))

    def by_id(self) -> dict[str, tuple]:
        """record.id -> (customer_id, event_type, timestamp, record) of everything received."""
        return {e["record"]["id"]: (e["customer_id"], e["event_type"], e["timestamp"], e["record"])
                for e in self.events}
