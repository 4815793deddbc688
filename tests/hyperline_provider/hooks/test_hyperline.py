"""HyperlineHook over real HTTP against the local emulator (127.0.0.1, started in-process)."""

from __future__ import annotations

import copy
import gc
import json
import logging
import math
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import requests

from hyperline_devtools.emulator import Emulator, Faults
from hyperline_provider import PRODUCTION_HOST, SANDBOX_HOST
from hyperline_provider.client.answers import Kind, failed_member, read_batch_answer
from hyperline_provider.client.client import _gc_frozen
from hyperline_provider.client.messages import auth_message
from hyperline_provider.client.retry import RetryPolicy
from hyperline_provider.exceptions import HyperlineError
from hyperline_provider.hooks.hyperline import (
    HyperlineAuthError,
    HyperlineHook,
    HyperlineRequestError,
    HyperlineUnavailableError,
    SendResult,
)
from hyperline_provider.limits import MAX_BATCH_BYTES
from hyperline_provider.throttle import RateLimiter
from tests.fake_clock import FakeClock

KEY = "test_hook_secret_4f9a2c"
CONN_ID = "hyperline_test"


def make_events(count: int, prefix: str = "e", customer: str = "cus_1") -> list[dict[str, Any]]:
    return [
        {
            "customer_id": customer,
            "event_type": "api_call",
            "timestamp": "2026-11-20T10:00:00Z",
            "record": {"id": f"{prefix}{i}", "n": i, "tags": ["a", "b"]},
        }
        for i in range(count)
    ]


def assert_all_answered(result: SendResult, given: int) -> None:
    assert result.accepted + len(result.failed) == given


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_key=KEY) as emu:
        yield emu


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Callable[..., str]:
    """Define a ``hyperline`` connection through an AIRFLOW_CONN_* variable (no metadata DB needed)."""

    def _connect(conn_id: str = CONN_ID, host: str | None = None, password: str | None = KEY, **fields: Any) -> str:
        conn: dict[str, Any] = {"conn_type": "hyperline", "host": host or emulator.url, **fields}
        if password is not None:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return _connect


@pytest.fixture
def make_hook(connect: Callable[..., str]) -> Iterator[Callable[..., HyperlineHook]]:
    """Hooks with tiny backoffs whose waits are recorded instead of slept (``hook.clock.sleeps``)."""
    hooks: list[HyperlineHook] = []

    def _make(conn_id: str | None = None, **kwargs: Any) -> HyperlineHook:
        kwargs.setdefault("backoff_base", 0.001)
        kwargs.setdefault("backoff_max", 0.01)
        hook = HyperlineHook(conn_id or connect(), **kwargs)
        hook.clock = FakeClock()
        hook.sleep = hook.clock.sleep
        hooks.append(hook)
        return hook

    yield _make
    for hook in hooks:
        hook.close()


# ----------------------------------------------------------------------------- happy path


def test_sends_every_event_in_batches_with_bearer_auth(emulator: Emulator, make_hook) -> None:
    hook = make_hook(batch_size=5)

    result = hook.send_events(make_events(12))

    assert (result.accepted, result.failed, result.batches, result.requests, result.retries) == (12, [], 3, 3, 0)
    assert sorted(emulator.events) == sorted(f"e{i}" for i in range(12))
    assert emulator.auth_schemes == {"bearer": 3}
    assert emulator.stats()["max_request_events"] == 5
    assert hook.get_conn().headers["Authorization"] == f"Bearer {KEY}"


def test_sends_exactly_the_four_fields_and_never_alters_events(emulator: Emulator, make_hook) -> None:
    events = [{**e, "line_no": i} for i, e in enumerate(make_events(3))]
    before = copy.deepcopy(events)

    make_hook().send_events(events)

    assert events == before
    assert emulator.events["e1"] == {k: v for k, v in before[1].items() if k != "line_no"}


