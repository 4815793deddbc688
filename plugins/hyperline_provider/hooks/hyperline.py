"""HyperlineHook: stream usage events into Hyperline's ``POST /v1/events/batch``.

How each answer is handled (per request; a request carries one batch or, after bisection, part of one):

- 2xx whose body has ``events_created`` and ``events_failed`` lists: events listed in ``events_failed``
  (matched by ``record.id``) fail with ``rejected_by_hyperline``, the others are accepted. A 2xx with any
  other body is treated like a 5xx: Hyperline's answer cannot be trusted, so the batch is resent.
- 400, 413, 422: the batch is split in halves and each half resent, so one bad event cannot sink the
  others; a single event still refused fails with ``rejected_by_hyperline: <Hyperline's message>``.
- 401, 403: :class:`HyperlineAuthError` at once, never retried.
- 429: wait ``Retry-After`` (or until ``X-RateLimit-Reset``, or back off), then resend.
- 5xx, 408, timeouts, refused or dropped connections: resend with capped exponential backoff and jitter,
  bounded in attempts and in time; then :class:`HyperlineUnavailableError`.
- Any other status (404 on a wrong host, 405, 409...): :class:`HyperlineRequestError`, not retried. The
  request is wrong, not the events, so failing them into dead letters would hide the mistake.

Resending is safe because Hyperline upserts on ``record.id``; the hook never mints ids or alters events.
An ``X-RateLimit-Remaining: 0`` answer holds the next request until ``X-RateLimit-Reset`` (capped).
"""

from __future__ import annotations

import gc
import logging
import random
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from itertools import islice
from typing import Any, NamedTuple
from urllib.parse import urlparse

import orjson
import requests
import urllib3
from airflow.providers.http.hooks.http import HttpHook

from hyperline_provider import PRODUCTION_HOST, SANDBOX_HOST
from hyperline_provider.events import DUMPS_OPTIONS, validate_event, wire_event
from hyperline_provider.results import (
    FailedEvent,
    HyperlineAuthError,
    HyperlineError,
    HyperlineRequestError,
    HyperlineUnavailableError,
    SendResult,
)
from hyperline_provider.throttle import RateLimiter, parse_reset, parse_retry_after

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "FailedEvent",
    "HyperlineAuthError",
    "HyperlineError",
    "HyperlineHook",
    "HyperlineRequestError",
    "HyperlineUnavailableError",
    "SendResult",
]

