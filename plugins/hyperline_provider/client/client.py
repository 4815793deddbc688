"""HyperlineClient: stream usage events into Hyperline's ``POST /v1/events/batch``.

How each answer is handled (per request; a request carries one batch or, after bisection, part of one):

- 2xx whose body has ``events_created`` and ``events_failed`` lists: events listed in ``events_failed``
  (matched by ``record.id``) fail with ``rejected_by_hyperline``, the others are accepted. A 2xx with any
  other body is treated like a 5xx: Hyperline's answer cannot be trusted, so the batch is resent.
- 400, 413, 422: the batch is split in halves and each half resent, so one bad event cannot sink the
  others; a single event still refused fails with ``rejected_by_hyperline: <Hyperline's message>``.
- 401, 403: :class:`HyperlineAuthError` at once, never retried; the client sends nothing more with that
  key (a closed hook's next client reads the connection again).
- 429, 5xx, 408, timeouts, refused or dropped connections: resent after the wait the
  :class:`RetryPolicy` gives (backoff with jitter, ``Retry-After`` honoured), bounded in attempts and
  in time; then :class:`HyperlineUnavailableError`.
- Any other status (404 on a wrong host, 405, 409...), or a request that cannot be made:
  :class:`HyperlineRequestError`, not retried. The request is wrong, not the events, so failing them
  into dead letters would hide the mistake.

Resending is safe because Hyperline upserts on ``record.id``; the client never mints ids or alters events.
An ``X-RateLimit-Remaining: 0`` answer holds the next request until ``X-RateLimit-Reset`` (capped).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import requests

from hyperline_provider.client.answers import Answer, Kind, classify, error_message
from hyperline_provider.client.batching import Batch, encoded, slices, validated
from hyperline_provider.client.messages import auth_message
from hyperline_provider.client.retry import RetryPolicy
from hyperline_provider.client.transport import Dropped, Transport, Unsendable
from hyperline_provider.exceptions import HyperlineAuthError, HyperlineRequestError, HyperlineUnavailableError
from hyperline_provider.limits import MAX_BATCH_BYTES
from hyperline_provider.results import FailedEvent, SendResult
from hyperline_provider.throttle import RateLimiter

if TYPE_CHECKING:
    from hyperline_provider.settings import HyperlineSettings

log = logging.getLogger(__name__)

# GET /v1/events requires an event_type; one no pipeline sends makes the check cheap for any valid key.
CONNECTION_TEST_EVENT_TYPE = "airflow_hyperline_connection_test"


class _GiveUp(Exception):
    """Raised while sending a batch; ``send_events`` turns it into the public error with overall counts."""

    def __init__(self, detail: str, status: int | None = None, auth: bool = False, answered: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        # status None: unavailable (retries spent) if answered, else the request could not be made
        self.status = status
        self.auth = auth
        self.answered = answered
        self.partial = SendResult()


class HyperlineClient:
    """Validate, batch and send events over one session, as ``settings`` say.

    ``send_events`` may run in several threads at once: the calls share the session, the rate limiter
    and what the client knows of the key (see ``_key_accepted``); ``max_in_flight`` applies to each call.

    :param batch_url: URL of ``POST /v1/events/batch``; ``list_url`` of ``GET /v1/events``.
    :param max_in_flight: batches sent concurrently. Above 1, batches may land out of order, which only
        matters if one call holds two versions of a ``record.id`` (Hyperline keeps the last one it gets).
    :param freeze_gc: exempt pre-existing objects from cyclic GC during a send (see ``_gc_frozen``).
    :param clock, sleep: time seams (tests record waits instead of waiting).
    """

    def __init__(
        self,
        session: requests.Session,
        settings: HyperlineSettings,
        *,
        conn_id: str,
        batch_url: str,
        list_url: str,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        rate_limiter: RateLimiter | None = None,
        retry_policy: RetryPolicy | None = None,
        max_in_flight: int = 2,
        freeze_gc: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = Transport(session, settings.timeout, settings.api_key)
        self.settings, self.conn_id, self.base_url = settings, conn_id, settings.base_url
        self.batch_url, self.list_url = batch_url, list_url
        self.batch_size, self.max_batch_bytes = settings.batch_size, max_batch_bytes
        self.rate_limiter = rate_limiter or RateLimiter(settings.max_requests_per_second)
        self.policy = retry_policy or RetryPolicy()
        self.max_in_flight, self.freeze_gc = max_in_flight, freeze_gc
        self.clock, self.sleep = clock, sleep
        # Until Hyperline has accepted the key once, batches go one at a time, also across the threads
        # calling send_events; a key it refused is not tried again. A wrong key then costs exactly one
        # request, not one per batch in flight.
        self._key_accepted = False
        self._key_trial = threading.Lock()
        self._key_refusal: tuple[str, int | None] | None = None  # the refusal's message and status

    # ----------------------------------------------------------------- connection check
    def check(self) -> tuple[bool, str]:
        """Check the URL and the key with a listing every valid key may make; the message never holds the key."""
        params = {"event_type": CONNECTION_TEST_EVENT_TYPE, "take": 0}
        try:
            reply = self.transport.get(self.list_url, params)
        except Dropped as exc:
            return False, f"Cannot reach Hyperline at {self.base_url}: {exc}"
        except Unsendable as exc:
            return False, f"Cannot send a request to Hyperline at {self.base_url}: {exc}"
        message = self.transport.redact(error_message(reply.content, reply.reason))
        if reply.status in (401, 403):
            return False, self._auth_message(reply.status, message)
        if 200 <= reply.status < 300:
            return True, f"Connected to {self.base_url}; the API key was accepted."
        return False, f"Hyperline at {self.base_url} answered HTTP {reply.status}: {message}"

    def _auth_message(self, status: int | None, server_message: str) -> str:
        return auth_message(self.conn_id, self.base_url, self.settings.api_key, status, server_message)

    # ----------------------------------------------------------------- sending
    def send_events(self, events: Iterable[Mapping[str, Any]], *, prevalidated: bool = False) -> SendResult:
        """Validate, batch and send ``events``, consuming the iterable lazily (see ``HyperlineHook.send_events``).

        Up to ``max_in_flight`` batches are on the wire (worker threads) while the next one is validated
        and serialised, so at most ``max_in_flight + 1`` batches of events are held at once.
        """
        result = SendResult()
        started = self.clock()
        outcome = "stopped"
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="hyperline-send")
        pending: deque[Future[SendResult]] = deque()
        size = self.batch_size
        groups = slices(events, size) if prevalidated else validated(events, size, result)
        try:
            with _gc_frozen() if self.freeze_gc else nullcontext():
                for group in groups:
                    for batch in encoded(group, self.max_batch_bytes, result):
                        result.batches += 1
                        while len(pending) >= (self.max_in_flight if self._key_accepted else 1):
                            self._settle(pending, result)
                        pending.append(pool.submit(self._deliver_batch, result.batches, batch))
                while pending:
                    self._settle(pending, result)
            outcome = "sent"
        finally:
            # On an error (ours or the caller's iterable), let in-flight batches finish rather than
            # abandon requests half-sent; resending them later is safe anyway.
            pool.shutdown(wait=True, cancel_futures=True)
            result.seconds = self.clock() - started
            log.info(
                "Hyperline %s: %d batches, %d accepted, %d failed, %d requests, %d retries in %.2fs",
                outcome,
                result.batches,
                result.accepted,
                len(result.failed),
                result.requests,
                result.retries,
                result.seconds,
            )
        return result

    def _settle(self, pending: deque[Future[SendResult]], result: SendResult) -> None:
        """Wait for the oldest batch and add its outcome to ``result``.

        When it gave up, first wait for the other in-flight batches too, so that ``delivered`` in the
        error counts every acknowledged event, then raise the public error.
        """
        try:
            result.absorb(pending.popleft().result())
            return
        except _GiveUp as stop:
            result.absorb(stop.partial)
            failure = stop
        while pending:
            try:
                result.absorb(pending.popleft().result())
            except _GiveUp as other:  # the first error is the one reported
                result.absorb(other.partial)
        if failure.auth:
            raise HyperlineAuthError(failure.detail)
        delivered = f"{result.accepted} events were delivered before"
        if failure.status is None and failure.answered:
            raise HyperlineUnavailableError(
                f"Hyperline at {self.base_url} unavailable: {failure.detail}. {delivered} giving up; "
                "resending them is safe.",
                result,
            )
        raise HyperlineRequestError(
            f"{failure.detail}. Not retried: check the connection's host. {delivered} this.",
            result,
            failure.status,
        )

    def _deliver_batch(self, number: int, batch: Batch) -> SendResult:
        """Send one batch (in the worker thread); return its own counts."""
        counts = SendResult()
        try:
            self._deliver(batch, counts)
        except _GiveUp as stop:
            stop.partial = counts
            raise
        log.debug(
            "Hyperline batch %d: %d events, %d bytes -> %d accepted, %d failed, %d requests",
            number,
            len(batch.events),
            len(batch.body or b""),
            counts.accepted,
            len(counts.failed),
            counts.requests,
        )
        return counts

    def _deliver(self, batch: Batch, result: SendResult) -> None:
        """Send one batch; on 400/413/422 bisect until the refused events are isolated."""
        events = batch.events
        answer = self._post(batch.encoded(), len(events), result)
        if answer.kind is Kind.ACKNOWLEDGED:
            if answer.unattributed:
                # Hyperline failed events it did not name: which ones is unknown, so none is counted
                # as accepted. Dead-lettered events can be resent safely (upsert on record.id).
                reason = "rejected_by_hyperline: events_failed entry without record.id; batch outcome unknown"
                result.failed.extend(FailedEvent(event, reason) for event in events)
            elif answer.failed_ids:
                for event, sent in zip(events, batch.wire, strict=True):
                    if sent["record"]["id"] in answer.failed_ids:
                        result.failed.append(FailedEvent(event, "rejected_by_hyperline"))
                    else:
                        result.accepted += 1
            else:
                result.accepted += len(events)
            return
        message = self.transport.redact(answer.message)
        if len(events) == 1:
            reason = f"rejected_by_hyperline: {message}"
            if answer.status != 400:
                reason = f"rejected_by_hyperline: HTTP {answer.status}: {message}"
            result.failed.append(FailedEvent(events[0], reason))
            return
        log.debug("Hyperline answered %d to %d events: splitting the batch", answer.status, len(events))
        for half in batch.halves():
            self._deliver(half, result)

    def _post(self, body: bytes, count: int, result: SendResult) -> Answer:
        """POST one body, resending what is worth resending; return an ACKNOWLEDGED or SPLIT answer."""
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:
                result.retries += 1
            wait = self.rate_limiter.reserve()
            if wait > 0:
                self.sleep(wait)
            with nullcontext() if self._key_accepted else self._key_trial:
                answer, problem, delay = self._attempt(body, attempt, result)
            if answer is not None:
                return answer
            elapsed = self.clock() - started
            if self.policy.gives_up(attempt, elapsed, delay):
                raise _GiveUp(
                    f"gave up on a request of {count} events after {attempt} attempts in {elapsed:.1f}s "
                    f"(last: {problem})"
                )
            log.debug("Hyperline request failed (%s), attempt %d: retrying in %.2fs", problem, attempt, delay)
            self.sleep(delay)

    def _attempt(self, body: bytes, attempt: int, result: SendResult) -> tuple[Answer | None, str, float]:
        """One POST: (an ACKNOWLEDGED or SPLIT answer, "", 0) or (None, the problem, the wait before resending)."""
        if self._key_refusal is not None:  # refused to an earlier request of this client: not tried again
            raise _GiveUp(*self._key_refusal, auth=True)
        result.requests += 1
        try:
            reply = self.transport.post(self.batch_url, body)
        except Dropped as exc:
            return None, str(exc), self.policy.delay(None, {}, attempt)
        except Unsendable as exc:
            raise _GiveUp(f"Cannot send a request to Hyperline at {self.base_url}: {exc}", answered=False) from None
        answer = classify(reply)
        if answer.kind is not Kind.RATE_LIMITED:
            self._hold_if_exhausted(reply.headers)
        if answer.kind in (Kind.ACKNOWLEDGED, Kind.SPLIT):
            self._key_accepted = self._key_accepted or answer.kind is Kind.ACKNOWLEDGED
            return answer, "", 0.0
        message = self.transport.redact(answer.message)
        if answer.kind is Kind.AUTH:
            self._key_refusal = self._auth_message(answer.status, message), answer.status
            raise _GiveUp(*self._key_refusal, auth=True)
        if answer.kind is Kind.REFUSED:
            raise _GiveUp(f"Hyperline at {self.batch_url} answered HTTP {answer.status}: {message}", answer.status)
        return None, self.transport.redact(answer.problem), self.policy.delay(answer.kind, reply.headers, attempt)

    def _hold_if_exhausted(self, headers: Mapping[str, str]) -> None:
        """After an answer saying the budget is spent, hold the next request until the reset time."""
        hold = self.policy.hold(headers)
        if hold:
            log.debug("Hyperline rate-limit budget spent: holding requests %.2fs", hold)
            self.rate_limiter.hold_for(hold)

    def close(self) -> None:
        self.transport.close()


_freeze_lock = threading.Lock()
_freezing_sends = 0  # sends under way that froze the heap (guarded by _freeze_lock)


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Exempt the objects that exist before a send from cyclic GC passes during it.

    Each batch keeps thousands of event dicts alive long enough to reach the oldest generation, which
    triggers full collections; in a process holding Airflow's ~200k objects those cost more than
    validating the events. Freezing (``gc.freeze``) skips the pre-existing objects in those passes while
    garbage made during the send is still collected; ``gc.unfreeze`` restores them once no send is under
    way (sends of several threads overlap: a send starting during another freezes the newer objects
    too, and the last to end unfreezes). Left alone when something else already froze objects (e.g. a
    pre-fork freeze), which has the same effect.
    """
    global _freezing_sends
    with _freeze_lock:
        ours = gc.isenabled() and (_freezing_sends > 0 or not gc.get_freeze_count())
        if ours:
            gc.freeze()
            _freezing_sends += 1
    if not ours:
        yield
        return
    try:
        yield
    finally:
        with _freeze_lock:
            _freezing_sends -= 1
            if not _freezing_sends:
                gc.unfreeze()