def test_a_stray_login_does_not_replace_bearer_auth(emulator: Emulator, connect, make_hook) -> None:
    hook = make_hook(connect(login="someone"))

    hook.send_events(make_events(2))

    assert emulator.auth_schemes == {"bearer": 1}


def test_empty_input_sends_nothing(emulator: Emulator, make_hook) -> None:
    result = make_hook().send_events(iter(()))

    assert (result.accepted, result.failed, result.batches, result.requests) == (0, [], 0, 0)
    assert emulator.requests == 0


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({"customer_id": None}, "invalid_event: missing customer_id"),
        ({"record": {"id": 17}}, "invalid_event: record.id must be a string"),
        ({"record": {"id": "x", "tags": [{"a": 1}]}}, "invalid_event: record.tags contains an object"),
        ({"timestamp": "2026-11-20 10:00:00"}, "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        ({"record": {"id": "x", "v": None}}, "invalid_event: record.v is null"),
        ({"record": {"id": "x", "v": math.nan}}, "invalid_event: record.v is not a finite number"),
    ],
)
def test_invalid_events_fail_with_a_reason_and_are_never_sent(
    emulator: Emulator, make_hook, broken: dict[str, Any], reason: str
) -> None:
    good = make_events(2)
    bad = {**make_events(1, prefix="bad")[0], **broken}

    result = make_hook().send_events([good[0], bad, good[1]])

    assert result.accepted == 2
    assert [(f.event, f.reason) for f in result.failed] == [(bad, reason)]
    assert sorted(emulator.events) == ["e0", "e1"]


def test_only_invalid_events_make_no_request(emulator: Emulator, make_hook) -> None:
    result = make_hook().send_events([{"customer_id": "c"}, "nonsense"])

    assert [f.reason for f in result.failed] == [
        "invalid_event: missing event_type",
        "invalid_event: event must be an object",
    ]
    assert (result.batches, result.requests, emulator.requests) == (0, 0, 0)


def test_an_event_too_big_for_the_byte_cap_fails_alone(emulator: Emulator, make_hook) -> None:
    events = make_events(3)
    events[1]["record"]["blob"] = "x" * 3000

    result = make_hook(max_batch_bytes=2000).send_events(events)

    assert result.accepted == 2
    assert result.failed[0].reason.startswith("invalid_event: ")
    assert "over the 2000-byte request cap" in result.failed[0].reason


def test_prevalidated_events_skip_the_check_and_hyperline_isolates_a_bad_one(emulator: Emulator, make_hook) -> None:
    events = make_events(9)
    events[4]["timestamp"] = "yesterday"  # what the check would have caught; Hyperline refuses it

    result = make_hook().send_events(iter(events), prevalidated=True)

    assert result.accepted == 8
    failed = [(f.event["record"]["id"], f.reason.split(":")[0]) for f in result.failed]
    assert failed == [("e4", "rejected_by_hyperline")]
    assert result.batches == result.requests == 1  # Hyperline named it in the 201's events_failed
    assert sorted(emulator.events) == sorted(f"e{i}" for i in range(9) if i != 4)


def test_prevalidated_events_are_cut_to_the_batch_size_and_the_byte_cap(emulator: Emulator, make_hook) -> None:
    result = make_hook(batch_size=30, max_batch_bytes=2000).send_events(make_events(100), prevalidated=True)

    assert result.accepted == 100 and result.failed == []
    assert result.requests == result.batches > 100 // 30 + 1
    assert emulator.stats()["max_request_bytes"] <= 2000
    assert emulator.stats()["max_request_events"] <= 30


def test_an_event_orjson_cannot_encode_fails_alone(emulator: Emulator, make_hook) -> None:
    events = make_events(5)
    events[2]["record"]["big"] = 2**64

    result = make_hook().send_events(events)

    assert result.accepted == 4
    assert [f.event["record"]["id"] for f in result.failed] == ["e2"]
    assert result.failed[0].reason.startswith("invalid_event: not JSON-serialisable")


