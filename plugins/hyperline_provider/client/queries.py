"""Reading and deleting stored events: ``GET /v1/events`` and ``DELETE /v1/events``.

Each call is one request, resent like a batch (``RetryPolicy``: 429, 5xx, 408, dropped connections,
a 2xx whose body is not the expected answer) and paced by the client's rate limiter, so a
reconcile's requests count against the same budget as its sends. Hyperline ignores query
parameters it does not know and answers the unfiltered list: a caller checks every filter on the
page it gets (``EventPage.unfiltered``) before trusting it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from hyperline_provider.client.answers import Kind, Reply, classify, error_message
from hyperline_provider.client.transport import Dropped, Unsendable
from hyperline_provider.exceptions import HyperlineAuthError, HyperlineRequestError, HyperlineUnavailableError
from hyperline_provider.limits import MAX_BATCH_EVENTS, MAX_TAKE
from hyperline_provider.results import SendResult

if TYPE_CHECKING:
    from hyperline_provider.client.client import HyperlineClient

log = logging.getLogger(__name__)

MAX_DELETE_IDS = MAX_BATCH_EVENTS  # record_ids per DELETE /v1/events


@dataclass(frozen=True)
class EventPage:
    """One page of ``GET /v1/events``: ``total`` matching events, ``events`` as Hyperline listed them."""

    total: int
    skipped: int
    events: list[dict[str, Any]]

    def unfiltered(self, event_type: str, record_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The listed events that do not match the filters asked for: not empty means Hyperline ignored one."""
        wanted = None if record_ids is None else set(record_ids)
        return [e for e in self.events
                if e.get("event_type") != event_type or (wanted is not None and e.get("record_id") not in wanted)]


class EventQueries:
    """``list_events`` and ``delete_events`` over a client's transport, limiter and retry policy."""

    def __init__(self, client: HyperlineClient) -> None:
        self.client = client

    def list_events(self, event_type: str, *, record_ids: Sequence[str] | None = None, customer_id: str | None = None,
                    timestamp_gte: str | None = None, timestamp_lte: str | None = None, take: int = MAX_TAKE,
                    skip: int = 0, sort: str | None = None, order: str | None = None) -> EventPage:
        """One page of the stored events of ``event_type`` matching the filters given."""
        if not 0 <= take <= MAX_TAKE:
            raise ValueError(f"take must be 0-{MAX_TAKE}, got {take}")
        params: dict[str, Any] = {"event_type": event_type, "take": take, "skip": skip}
        optional = {"record_id__in": ",".join(record_ids) if record_ids is not None else None,
                    "customer_id": customer_id, "timestamp_gte": timestamp_gte, "timestamp_lte": timestamp_lte,
                    "sort": sort, "order": order}
        params.update({k: v for k, v in optional.items() if v is not None})
        body = self._call("GET", lambda: self.client.transport.get(self.client.list_url, params), _page_body)
        meta = body["meta"]
        return EventPage(int(meta.get("total", 0)), int(meta.get("skipped", skip)), list(body["data"]))

    def delete_events(self, record_ids: Sequence[str]) -> int:
        """Delete every stored event of these record ids (all event types); how many Hyperline deleted."""
        deleted = 0
        for start in range(0, len(record_ids), MAX_DELETE_IDS):
            chunk = list(record_ids[start:start + MAX_DELETE_IDS])
            payload = orjson.dumps({"matching": "record_ids", "record_ids": chunk})
            body = self._call("DELETE", partial(self.client.transport.delete, self.client.list_url, payload),
                              _delete_body)
            deleted += _deleted_count(body)
        return deleted

    def _call(self, method: str, request: Callable[[], Reply], parse: Callable[[bytes], Any]) -> Any:
        client, url = self.client, self.client.list_url
        started, attempt = client.clock(), 0
        while True:
            attempt += 1
            wait = client.rate_limiter.reserve()
            if wait > 0:
                client.sleep(wait)
            try:
                reply = request()
            except Dropped as exc:
                problem, delay = str(exc), client.policy.delay(None, {}, attempt)
            except Unsendable as exc:
                raise HyperlineRequestError(f"Cannot send a request to Hyperline at {client.base_url}: {exc}",
                                            SendResult(), None) from None
            else:
                kind = classify(reply).kind if not 200 <= reply.status < 300 else None
                if kind is None:
                    parsed = parse(reply.content)
                    if parsed is not None:
                        return parsed
                    kind, problem = Kind.TRANSIENT, f"HTTP {reply.status} without the expected answer"
                else:
                    message = client.transport.redact(error_message(reply.content, reply.reason))
                    problem = f"HTTP {reply.status}: {message}"
                if kind is Kind.AUTH:
                    raise HyperlineAuthError(client._auth_message(reply.status, problem))
                if kind in (Kind.REFUSED, Kind.SPLIT):
                    raise HyperlineRequestError(f"Hyperline refused {method} {url}: {problem}", SendResult(),
                                                reply.status)
                delay = client.policy.delay(kind, reply.headers, attempt)
            elapsed = client.clock() - started
            if client.policy.gives_up(attempt, elapsed, delay):
                raise HyperlineUnavailableError(
                    f"Hyperline at {client.base_url} unavailable: gave up on {method} /v1/events after {attempt} "
                    f"attempts in {elapsed:.1f}s (last: {problem})", SendResult())
            log.debug("Hyperline %s failed (%s), attempt %d: retrying in %.2fs", method, problem, attempt, delay)
            client.sleep(delay)


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _page_body(content: bytes) -> Mapping[str, Any] | None:
    body = _json(content)
    ok = isinstance(body, dict) and isinstance(body.get("meta"), dict) and isinstance(body.get("data"), list)
    return body if ok else None


def _delete_body(content: bytes) -> Any:
    body = _json(content)
    return body if isinstance(body, int | dict) and not isinstance(body, bool) else None


def _deleted_count(body: Any) -> int:
    """Hyperline answers the number deleted: as a bare number or as ``{"deleted": n}`` (``count``)."""
    if isinstance(body, int):
        return body
    value = body.get("deleted", body.get("count", 0))
    return int(value) if isinstance(value, int | float) else 0
