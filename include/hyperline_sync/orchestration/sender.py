"""The Hyperline provider's hook fitted to the sync's ``Sender`` port.

Only this layer knows both sides: the sync catches its own ``HyperlineUnavailableError`` (see
``pipeline.ports``), the hook raises the provider's. Auth and request errors pass through unchanged:
the sync fails the partition on any error, and the DAG tells them apart to skip retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hyperline_provider.exceptions import HyperlineUnavailableError as ProviderUnavailableError
from hyperline_provider.hooks.hyperline import HyperlineHook
from hyperline_provider.results import SendResult
from hyperline_sync.config.models import PipelineConfig
from hyperline_sync.pipeline.ports import HyperlineUnavailableError


class HookSender:
    """A :class:`Sender` over a :class:`HyperlineHook`."""

    def __init__(self, hook: HyperlineHook) -> None:
        self.hook = hook

    def send_events(self, events: Iterable[Mapping], *, prevalidated: bool = False) -> SendResult:
        try:
            return self.hook.send_events(events, prevalidated=prevalidated)
        except ProviderUnavailableError as exc:  # its message holds no secret: the provider redacts
            raise HyperlineUnavailableError(str(exc)) from exc

    def delete_events(self, record_ids: list[str]) -> int:
        """Delete these record ids at Hyperline (corrections: retract)."""
        try:
            return self.hook.delete_events(record_ids)
        except ProviderUnavailableError as exc:
            raise HyperlineUnavailableError(str(exc)) from exc


def make_sender(pipeline: PipelineConfig) -> HookSender:
    """The pipeline's sender: a hook on its Hyperline connection, tuned by its ``tuning.*`` settings."""
    return HookSender(
        HyperlineHook(
            hyperline_conn_id=pipeline.hyperline_conn_id,
            batch_size=pipeline.tuning.batch_size,
            max_requests_per_second=pipeline.tuning.max_requests_per_second,
            max_attempts=pipeline.tuning.send_max_attempts,
            backoff_base=pipeline.tuning.send_backoff_seconds,
            max_retry_seconds=pipeline.tuning.send_max_retry_seconds,
        )
    )