# ----------------------------------------------------------------------------- streaming and limits


def test_a_large_stream_is_consumed_lazily_in_bounded_requests(connect, make_hook) -> None:
    total, batch_size, in_flight = 200_000, 5000, 2
    with Emulator(api_key=KEY, store=False) as emu:
        hook = make_hook(connect(host=emu.url), max_in_flight=in_flight)
        max_unanswered = 0

        def stream() -> Iterator[dict[str, Any]]:
            nonlocal max_unanswered
            for i in range(total):
                if i % 1000 == 0:
                    max_unanswered = max(max_unanswered, i - emu.events_received)
                yield {
                    "customer_id": "cus_1",
                    "event_type": "api_call",
                    "timestamp": 1_766_224_800_000 + i,
                    "record": {"id": f"big-{i}", "n": i},
                }

        result = hook.send_events(stream())
        stats = emu.stats()

    assert result.accepted == total and result.failed == []
    assert result.batches == result.requests == total // batch_size
    assert stats["events_received"] == total
    assert stats["max_request_events"] == batch_size
    assert stats["max_request_bytes"] <= MAX_BATCH_BYTES
    # never more than the batches in flight plus the one being cut were held unanswered
    assert 0 < max_unanswered <= (in_flight + 1) * batch_size


def test_requests_stay_under_the_byte_cap(emulator: Emulator, make_hook) -> None:
    result = make_hook(max_batch_bytes=2000).send_events(make_events(100))

    assert result.accepted == 100
    assert result.requests == result.batches > 5
    assert emulator.stats()["max_request_bytes"] <= 2000


# ----------------------------------------------------------------------------- answers


def test_events_failed_in_a_201_are_rejected_the_rest_accepted(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(reject_customer_ids={"cus_unknown"}))
    events = make_events(7) + make_events(3, prefix="u", customer="cus_unknown")

    result = make_hook().send_events(events)

    assert result.accepted == 7
    assert sorted(f.event["record"]["id"] for f in result.failed) == ["u0", "u1", "u2"]
    assert {f.reason for f in result.failed} == {"rejected_by_hyperline"}
    assert_all_answered(result, 10)
    assert len(emulator.events) == 7


def event_json(record_id: str, **extra: Any) -> dict[str, Any]:
    record = {"id": record_id, **extra}
    return {"customer_id": "c", "event_type": "t", "timestamp": "2026-11-20T10:00:00Z", "record": record}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # the usual order: only the events_failed member is parsed
        ({"events_created": [event_json("a")], "events_failed": [event_json("b")]}, ({"b"}, 0)),
        ({"events_created": [event_json("a")], "events_failed": []}, (set(), 0)),
        # a created event with a property named events_failed must not be taken for the member
        ({"events_failed": [event_json("b")], "events_created": [event_json("a", events_failed=["z"])]}, ({"b"}, 0)),
        ({"events_created": [event_json("a", events_failed=[])], "events_failed": [{"record": {}}]}, (set(), 1)),
        ({"events_failed": []}, None),
        ({"events_created": [], "events_failed": "none"}, None),
    ],
)
def test_batch_answers_are_read_whatever_their_member_order(answer: dict, expected: tuple | None) -> None:
    assert read_batch_answer(json.dumps(answer).encode()) == expected
    assert read_batch_answer(json.dumps(answer, separators=(",", ":")).encode()) == expected


def test_only_the_failed_member_is_parsed_when_it_comes_last() -> None:
    created = [event_json(f"a{i}", events_failed=["x"]) for i in range(3)]
    usual = orjson.dumps({"events_created": created, "events_failed": [event_json("b")]})
    assert failed_member(usual) == [event_json("b")]
    assert failed_member(orjson.dumps({"events_failed": [], "events_created": created})) is None