log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 5000  # Hyperline's maxItems for /v1/events/batch
# Hyperline documents no byte limit; 5 MiB keeps a 5000-event batch of ordinary events whole while
# bounding memory and the cost of a resend. A 413 still works: the batch is bisected.
MAX_BATCH_BYTES = 5 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
BATCH_ENDPOINT = "v1/events/batch"
LIST_ENDPOINT = "v1/events"
OWN_EXTRAS = ("batch_size", "timeout", "max_requests_per_second")
_SPLIT_STATUSES = frozenset({400, 413, 422})
_RETRY_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class _GiveUp(Exception):
    """Raised while sending a batch; ``send_events`` turns it into the public error with overall counts."""

    def __init__(self, detail: str, status: int | None = None, auth: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        # None: unavailable (retries spent); a status: the key (auth) or the request was refused
        self.status = status
        self.auth = auth
        self.partial = SendResult()


class _Answer(NamedTuple):
    """What one request settled: ``failed_ids`` for a 2xx, otherwise the refusal's status and message."""

    status: int
    failed_ids: set[str] | None
    unattributed: int
    message: str


class HyperlineHook(HttpHook):
    """Send usage events to Hyperline's ingest API.

    The connection (type ``hyperline``) holds the ingest URL in ``host`` (``https://ingest.hyperline.co``
    or ``https://sandbox.ingest.hyperline.co``) and the API key in ``password``; optional extras are
    ``batch_size`` (1-5000, default 5000), ``timeout`` (seconds, default 60) and ``max_requests_per_second``.
    Keyword arguments override the extras. One hook keeps one HTTP session; use one hook per thread, and
    pass a shared ``rate_limiter`` to make several hooks of one process share a request budget.

    :param hyperline_conn_id: Airflow connection id.
    :param batch_size: events per request, at most 5000.
    :param max_batch_bytes: bytes per request body, at most.
    :param timeout: seconds per request.
    :param max_requests_per_second: client-side request rate limit.
    :param max_attempts: attempts per request (first one included) before giving up.
    :param max_retry_seconds: time budget per request, waits included, before giving up.
    :param backoff_base: first backoff delay in seconds; doubles per attempt, with jitter.
    :param backoff_max: cap of one backoff delay.
    :param max_rate_limit_wait: cap of one wait for ``X-RateLimit-Reset``.
    :param rate_limiter: a :class:`RateLimiter` to share; overrides ``max_requests_per_second``.
    :param max_in_flight: batches sent concurrently. Above 1, batches may land out of order, which only
        matters if one call holds two versions of a ``record.id`` (Hyperline keeps the last one it gets).
    :param freeze_gc: exempt pre-existing objects from cyclic GC during a send (see ``_gc_frozen``).
    """

    conn_name_attr = "hyperline_conn_id"
    default_conn_name = "hyperline_default"
    conn_type = "hyperline"
    hook_name = "Hyperline"

    def __init__(
        self,
        hyperline_conn_id: str = default_conn_name,
        *,
        batch_size: int | None = None,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        timeout: float | None = None,
        max_requests_per_second: float | None = None,
        max_attempts: int = 8,
        max_retry_seconds: float = 300.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_rate_limit_wait: float = 60.0,
        rate_limiter: RateLimiter | None = None,
        max_in_flight: int = 2,
        freeze_gc: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="POST", http_conn_id=hyperline_conn_id, **kwargs)
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if max_batch_bytes < 3:
            raise ValueError(f"max_batch_bytes must be >= 3, got {max_batch_bytes}")
        self.hyperline_conn_id = hyperline_conn_id
        self.max_batch_bytes = max_batch_bytes
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_rate_limit_wait = max_rate_limit_wait
        self._overrides = {
            "batch_size": batch_size,
            "timeout": timeout,
            "max_requests_per_second": max_requests_per_second,
        }
        self._rate_limiter = rate_limiter
        self.freeze_gc = freeze_gc
        self.max_in_flight = max_in_flight
        # Until Hyperline has accepted the key once, batches go one at a time: a wrong key then costs
        # exactly one request, not one per batch in flight.
        self._key_accepted = False
        self._session: requests.Session | None = None
        self._api_key = ""
        self.batch_size = MAX_BATCH_EVENTS
        self.timeout = DEFAULT_TIMEOUT
        self._random = random.Random()
        # Seams for tests: replace to record waits without waiting.
        self._sleep = time.sleep
        self._clock = time.monotonic

    # ----------------------------------------------------------------- connection
    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return a session for the connection, authenticated with ``Authorization: Bearer <key>``."""
        session = super().get_conn(headers, extra_options)
        # HttpHook turns every unknown extra into a header; ours are settings, not headers.
        for name in list(session.headers):
            if name.lower() in OWN_EXTRAS or name.lower().startswith("extra__"):
                del session.headers[name]
        session.auth = None  # a stray login would make requests replace Bearer with Basic auth
        password = self.get_connection(self.http_conn_id).password
        if password:
            session.headers["Authorization"] = f"Bearer {password}"
        session.headers["Content-Type"] = "application/json"
        session.headers["Accept"] = "application/json"
        return session

    def _ready(self) -> requests.Session:
        """Read the connection and open the session, once per hook."""
        if self._session is not None:
            return self._session
        conn = self.get_connection(self.http_conn_id)
        if not conn.host:
            raise ValueError(
                f"Connection '{self.http_conn_id}' has no host: set it to {PRODUCTION_HOST} (production) "
                f"or {SANDBOX_HOST} (sandbox)."
            )
        extra = conn.extra_dejson
        self.batch_size = self._setting(extra, "batch_size", int, MAX_BATCH_EVENTS)
        if not 1 <= self.batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(
                f"Connection '{self.http_conn_id}': batch_size must be 1-{MAX_BATCH_EVENTS}, got {self.batch_size}"
            )
        self.timeout = self._setting(extra, "timeout", float, DEFAULT_TIMEOUT)
        rate = self._setting(extra, "max_requests_per_second", float, None)
        if self._rate_limiter is None:
            self._rate_limiter = RateLimiter(rate)
        self._api_key = conn.password or ""
        session = self.get_conn()
        if not self._api_key:
            session.close()
            raise HyperlineAuthError(self._auth_message(None, "no request sent"))
        if urlparse(self.base_url).scheme != "https" and urlparse(self.base_url).hostname not in (
            "127.0.0.1",
            "localhost",
            "::1",
        ):
            log.warning("Connection '%s' sends the API key without TLS to %s", self.http_conn_id, self.base_url)
        self._session = session
        return session

    def _setting(self, extra: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
        value = self._overrides.get(name)
        if value is None:
            value = extra.get(name)
        if value in (None, ""):
            value = extra.get(f"extra__{self.conn_type}__{name}")  # key used by older connection forms
        if value in (None, ""):
            return default
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"Connection '{self.http_conn_id}': {name} must be a {kind.__name__}, got {value!r}"
            ) from None

    def close(self) -> None:
        """Close the HTTP session (a later send opens a new one)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def test_connection(self) -> tuple[bool, str]:
        """Check the URL and the key with ``GET /v1/events?take=1``; the message never holds the key."""
        try:
            session = self._ready()
            response = session.get(self.url_from_endpoint(LIST_ENDPOINT), params={"take": 1}, timeout=self.timeout)
        except HyperlineError as exc:
            return False, str(exc)
        except requests.RequestException as exc:
            return False, f"Cannot reach Hyperline at {self.base_url}: {type(exc).__name__}"
        except ValueError as exc:
            return False, str(exc)
        if response.status_code in (401, 403):
            return False, self._auth_message(response.status_code, self._message(response.content, response.reason))
        if 200 <= response.status_code < 300:
            return True, f"Connected to {self.base_url}; the API key was accepted."
        message = self._message(response.content, response.reason)
        return False, f"Hyperline at {self.base_url} answered HTTP {response.status_code}: {message}"

    # ----------------------------------------------------------------- sending
    def send_events(self, events: Iterable[Mapping[str, Any]], *, prevalidated: bool = False) -> SendResult:
        """Validate, batch and send ``events``, consuming the iterable lazily.

        Up to ``max_in_flight`` batches are on the wire (worker threads) while the next one is validated
        and serialised, so at most ``max_in_flight + 1`` batches of events are held at once.

        ``prevalidated=True`` is for callers whose events are valid by construction (the sync's transform
        applies the same rules): plain dicts holding exactly the four BillableEvent fields. The
        per-event check is then skipped; should one be invalid after all, Hyperline's refusal still
        isolates it by bisection and it fails as ``rejected_by_hyperline``.

        Returns a :class:`SendResult` where ``accepted + len(failed)`` equals the number of events given.
        Raises :class:`HyperlineAuthError`, :class:`HyperlineUnavailableError` or
        :class:`HyperlineRequestError`; the last two carry the partial result (``.result``, ``.delivered``).
        """
        session = self._ready()
        result = SendResult()
        started = self._clock()
        outcome = "stopped"
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="hyperline-send")
        pending: deque[Future[SendResult]] = deque()
        groups = _slices(events, self.batch_size) if prevalidated else self._validated(events, result)
        try:
            with _gc_frozen() if self.freeze_gc else nullcontext():
                for group in groups:
                    for batch in self._encoded(group, result):
                        result.batches += 1
                        while len(pending) >= (self.max_in_flight if self._key_accepted else 1):
                            self._settle(pending, result)
                        pending.append(pool.submit(self._deliver_batch, session, result.batches, batch))
                while pending:
                    self._settle(pending, result)
            outcome = "sent"
        finally:
            # On an error (ours or the caller's iterable), let in-flight batches finish rather than
            # abandon requests half-sent; resending them later is safe anyway.
            pool.shutdown(wait=True, cancel_futures=True)
            result.seconds = self._clock() - started
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
        self._drain(pending, result)
        if failure.auth:
            raise HyperlineAuthError(failure.detail)
        delivered = f"{result.accepted} events were delivered before"
        if failure.status is None:
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

    @staticmethod
    def _drain(pending: deque[Future[SendResult]], result: SendResult) -> None:
        while pending:
            try:
                result.absorb(pending.popleft().result())
            except _GiveUp as other:  # the first error is the one reported
                result.absorb(other.partial)

    def _validated(self, events: Iterable[Mapping[str, Any]], result: SendResult) -> Iterator[_Batch]:
        """Groups of at most ``batch_size`` valid events, each with what goes on the wire for it (its
        four fields); invalid events go to ``result.failed``."""
        batch_size, failed = self.batch_size, result.failed
        originals: list[Mapping[str, Any]] = []
        wire: list[dict[str, Any]] = []
        for event in events:
            reason = validate_event(event)
            if reason is not None:
                failed.append(FailedEvent(event, reason))
                continue
            originals.append(event)
            wire.append(event if type(event) is dict and len(event) == 4 else wire_event(event))
            if len(wire) == batch_size:
                yield _Batch(originals, wire)
                originals, wire = [], []
        if wire:
            yield _Batch(originals, wire)

    def _encoded(self, batch: _Batch, result: SendResult) -> Iterator[_Batch]:
        """``batch`` with its JSON body, halved until each body fits ``max_batch_bytes``; an event that
        cannot be encoded, or alone exceeds the cap, goes to ``result.failed``."""
        try:
            body = orjson.dumps(batch.wire, option=DUMPS_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            batch = _encodable(batch, result)
            if not batch.wire:
                return
            body = orjson.dumps(batch.wire, option=DUMPS_OPTIONS)
        if len(body) <= self.max_batch_bytes:
            yield batch._replace(body=body)
        elif len(batch.wire) == 1:
            reason = f"invalid_event: {len(body) - 2} bytes encoded, over the {self.max_batch_bytes}-byte request cap"
            result.failed.append(FailedEvent(batch.events[0], reason))
        else:
            first, second = batch.halves()
            yield from self._encoded(first, result)
            yield from self._encoded(second, result)

    def _deliver_batch(self, session: requests.Session, number: int, batch: _Batch) -> SendResult:
        """Send one batch (in the worker thread); return its own counts."""
        counts = SendResult()
        try:
            self._deliver(session, batch, counts)
        except _GiveUp as stop:
            stop.partial = counts
            raise
        log.debug(
            "Hyperline batch %d: %d events, %d bytes -> %d accepted, %d failed, %d requests",
            number,
            len(batch.events),
            len(batch.body),
            counts.accepted,
            len(counts.failed),
            counts.requests,
        )
        return counts

    def _deliver(self, session: requests.Session, batch: _Batch, result: SendResult) -> None:
        """Send one batch; on 400/413/422 bisect until the refused events are isolated."""
        events = batch.events
        body = batch.body if batch.body is not None else orjson.dumps(batch.wire, option=DUMPS_OPTIONS)
        answer = self._post(session, body, len(events), result)
        if answer.failed_ids is not None:
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
        if len(events) == 1:
            reason = f"rejected_by_hyperline: {answer.message}"
            if answer.status != 400:
                reason = f"rejected_by_hyperline: HTTP {answer.status}: {answer.message}"
            result.failed.append(FailedEvent(events[0], reason))
            return
        log.debug("Hyperline answered %d to %d events: splitting the batch", answer.status, len(events))
        for half in batch.halves():
            self._deliver(session, half, result)

    def _post(self, session: requests.Session, body: bytes, count: int, result: SendResult) -> _Answer:
        """POST one body, retrying what is retryable; return the 2xx answer or a splitting refusal."""
        url = self.url_from_endpoint(BATCH_ENDPOINT)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:
                result.retries += 1
            assert self._rate_limiter is not None
            wait = self._rate_limiter.reserve()
            if wait > 0:
                self._sleep(wait)
            result.requests += 1
            try:
                response = session.post(url, data=body, timeout=self.timeout, stream=True)
                content = _read_all(response)
            except _RETRY_EXCEPTIONS as exc:
                problem = type(exc).__name__
                delay = self._backoff(attempt)
            else:
                status = response.status_code
                self._hold_if_exhausted(response)
                if 200 <= status < 300:
                    parsed = _parse_batch_answer(content)
                    if parsed is not None:
                        self._key_accepted = True
                        return _Answer(status, parsed[0], parsed[1], "")
                    problem = f"HTTP {status} without events_created/events_failed lists"
                    delay = self._backoff(attempt)
                elif status in _SPLIT_STATUSES:
                    return _Answer(status, None, 0, self._message(content, response.reason))
                elif status in (401, 403):
                    message = self._auth_message(status, self._message(content, response.reason))
                    raise _GiveUp(message, status, auth=True)
                elif status == 429:
                    problem = "HTTP 429 (rate limited)"
                    delay = self._rate_limit_delay(response, attempt)
                elif status >= 500 or status == 408:
                    problem = f"HTTP {status}: {self._message(content, response.reason)}"
                    delay = self._backoff(attempt)
                else:
                    message = self._message(content, response.reason)
                    raise _GiveUp(f"Hyperline at {url} answered HTTP {status}: {message}", status)
            elapsed = self._clock() - started
            if attempt >= self.max_attempts or elapsed + delay > self.max_retry_seconds:
                raise _GiveUp(
                    f"gave up on a request of {count} events after {attempt} attempts in {elapsed:.1f}s "
                    f"(last: {problem})"
                )
            log.debug("Hyperline request failed (%s), attempt %d: retrying in %.2fs", problem, attempt, delay)
            self._sleep(delay)

    # ----------------------------------------------------------------- pacing
    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so waits still grow."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay / 2 + self._random.uniform(0, delay / 2)

    def _rate_limit_delay(self, response: requests.Response, attempt: int) -> float:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            return retry_after
        reset = parse_reset(response.headers.get("X-RateLimit-Reset"))
        if reset is not None:
            return min(reset, self.max_rate_limit_wait)
        return self._backoff(attempt)

    def _hold_if_exhausted(self, response: requests.Response) -> None:
        """After an answer saying the budget is spent, hold the next request until the reset time."""
        if response.headers.get("X-RateLimit-Remaining", "").strip() != "0" or response.status_code == 429:
            return
        reset = parse_reset(response.headers.get("X-RateLimit-Reset"))
        if reset:
            wait = min(reset, self.max_rate_limit_wait)
            log.debug("Hyperline rate-limit budget spent: holding requests %.2fs", wait)
            assert self._rate_limiter is not None
            self._rate_limiter.hold_for(wait)

    # ----------------------------------------------------------------- messages
    def _message(self, content: bytes, reason: str | None) -> str:
        """Hyperline's error ``message`` (or the start of the body), with the key scrubbed out."""
        text = ""
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            message = body.get("message")
            if isinstance(message, list):
                text = "; ".join(str(m) for m in message)
            elif message is not None:
                text = str(message)
        if not text:
            text = content[:200].decode("utf-8", "replace").strip() or reason or "no message"
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _auth_message(self, status: int | None, server_message: str) -> str:
        """Explain a refused key without printing it: which prefix it has, which environment the host is."""
        conn_id = self.http_conn_id
        host = (self.base_url or "").rstrip("/")
        key = self._api_key
        head = f"Hyperline refused the API key of connection '{conn_id}'"
        head += f" (HTTP {status}: {server_message})." if status else f" ({server_message})."
        if not key:
            return f"{head} The connection has no API key: put it in the password (API key) field."
        environment = {PRODUCTION_HOST: "production", SANDBOX_HOST: "sandbox"}.get(host)
        prefix = next((p for p in ("prod_", "test_") if key.startswith(p)), None)
        advice = " The API key is missing, invalid, revoked or for the other environment."
        if prefix == "test_" and environment == "production":
            advice += (
                f" It starts with 'test_' (a sandbox key) but the host is production ({host}): "
                f"use {SANDBOX_HOST}, or a prod_ key."
            )
        elif prefix == "prod_" and environment == "sandbox":
            advice += (
                f" It starts with 'prod_' (a production key) but the host is the sandbox ({host}): "
                f"use {PRODUCTION_HOST}, or a test_ key."
            )
        elif prefix is None:
            advice += " It starts with neither 'prod_' nor 'test_', as Hyperline keys do."
        else:
            where = f"the {environment} host" if environment else "host"
            advice += f" It starts with '{prefix}', which fits {where} {host}: check it was not revoked."
        return head + advice


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Exempt the objects that exist before a send from cyclic GC passes during it.

    Each batch keeps thousands of event dicts alive long enough to reach the oldest generation, which
    triggers full collections; in a process holding Airflow's ~200k objects those cost more than
    validating the events. Freezing (``gc.freeze``) skips the pre-existing objects in those passes while
    garbage made during the send is still collected; ``gc.unfreeze`` restores them at the end. Left
    alone when something else already froze objects (e.g. a pre-fork freeze), which has the same effect.
    """
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while parsing an answer.

    Parsing 5000 echoed events makes ~10k containers at once; in a process holding Airflow's ~200k
    objects that triggers full collections which cost 3x the parse itself. The parsed tree has no
    cycles and is dropped right after, so nothing is lost by not scanning it.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_all(response: requests.Response) -> bytes:
    """Read a streamed answer in one call (requests reads 10 KB at a time, which costs ~3x the CPU
    on 650 KB answers) and give the connection back for keep-alive. A broken read counts as a
    dropped connection."""
    try:
        content = response.raw.read(decode_content=True)
    except urllib3.exceptions.HTTPError as exc:
        response.close()
        raise requests.ConnectionError(f"answer cut short: {type(exc).__name__}") from exc
    response.raw.release_conn()
    return content


def _parse_batch_answer(content: bytes) -> tuple[set[str], int] | None:
    """``(ids in events_failed, failed entries without an id)``, or None if the body is not the answer."""
    with _gc_paused():
        return _read_batch_answer(content)  # the parsed tree is freed before the GC resumes


class _Batch(NamedTuple):
    """Events as the caller gave them, what is sent for each (``wire``: four-field dicts, the same
    objects when the caller's already are), and the JSON body of ``wire`` once encoded."""

    events: list[Mapping[str, Any]]
    wire: list[dict[str, Any]]
    body: bytes | None = None

    def halves(self) -> tuple[_Batch, _Batch]:
        middle = len(self.wire) // 2
        return (
            _Batch(self.events[:middle], self.wire[:middle]),
            _Batch(self.events[middle:], self.wire[middle:]),
        )


def _slices(events: Iterable[Mapping[str, Any]], size: int) -> Iterator[_Batch]:
    """Groups of ``size`` prevalidated events; their wire form is the events themselves."""
    iterator = iter(events)
    while group := list(islice(iterator, size)):
        yield _Batch(group, group)


def _encodable(batch: _Batch, result: SendResult) -> _Batch:
    """``batch`` without the events orjson cannot encode (non-string keys, huge ints), which fail."""
    events: list[Mapping[str, Any]] = []
    wire: list[dict[str, Any]] = []
    for event, sent in zip(batch.events, batch.wire, strict=True):
        try:
            orjson.dumps(sent, option=DUMPS_OPTIONS)
        except (orjson.JSONEncodeError, TypeError) as exc:
            result.failed.append(FailedEvent(event, f"invalid_event: not JSON-serialisable ({exc})"))
            continue
        events.append(event)
        wire.append(sent)
    return _Batch(events, wire)


def _failed_member(content: bytes) -> list[Any] | None:
    """``events_failed`` of an answer whose last member it is, parsing only that member; else None.

    The answer echoes every created event: parsing it all costs ~10x what encoding the batch did,
    with the GIL held, and only ``events_failed`` is needed. ``{`` + the text from the last
    ``"events_failed"`` parses only when that key is the top-level object's last member: an
    occurrence nested in a created event leaves that event's and the array's closers unmatched.
    """
    at = content.rfind(b'"events_failed"')
    if at < 1 or content.find(b'"events_created"', 0, at) < 0:
        return None
    try:
        tail = orjson.loads(b"{" + content[at:])
    except orjson.JSONDecodeError:
        return None
    failed = tail.get("events_failed") if type(tail) is dict and len(tail) == 1 else None
    return failed if type(failed) is list else None


def _read_batch_answer(content: bytes) -> tuple[set[str], int] | None:
    failed = _failed_member(content)
    if failed is None:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        created, failed = body.get("events_created"), body.get("events_failed")
        if not isinstance(created, list) or not isinstance(failed, list):
            return None
    ids: set[str] = set()
    unattributed = 0
    for item in failed:
        record = item.get("record") if isinstance(item, dict) else None
        record_id = record.get("id") if isinstance(record, dict) else None
        if isinstance(record_id, str):
            ids.add(record_id)
        else:
            unattributed += 1
    return ids, unattributed
