"""SendResult and the provider's errors."""

from __future__ import annotations

from hyperline_provider.exceptions import HyperlineRequestError, HyperlineSendError, HyperlineUnavailableError
from hyperline_provider.results import FailedEvent, SendResult


def test_merge_adds_everything_and_leaves_both_alone() -> None:
    first = SendResult(
        accepted=3, failed=[FailedEvent({"a": 1}, "invalid_event: x")], batches=1, requests=2, retries=1, seconds=0.5
    )
    second = SendResult(
        accepted=4,
        failed=[FailedEvent({"b": 2}, "rejected_by_hyperline")],
        batches=2,
        requests=2,
        retries=0,
        seconds=1.0,
    )

    merged = first.merge(second)

    assert (merged.accepted, merged.batches, merged.requests, merged.retries) == (7, 3, 4, 1)
    assert merged.seconds == 1.5
    assert merged.total == 9
    assert [f.reason for f in merged.failed] == ["invalid_event: x", "rejected_by_hyperline"]
    assert (first.accepted, len(first.failed), second.accepted) == (3, 1, 4)


def test_absorb_adds_in_place_and_reasons_count() -> None:
    result = SendResult(accepted=1)
    result.absorb(SendResult(accepted=2, failed=[FailedEvent({}, "r"), FailedEvent({}, "r")], requests=1))

    assert result.accepted == 3
    assert result.requests == 1
    assert result.reasons == {"r": 2}


def test_send_errors_carry_the_partial_result() -> None:
    partial = SendResult(accepted=5000)

    unavailable = HyperlineUnavailableError("down", partial)
    refused = HyperlineRequestError("404", partial, 404)

    assert isinstance(unavailable, HyperlineSendError)
    assert unavailable.delivered == 5000 and unavailable.result is partial
    assert refused.status == 404 and refused.delivered == 5000