def test_a_truncated_answer_is_not_an_answer() -> None:
    content = json.dumps({"events_created": [event_json("a")], "events_failed": []}).encode()
    assert read_batch_answer(content[:-1]) is None


def test_429_waits_retry_after_then_resends(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(script=("429",), retry_after=0.05))
    hook = make_hook()

    result = hook.send_events(make_events(4))

    assert (result.accepted, result.requests, result.retries) == (4, 2, 1)
    assert hook.clock.sleeps == [0.05]
    assert emulator.statuses == {429: 1, 201: 1}


def test_503_waits_the_retry_after_hyperline_asks_for(emulator: Emulator, make_hook) -> None:
    # Hyperline's IngestionOverloadedError: retry after Retry-After, with backoff and jitter
    emulator.set_faults(Faults(script=("503",), overloaded_retry_after="3"))
    hook = make_hook()

    result = hook.send_events(make_events(4))

    assert (result.accepted, result.requests, result.retries) == (4, 2, 1)
    assert hook.clock.sleeps == [3.0]  # the backoff (<= 0.01 s here) is only a floor under it


def test_a_long_retry_after_is_capped_by_the_policy(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(script=("503", "429"), overloaded_retry_after="3600", retry_after=3600))
    hook = make_hook(max_rate_limit_wait=5)

    result = hook.send_events(make_events(1))

    assert result.accepted == 1
    assert hook.clock.sleeps == [5.0, 5.0]


@pytest.mark.parametrize(
    ("faults", "status"),
    [
        (Faults(script=("429",), retry_after=-5), 429),
        (Faults(script=("503",), overloaded_retry_after="-5"), 503),
        (Faults(script=("503",), overloaded_retry_after="soon"), 503),
        (Faults(script=("503",), overloaded_retry_after="nan"), 503),
        (Faults(script=("503",), overloaded_retry_after=""), 503),
    ],
)
def test_a_broken_retry_after_falls_back_to_backoff(emulator: Emulator, make_hook, faults: Faults, status: int) -> None:
    emulator.set_faults(faults)
    hook = make_hook(backoff_base=0.2, backoff_max=10)

    result = hook.send_events(make_events(2))

    assert result.accepted == 2 and emulator.statuses[status] == 1
    (wait,) = hook.clock.sleeps
    assert 0.1 <= wait <= 0.2  # the first backoff, never "resend at once"


def test_429_without_retry_after_backs_off(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(script=("429",), retry_after=None))
    hook = make_hook(backoff_base=0.2, backoff_max=10)

    result = hook.send_events(make_events(4))

    assert result.accepted == 4
    (wait,) = hook.clock.sleeps
    assert 0.1 <= wait <= 0.2  # first backoff: half fixed, half jitter


@pytest.mark.parametrize("script", [("503",), ("500", "502"), ("408",), ("drop",), ("bad_201",)])
def test_transient_failures_are_retried_until_accepted(emulator: Emulator, make_hook, script: tuple[str, ...]) -> None:
    emulator.set_faults(Faults(script=script))
    hook = make_hook()

    result = hook.send_events(make_events(6))

    assert (result.accepted, result.failed) == (6, [])
    assert (result.requests, result.retries) == (len(script) + 1, len(script))
    assert len(hook.clock.sleeps) == len(script)
    assert len(emulator.events) == 6


def test_a_lost_acknowledgement_is_resent_safely(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(script=("store_then_500",)))

    result = make_hook().send_events(make_events(5))

    assert result.accepted == 5 and result.retries == 1
    assert len(emulator.events) == 5
    assert set(emulator.post_counts.values()) == {2}  # stored twice, upserted: still 5 events


