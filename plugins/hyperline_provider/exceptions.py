"""The provider's errors. Their messages never hold the API key or any ``Bearer`` value."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hyperline_provider.results import SendResult


class HyperlineError(Exception):
    """Base class of the provider's errors."""


class HyperlineAuthError(HyperlineError):
    """No usable API key, or Hyperline answered 401/403; never retried: the same key cannot succeed."""


class HyperlineSendError(HyperlineError):
    """A send stopped part-way; ``result`` holds what was settled before (``delivered`` = accepted)."""

    def __init__(self, message: str, result: SendResult) -> None:
        super().__init__(message)
        self.result = result
        self.delivered = result.accepted


class HyperlineUnavailableError(HyperlineSendError):
    """Hyperline stayed unreachable or erroring (5xx, 408, 429, timeouts) past the retry budget.

    Retryable later: every event is keyed by ``record.id`` and Hyperline upserts, so resending is safe.
    """


class HyperlineRequestError(HyperlineSendError):
    """The request itself is wrong: a 4xx other than 400/401/403/408/413/429 (e.g. 404 on a wrong
    host), or one that could not be made at all (invalid URL). Not retried and not blamed on the
    events. ``status`` holds the HTTP status, None when no answer came."""

    def __init__(self, message: str, result: SendResult, status: int | None) -> None:
        super().__init__(message, result)
        self.status = status
