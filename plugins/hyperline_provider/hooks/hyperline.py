"""HyperlineHook: the ``hyperline`` connection type, an HttpHook whose session a HyperlineClient drives.

HttpHook builds the session (base URL from host/schema/port, proxies, TLS options, keep-alive); this
hook adds the Bearer key and JSON headers to it, reads the connection's settings, and hands both to
:class:`~hyperline_provider.client.HyperlineClient`, which does the sending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from hyperline_provider.client import EventPage, EventQueries, HyperlineClient, RetryPolicy
from hyperline_provider.exceptions import (
    HyperlineAuthError,
    HyperlineError,
    HyperlineRequestError,
    HyperlineUnavailableError,
)
from hyperline_provider.limits import BATCH_ENDPOINT, LIST_ENDPOINT, MAX_BATCH_BYTES
from hyperline_provider.results import SendResult
from hyperline_provider.settings import HyperlineSettings, is_setting
from hyperline_provider.throttle import RateLimiter

# The errors and the result are re-exported: callers take them from the hook's module.
__all__ = ["HyperlineAuthError", "HyperlineHook", "HyperlineRequestError", "HyperlineUnavailableError", "SendResult"]

log = logging.getLogger(__name__)


class HyperlineHook(HttpHook):
    """Send usage events to Hyperline's ingest API.

    The connection (type ``hyperline``) holds the ingest URL in ``host`` (``https://ingest.hyperline.co``
    or ``https://sandbox.ingest.hyperline.co``) and the API key in ``password``; optional extras are
    ``batch_size`` (1-5000, default 5000), ``timeout`` (seconds, default 60) and ``max_requests_per_second``.
    Keyword arguments override the extras. One hook keeps one HTTP session and one rate limiter;
    ``send_events`` may run in several threads at once (their batches share both, and ``max_in_flight``
    applies to each call). Pass a shared ``rate_limiter`` to make several hooks of one process share a
    request budget.

    :param hyperline_conn_id: Airflow connection id.
    :param batch_size, timeout, max_requests_per_second: override the connection's extras.
    :param max_batch_bytes: bytes per request body, at most.
    :param max_attempts, max_retry_seconds, backoff_base, backoff_max: the :class:`RetryPolicy`.
    :param max_rate_limit_wait: cap of one wait Hyperline asks for (``Retry-After``, ``X-RateLimit-Reset``).
    :param rate_limiter: a :class:`RateLimiter` to share; overrides ``max_requests_per_second``.
    :param max_in_flight: batches sent concurrently; ``freeze_gc``: see :class:`HyperlineClient`.
    """

    conn_name_attr = "hyperline_conn_id"
    default_conn_name = "hyperline_default"
    conn_type = "hyperline"
    hook_name = "Hyperline"
    default_headers = {"Content-Type": "application/json", "Accept": "application/json"}

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
        if max_batch_bytes < 3:
            raise ValueError(f"max_batch_bytes must be >= 3, got {max_batch_bytes}")
        self.hyperline_conn_id = hyperline_conn_id
        self.retry_policy = RetryPolicy(max_attempts, max_retry_seconds, backoff_base, backoff_max, max_rate_limit_wait)
        self._overrides = dict(batch_size=batch_size, timeout=timeout, max_requests_per_second=max_requests_per_second)
        self.max_batch_bytes, self.rate_limiter = max_batch_bytes, rate_limiter
        self.max_in_flight, self.freeze_gc = max_in_flight, freeze_gc
        self.clock, self.sleep = time.monotonic, time.sleep  # seams: tests record waits instead
        self._client: HyperlineClient | None = None
        self._client_lock = threading.Lock()  # two sending threads must not build two sessions

    # ----------------------------------------------------------------- HttpHook's session, our auth
    def read_settings(self) -> HyperlineSettings:
        """The connection as typed settings (raises ``ValueError`` or :class:`HyperlineAuthError`)."""
        conn = self.get_connection(self.http_conn_id)
        self._set_base_url(conn)
        return HyperlineSettings.from_connection(conn, self.base_url, self._overrides)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """HttpHook's session for the connection, authenticated with ``Authorization: Bearer <key>``."""
        bearer = {"Authorization": f"Bearer {self.read_settings().api_key}"}
        return super().get_conn({**bearer, **(headers or {})}, extra_options)

    def _extract_auth(self, connection: Any) -> None:
        """No session auth: the key goes as a Bearer header; a stray login must not turn it into Basic auth."""
        return None

    def _configure_session_from_extra(
        self, session: requests.Session, connection: Any, extra_options: dict[str, Any]
    ) -> requests.Session:
        """HttpHook sends the extras it does not know as headers; the client's settings are not headers."""
        session = super()._configure_session_from_extra(session, connection, extra_options)
        for name in [name for name in session.headers if is_setting(name)]:
            del session.headers[name]
        return session

    # ----------------------------------------------------------------- the client
    @property
    def client(self) -> HyperlineClient:
        """The client over this hook's session, built on first use."""
        with self._client_lock:
            return self._client or self._build_client()

    def _build_client(self) -> HyperlineClient:
        settings = self.read_settings()
        session = self.get_conn()
        if settings.cleartext:
            log.warning("Connection '%s' sends the API key without TLS to %s", self.http_conn_id, settings.base_url)
        self._client = HyperlineClient(
            session, settings, conn_id=self.http_conn_id,
            batch_url=self.url_from_endpoint(BATCH_ENDPOINT), list_url=self.url_from_endpoint(LIST_ENDPOINT),
            max_batch_bytes=self.max_batch_bytes, rate_limiter=self.rate_limiter, retry_policy=self.retry_policy,
            max_in_flight=self.max_in_flight, freeze_gc=self.freeze_gc, clock=self.clock, sleep=self.sleep,
        )
        return self._client

    def send_events(self, events: Iterable[Mapping[str, Any]], *, prevalidated: bool = False) -> SendResult:
        """Validate, batch and send ``events``, consuming the iterable lazily (at most ``max_in_flight + 1``
        batches held).

        ``prevalidated=True`` is for callers whose events are valid by construction (the sync's transform
        applies the same rules): plain dicts holding exactly the four BillableEvent fields. The per-event
        check is then skipped; should one be invalid after all, Hyperline's refusal still isolates it by
        bisection and it fails as ``rejected_by_hyperline``.

        Returns a :class:`SendResult` where ``accepted + len(failed)`` equals the number of events given.
        Raises :class:`HyperlineAuthError`, :class:`HyperlineUnavailableError` or
        :class:`HyperlineRequestError`; the last two carry the partial result (``.result``, ``.delivered``).
        """
        return self.client.send_events(events, prevalidated=prevalidated)

    def list_events(self, event_type: str, **filters: Any) -> EventPage:
        """One page of ``GET /v1/events`` (filters: ``record_ids``, ``customer_id``, ``timestamp_gte``,
        ``timestamp_lte``, ``take``, ``skip``, ``sort``, ``order``), resent like a batch on 429/5xx. Hyperline
        ignores filters it does not know: check them on the page (``EventPage.unfiltered``)."""
        return EventQueries(self.client).list_events(event_type, **filters)

    def delete_events(self, record_ids: list[str]) -> int:
        """``DELETE /v1/events`` of every event of these record ids, 5,000 ids a request; the number deleted."""
        return EventQueries(self.client).delete_events(record_ids)

    def test_connection(self) -> tuple[bool, str]:
        """Check the URL and the key with a request any valid key may make; the message never holds the key."""
        try:
            return self.client.check()
        except (HyperlineError, ValueError) as exc:
            return False, str(exc)

    def close(self) -> None:
        """Close the HTTP session (a later send opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None