def test_whole_batch_400_is_bisected_to_isolate_the_bad_event(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(poison_record_ids={"e37"}))

    result = make_hook(batch_size=100).send_events(make_events(100))

    assert result.accepted == 99
    (failure,) = result.failed
    assert failure.event["record"]["id"] == "e37"
    assert failure.reason.startswith("rejected_by_hyperline: Invalid event at index 0")
    assert len(emulator.events) == 99 and "e37" not in emulator.events
    assert result.requests <= 1 + 2 * math.ceil(math.log2(100))


def test_bisection_isolates_several_bad_events_among_thousands(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(poison_record_ids={"e3", "e4999"}))

    result = make_hook().send_events(make_events(5000))

    assert result.accepted == 4998
    assert sorted(f.event["record"]["id"] for f in result.failed) == ["e3", "e4999"]
    assert len(emulator.events) == 4998


def test_413_splits_the_batch_and_a_single_oversized_event_fails(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(max_body_bytes=1500))
    events = make_events(50)
    events[10]["record"]["blob"] = "x" * 2000

    result = make_hook().send_events(events)

    assert result.accepted == 49
    (failure,) = result.failed
    assert failure.event["record"]["id"] == "e10"
    assert failure.reason == "rejected_by_hyperline: HTTP 413: Request entity too large"
    assert len(emulator.events) == 49


def test_401_raises_at_once_after_one_request_without_the_key(emulator: Emulator, connect, make_hook) -> None:
    wrong = "test_wrong_secret_77"
    hook = make_hook(connect(password=wrong))

    with pytest.raises(HyperlineAuthError) as raised:
        hook.send_events(make_events(20))

    message = str(raised.value)
    assert emulator.requests == 1
    assert f"connection '{CONN_ID}'" in message
    assert "HTTP 401: Invalid API key" in message
    assert "missing, invalid" in message and "other environment" in message
    assert "'test_'" in message
    assert wrong not in message and KEY not in message


def test_401_costs_one_request_even_with_batches_in_flight(emulator: Emulator, connect, make_hook) -> None:
    # Until the key has been accepted once, batches go one at a time: no second batch is on the wire
    # when the first one's 401 arrives.
    hook = make_hook(connect(password="test_wrong_secret_78"), batch_size=10, max_in_flight=2)

    with pytest.raises(HyperlineAuthError):
        hook.send_events(make_events(100))

    assert emulator.requests == 1 and emulator.statuses == {401: 1}


def test_a_401_costs_one_request_across_threads_and_the_key_is_not_tried_again(
        emulator: Emulator, connect, make_hook) -> None:
    # Two threads send at once (the sync sends a chunk while the previous one's answers come): one
    # request tries the key; the other call fails on its refusal without a request, as does a later one.
    hook = make_hook(connect(password="test_wrong_secret_79"), batch_size=10)
    emulator.set_faults(Faults(latency_ms=100))

    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(hook.send_events, make_events(30, prefix=prefix)) for prefix in "ab"]
    for call in calls:
        with pytest.raises(HyperlineAuthError):
            call.result()
    with pytest.raises(HyperlineAuthError):
        hook.send_events(make_events(5))

    assert emulator.requests == 1 and emulator.statuses == {401: 1}


def test_overlapping_sends_keep_the_heap_frozen_until_the_last_one_ends() -> None:
    assert gc.get_freeze_count() == 0  # nothing else froze objects in this process
    first, second = _gc_frozen(), _gc_frozen()
    first.__enter__()
    frozen = gc.get_freeze_count()
    made_since = [[i] for i in range(1000)]
    second.__enter__()  # a send of another thread starting: the objects made since are exempt too
    assert gc.get_freeze_count() >= frozen + len(made_since)
    first.__exit__(None, None, None)
    assert gc.get_freeze_count() > 0  # the second send is still under way
    second.__exit__(None, None, None)
    assert gc.get_freeze_count() == 0


def test_a_connection_without_key_fails_before_any_request(emulator: Emulator, connect, make_hook) -> None:
    hook = make_hook(connect(password=None))

    with pytest.raises(HyperlineAuthError, match="no API key"):
        hook.send_events(make_events(1))

    assert emulator.requests == 0


@pytest.mark.parametrize(
    ("host", "key", "expected"),
    [
        (PRODUCTION_HOST, "test_abc123", "starts with 'test_' (a sandbox key) but the host is production"),
        (SANDBOX_HOST, "prod_abc123", "starts with 'prod_' (a production key) but the host is the sandbox"),
        (SANDBOX_HOST, "test_abc123", "starts with 'test_', which fits the sandbox host"),
        (PRODUCTION_HOST, "sk_abc123", "starts with neither 'prod_' nor 'test_'"),
    ],
)
def test_auth_message_says_which_environment_without_the_key(host: str, key: str, expected: str) -> None:
    message = auth_message("hyperline_anything", host, key, 401, "Invalid API key")

    assert expected in message
    assert key not in message


def test_permanent_503_gives_up_after_bounded_attempts_saying_what_was_delivered(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(script=("ok", "503", "503", "503")))
    hook = make_hook(batch_size=5, max_in_flight=1, max_attempts=3)

    with pytest.raises(HyperlineUnavailableError) as raised:
        hook.send_events(make_events(12))

    error = raised.value
    assert error.delivered == 5 and error.result.accepted == 5
    assert "5 events were delivered before giving up" in str(error)
    assert "after 3 attempts" in str(error) and "HTTP 503" in str(error)
    assert error.result.requests == emulator.requests == 4
    assert len(hook.clock.sleeps) == 2


def test_retries_stop_at_the_time_budget(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(always_status=503))
    hook = make_hook(max_attempts=100, backoff_base=1.0, backoff_max=60, max_retry_seconds=5)

    with pytest.raises(HyperlineUnavailableError):
        hook.send_events(make_events(3))

    assert sum(hook.clock.sleeps) <= 5
    assert 1 <= emulator.requests < 100


def test_a_timeout_is_retried_then_reported(connect, make_hook) -> None:
    with Emulator(api_key=KEY, faults=Faults(latency_ms=400)) as slow:
        hook = make_hook(connect(host=slow.url), timeout=0.05, max_attempts=2)
        with pytest.raises(HyperlineUnavailableError, match="ReadTimeout") as raised:
            hook.send_events(make_events(2))

    assert raised.value.result.requests == 2
    assert raised.value.delivered == 0


def test_a_refused_connection_is_retried_then_reported(connect, make_hook) -> None:
    hook = make_hook(connect(host="http://127.0.0.1:9"), max_attempts=3)

    with pytest.raises(HyperlineUnavailableError, match="ConnectionError"):
        hook.send_events(make_events(2))

    assert len(hook.clock.sleeps) == 2


def test_other_4xx_raise_a_request_error_without_retry(emulator: Emulator, connect, make_hook) -> None:
    hook = make_hook(connect(host=emulator.url + "/wrong-prefix"))

    with pytest.raises(HyperlineRequestError) as raised:
        hook.send_events(make_events(3))

    assert raised.value.status == 404
    assert raised.value.result.requests == 1 and raised.value.result.retries == 0
    assert "check the connection's host" in str(raised.value)


def test_spent_rate_limit_holds_requests_until_reset(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(rate_limit=2, rate_limit_window=1.0, retry_after=None))
    hook = make_hook(batch_size=1, max_in_flight=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # really wait: the emulator's window runs on the wall clock
        waits.append(seconds)
        time.sleep(seconds)

    hook.sleep = sleep

    result = hook.send_events(make_events(3))

    assert result.accepted == 3 and result.retries == 0
    assert emulator.statuses == {201: 3}  # no 429: the hook waited for the reset instead
    assert len(waits) == 1 and 0 < waits[0] <= 1.0


def test_a_429_with_only_a_reset_time_waits_for_it() -> None:
    headers = {"X-RateLimit-Reset": (datetime.now(UTC) + timedelta(seconds=30)).isoformat()}

    assert 25 < RetryPolicy(max_server_wait=60).delay(Kind.RATE_LIMITED, headers, attempt=1) <= 30
    assert RetryPolicy(max_server_wait=5).delay(Kind.RATE_LIMITED, headers, attempt=1) == 5


def test_client_side_rate_limit_spaces_requests(emulator: Emulator, make_hook) -> None:
    hook = make_hook(batch_size=1, max_in_flight=1, max_requests_per_second=0.5)
    hook.send_events(make_events(1))
    assert hook.client.rate_limiter.interval == 2.0  # built from max_requests_per_second
    hook.client.rate_limiter = RateLimiter(0.5, clock=hook.clock)  # same pacing on the recorded clock

    result = hook.send_events(make_events(3, prefix="r"))

    assert result.accepted == 3
    # the first request goes at once; each later one waits for its 2 s slot (recorded, not slept)
    assert hook.clock.sleeps == [2.0, 2.0]


def test_concurrent_batches_under_random_faults_lose_nothing(emulator: Emulator, make_hook) -> None:
    emulator.set_faults(Faults(rate_5xx=0.15, rate_drop=0.1, rate_store_then_500=0.1, rate_429=0.05, seed=3))

    result = make_hook(batch_size=500, max_in_flight=2, max_attempts=25).send_events(make_events(20_000))

    assert (result.accepted, result.failed) == (20_000, [])
    assert result.retries > 0
    assert len(emulator.events) == 20_000


# ----------------------------------------------------------------------------- connection settings


def test_extras_configure_the_hook_and_are_not_sent_as_headers(emulator: Emulator, connect, make_hook) -> None:
    hook = make_hook(connect(extra={"batch_size": 3, "timeout": 7, "max_requests_per_second": 1000}))

    result = hook.send_events(make_events(7))

    assert result.batches == 3
    settings = hook.read_settings()
    assert (settings.batch_size, settings.timeout) == (3, 7.0)
    headers = {name.lower() for name in hook.get_conn().headers}
    assert not headers & {"batch_size", "timeout", "max_requests_per_second"}


def test_legacy_prefixed_extras_are_read(connect, make_hook) -> None:
    hook = make_hook(connect(extra={"extra__hyperline__batch_size": "4"}))

    assert hook.send_events(make_events(8)).batches == 2


def test_keyword_arguments_override_extras(connect, make_hook) -> None:
    hook = make_hook(connect(extra={"batch_size": 3}), batch_size=2)

    assert hook.send_events(make_events(4)).batches == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"extra": {"batch_size": 6000}}, "batch_size must be 1-5000"),
        ({"extra": {"timeout": "soon"}}, "timeout must be a float"),
    ],
)
def test_bad_settings_are_named(connect, make_hook, fields: dict[str, Any], message: str) -> None:
    hook = make_hook(connect(**fields))

    with pytest.raises(ValueError, match=message):
        hook.send_events(make_events(1))


def test_a_connection_without_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HYPERLINE_NOHOST", json.dumps({"conn_type": "hyperline", "password": KEY}))

    with pytest.raises(ValueError, match="has no host"):
        HyperlineHook("hyperline_nohost").send_events(make_events(1))


def test_test_connection(emulator: Emulator, connect, make_hook) -> None:
    ok = make_hook().test_connection()
    refused = make_hook(connect("hyperline_wrong", password="test_wrong_secret_77")).test_connection()
    unreachable = make_hook(connect("hyperline_gone", host="http://127.0.0.1:9")).test_connection()

    assert ok == (True, f"Connected to {emulator.url}; the API key was accepted.")
    assert refused[0] is False and "hyperline_wrong" in refused[1] and "test_wrong_secret_77" not in refused[1]
    assert unreachable[0] is False and "Cannot reach" in unreachable[1]


def test_test_connection_makes_a_listing_hyperline_accepts(emulator: Emulator, make_hook) -> None:
    # GET /v1/events requires event_type (the emulator is as strict); the check must not depend on data
    make_hook().send_events(make_events(3))

    assert make_hook().test_connection()[0] is True
    assert emulator.statuses[200] == 1 and 400 not in emulator.statuses


# ----------------------------------------------------------------------------- the key never leaks


class FailingAdapter(requests.adapters.BaseAdapter):
    """Fails every request with ``error``, quoting the Authorization header as requests' own
    ``InvalidHeader`` does (an answer no server can stage)."""

    def __init__(self, error: type[Exception]) -> None:
        super().__init__()
        self.error = error

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        raise self.error(f"Invalid leading whitespace in header value {request.headers['Authorization']!r}")

    def close(self) -> None:
        pass


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (KEY, *secrets):
        assert secret.strip() not in text
    assert "Bearer test_" not in text


def rendered(error: BaseException) -> str:
    """The error as a log line with its traceback (chained exceptions included) would show it."""
    return "".join(traceback.format_exception(error))


@pytest.mark.parametrize("padding", ["\n", " ", "\r\n", "\t "])
def test_a_key_with_surrounding_whitespace_is_sent_stripped(emulator: Emulator, connect, make_hook, padding) -> None:
    hook = make_hook(connect(password=f"{padding}{KEY}{padding}"))

    result = hook.send_events(make_events(2))

    assert result.accepted == 2 and emulator.auth_schemes == {"bearer": 1}
    assert hook.test_connection()[0] is True


@pytest.mark.parametrize("key", [f"{KEY}\nX-Injected: 1", "test_two words"])
def test_a_key_with_inner_whitespace_is_refused_unsent_and_unnamed(emulator: Emulator, connect, make_hook, key) -> None:
    with pytest.raises(HyperlineAuthError, match="whitespace or control characters") as raised:
        make_hook(connect(password=key)).send_events(make_events(1))
    ok, message = make_hook(connect("hyperline_other", password=key)).test_connection()

    assert emulator.requests == 0 and ok is False
    for text in (rendered(raised.value), message):
        assert_no_secret(text, key, "test_two")


@pytest.mark.parametrize("error", [requests.exceptions.InvalidHeader, ValueError, requests.ConnectionError])
def test_no_error_raised_or_let_through_carries_the_key(emulator: Emulator, connect, make_hook, error) -> None:
    hook = make_hook(adapter=FailingAdapter(error), max_attempts=2)

    with pytest.raises(HyperlineError) as raised:
        hook.send_events(make_events(1))
    ok, message = make_hook(connect("hyperline_check"), adapter=FailingAdapter(error)).test_connection()

    assert ok is False
    expected = HyperlineUnavailableError if error is requests.ConnectionError else HyperlineRequestError
    assert type(raised.value) is expected
    assert error.__name__ in str(raised.value) and error.__name__ in message
    for text in (rendered(raised.value), message):
        assert_no_secret(text)


# ----------------------------------------------------------------------------- logging


def test_logs_a_summary_and_never_the_key(
    emulator: Emulator, connect, make_hook, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.set_faults(Faults(script=("503", "429", "drop")))
    wrong = "test_wrong_secret_77"

    make_hook(batch_size=2).send_events(make_events(5))
    with pytest.raises(HyperlineAuthError) as raised:
        make_hook(connect("hyperline_wrong", password=wrong)).send_events(make_events(1))
    make_hook(connect("hyperline_wrong", password=wrong)).test_connection()

    captured = capfd.readouterr()
    summaries = [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "Hyperline sent" in r.getMessage()
    ]
    assert summaries and "5 accepted, 0 failed" in summaries[0] and "3 retries" in summaries[0]
    assert any("Hyperline batch 1: 2 events" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    for text in (caplog.text, captured.out, captured.err, str(raised.value)):
        assert KEY not in text
        assert wrong not in text
