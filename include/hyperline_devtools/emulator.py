"""Local emulator of Hyperline's ingest API, for tests, the demo and the benchmark.

Run it with ``python -m hyperline_devtools.emulator --port 8090 --api-key test_local`` (prints its URL, runs
until SIGINT/SIGTERM), or in-process::

    with Emulator(api_key="test_local", faults=Faults(rate_429=0.1)) as emulator:
        ...  # point a connection at emulator.url
        emulator.events, emulator.post_counts, emulator.requests

Hyperline behaviour reproduced: Bearer (or Basic, key as user) auth with 401 ``{"message": ...}``;
``POST /v1/events`` (one event, 201); ``POST /v1/events/batch`` (1-5000 events, 201 with
``events_created``/``events_failed``, invalid events listed as failed and not stored); upsert on
``event_type`` + ``record.id`` (an event's identity: the same id under another type is another event);
``GET /v1/events`` (``event_type`` required, ``take`` 0-100 default 50, ``skip``, ``record_id__in`` comma
list, ``customer_id``, ``timestamp_gte``/``timestamp_lte``, ``sort=timestamp`` with ``order`` asc/desc;
unknown parameters silently ignored, as Hyperline does); ``DELETE /v1/events`` by record ids (every event
type), answering ``{"deleted": n}``; 400 with a message for a malformed body; optional ``X-RateLimit-*``
headers.

Faults (see :class:`Faults`) add 429s, 5xx, dropped connections, lost acknowledgements (store then 500),
latency, a permanent status, refused customers/records, whole-batch 400s and 413s, or a scripted sequence;
``read_script`` does the same for listings and deletions (``GET``/``DELETE /v1/events``).

Admin endpoints (no auth; the emulator binds 127.0.0.1): ``GET /_emulator/stats``,
``GET /_emulator/events``, ``POST /_emulator/faults`` (a Faults JSON object), ``POST /_emulator/reset``.
Never imported by the hook.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import hashlib
import math
import random
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

MAX_BATCH = 5000
MAX_TAKE = 100
_SCRIPT_WORDS = frozenset({"drop", "store_then_500", "bad_201", "ok"})
_SCALARS = frozenset({str, int, float, bool})
# How often the serving loop checks for stop(); the stdlib default (0.5 s) made every stop that slow.
_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Faults:
    """What the emulator does wrong, and how often (rates are fractions of ingest requests, 0-1).

    ``retry_after`` is the ``Retry-After`` value sent with 429s (None: no header). HTTP wants whole
    seconds; a fraction such as 0.05 is sent as ``0.05`` so tests stay fast (the hook accepts it).
    ``overloaded_retry_after`` is sent verbatim as ``Retry-After`` with 503s, as Hyperline's
    ``IngestionOverloadedError`` does (None: no header); a string, so that tests can send broken ones.
    ``script`` lists outcomes for the next ingest requests, one each, before the rates apply:
    ``"429"``, any status such as ``"503"``, ``"drop"``, ``"store_then_500"``, ``"bad_201"`` (store, then
    answer 201 with a body that is not Hyperline's, as a misbehaving proxy might) or ``"ok"``.
    ``rate_limit`` allows that many requests per ``rate_limit_window`` seconds and sends
    ``X-RateLimit-Limit/Remaining/Reset`` (Reset as ISO 8601) on every API answer.
    ``ignore_params`` names ``GET /v1/events`` query parameters to ignore silently (``"timestamp_gte"``,
    ``"record_id__in"``...), as Hyperline does with those it does not know: tests of filter checks.
    """

    rate_429: float = 0.0
    retry_after: float | None = 0.05
    overloaded_retry_after: str | None = None
    rate_5xx: float = 0.0
    status_5xx: int = 503
    rate_drop: float = 0.0
    rate_store_then_500: float = 0.0
    latency_ms: float = 0.0
    always_status: int | None = None
    reject_customer_ids: frozenset[str] = frozenset()
    reject_record_ids: frozenset[str] = frozenset()
    poison_record_ids: frozenset[str] = frozenset()
    max_body_bytes: int | None = None
    rate_limit: int | None = None
    rate_limit_window: float = 10.0
    script: tuple[str, ...] = ()
    read_script: tuple[str, ...] = ()
    ignore_params: frozenset[str] = frozenset()
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.rate_5xx, self.rate_drop, self.rate_store_then_500)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {rates}")
        for item in (*self.script, *self.read_script):
            if item not in _SCRIPT_WORDS and not (item.isdigit() and len(item) == 3):
                raise ValueError(f"script item {item!r} is not a status or one of {sorted(_SCRIPT_WORDS)}")
        for name in ("reject_customer_ids", "reject_record_ids", "poison_record_ids", "ignore_params"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        for name in ("script", "read_script"):
            object.__setattr__(self, name, tuple(str(s) for s in getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from JSON-like data; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("reject_customer_ids", "reject_record_ids", "poison_record_ids", "ignore_params"):
            data[name] = sorted(data[name])
        data["script"], data["read_script"] = list(self.script), list(self.read_script)
        return data


def event_problem(event: Any) -> str | None:
    """Why Hyperline would refuse ``event`` (written apart from the hook's check, to test it).

    ``event`` comes from ``orjson.loads``, so exact type checks suffice (and are fast).
    """
    if type(event) is not dict:
        return "event must be an object"
    for name in ("customer_id", "event_type"):
        value = event.get(name)
        if type(value) is not str or not value:
            return f"{name} must be a non-empty string"
    timestamp = event.get("timestamp")
    if isinstance(timestamp, str):
        try:
            parsed = datetime.fromisoformat(timestamp)
        except ValueError:
            return "timestamp must be an ISO 8601 date-time"
        if parsed.tzinfo is None or timestamp[10:11] != "T":
            return "timestamp must be an ISO 8601 date-time with a time zone"
    elif type(timestamp) is not int:
        return "timestamp must be an ISO 8601 string or epoch milliseconds"
    record = event.get("record")
    if type(record) is not dict:
        return "record must be an object"
    record_id = record.get("id")
    if type(record_id) is not str or not record_id:
        return "record.id must be a non-empty string"
    for key, value in record.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool:
            continue
        if kind is float:
            if not math.isfinite(value):
                return f"record.{key} must be a finite number"
            continue
        if kind is list and all(type(item) in _SCALARS for item in value):
            continue
        return f"record.{key} must be a string, number or boolean, or an array of those"
    return None


@dataclass
class _State:
    """Everything the emulator stores; guarded by ``Emulator._lock``."""

    events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # by (event_type, record.id)
    post_counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    events_received: int = 0
    max_request_events: int = 0
    max_request_bytes: int = 0
    active: int = 0  # API requests being served now
    max_concurrent: int = 0  # the most API requests served at once (a client's concurrency, seen from here)
    auth_schemes: Counter[str] = field(default_factory=Counter)
    window_start: float = 0.0
    window_count: int = 0


class Emulator:
    """An in-process Hyperline ingest server on a real socket (``port=0`` picks a free port)."""

    def __init__(
        self,
        api_key: str | None = "test_local",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        store: bool = True,
        freeze_gc: bool = False,
    ) -> None:
        self.api_key = api_key
        self.store = store
        # Stored events are acyclic and live until reset: exempting them from the cyclic GC keeps
        # full collections from rescanning millions of objects. Only for a dedicated process (the CLI).
        self.freeze_gc = freeze_gc
        self._lock = threading.Lock()
        self._state = _State()
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._script: deque[str] = deque(self._faults.script)
        self._read_script: deque[str] = deque(self._faults.read_script)
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self) -> Emulator:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name="hyperline-emulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI's way)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ inspection
    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """Stored events by ``record.id`` (a snapshot; of an id stored under several event types, the
        last stored: see ``stored_events`` for all)."""
        with self._lock:
            return {record_id: event for (_, record_id), event in self._state.events.items()}

    def stored_events(self) -> list[dict[str, Any]]:
        """Every stored event, one per ``event_type`` + ``record.id`` (a snapshot)."""
        with self._lock:
            return list(self._state.events.values())

    def remove(self, *record_ids: str) -> None:
        """Forget events as if they had been lost at Hyperline (tests of the reconcile)."""
        with self._lock:
            for key in [k for k in self._state.events if k[1] in record_ids]:
                del self._state.events[key]

    def put(self, event: dict[str, Any]) -> None:
        """Store an event as is, without counting a post (a test's changed or stray event)."""
        with self._lock:
            self._state.events[(event["event_type"], event["record"]["id"])] = event

    @property
    def post_counts(self) -> Counter[str]:
        """How many times each ``record.id`` arrived in an accepted request (a snapshot)."""
        with self._lock:
            return Counter(self._state.post_counts)

    @property
    def requests(self) -> int:
        """API requests received (``/v1/...``), whatever their answer."""
        with self._lock:
            return self._state.requests

    @property
    def events_received(self) -> int:
        """Events accepted so far, re-sends included (cheap: no copy)."""
        return self._state.events_received

    @property
    def auth_schemes(self) -> Counter[str]:
        """Accepted requests by ``Authorization`` scheme (``bearer``/``basic``)."""
        with self._lock:
            return Counter(self._state.auth_schemes)

    @property
    def statuses(self) -> Counter[int]:
        """API answers by HTTP status; dropped connections count as status 0."""
        with self._lock:
            return Counter(self._state.statuses)

    @property
    def faults(self) -> Faults:
        return self._faults

    def stats(self) -> dict[str, Any]:
        with self._lock:
            state = self._state
            return {
                "requests": state.requests,
                "events": len(state.events),
                "events_received": state.events_received,
                "posts_per_id_max": max(state.post_counts.values(), default=0),
                "max_request_events": state.max_request_events,
                "max_request_bytes": state.max_request_bytes,
                "max_concurrent": state.max_concurrent,
                "statuses": {str(k): v for k, v in sorted(state.statuses.items())},
                "auth_schemes": dict(state.auth_schemes),
                "faults": self._faults.to_dict(),
            }

    def reset(self) -> None:
        """Forget events and counters (faults stay; the script restarts)."""
        with self._lock:
            self._state = _State()
            self._rng = random.Random(self._faults.seed)
            self._script = deque(self._faults.script)
            self._read_script = deque(self._faults.read_script)

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._script = deque(faults.script)
            self._read_script = deque(faults.read_script)

    # ------------------------------------------------------------ request logic
    def _authorized(self, header: str | None) -> bool:
        if self.api_key is None:
            return True
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip() == self.api_key
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(credentials.strip()).decode().partition(":")[0]
            except ValueError:
                return False
            return user == self.api_key
        return False

    def _begin(self, ingest: bool) -> tuple[Faults, str, dict[str, str], float | None]:
        """Count an API request and decide its fault; return (faults, outcome, rate headers, retry-after).

        The rate limit and ``always_status`` apply to every API request; the script and the random
        faults only to ingest POSTs, so a listing or a connection test does not consume them.
        """
        with self._lock:
            state, faults = self._state, self._faults
            headers: dict[str, str] = {}
            outcome = "ok"
            retry_after = faults.retry_after
            if faults.rate_limit is not None:
                now = time.time()
                if now - state.window_start >= faults.rate_limit_window:
                    state.window_start, state.window_count = now, 0
                state.window_count += 1
                reset_at = state.window_start + faults.rate_limit_window
                headers = {
                    "X-RateLimit-Limit": str(faults.rate_limit),
                    "X-RateLimit-Remaining": str(max(faults.rate_limit - state.window_count, 0)),
                    "X-RateLimit-Reset": _iso(reset_at),
                }
                if state.window_count > faults.rate_limit:
                    outcome = "429"
                    if retry_after is not None:
                        retry_after = max(reset_at - now, 0.0)
            if outcome == "ok" and faults.always_status is not None:
                outcome = str(faults.always_status)
            if outcome != "ok":
                pass
            elif not ingest:
                if self._read_script:
                    outcome = self._read_script.popleft()
            elif self._script:
                outcome = self._script.popleft()
            else:
                draw = self._rng.random()
                for rate, name in (
                    (faults.rate_drop, "drop"),
                    (faults.rate_429, "429"),
                    (faults.rate_5xx, str(faults.status_5xx)),
                    (faults.rate_store_then_500, "store_then_500"),
                ):
                    if draw < rate:
                        outcome = name
                        break
                    draw -= rate
            return faults, outcome, headers, retry_after

    def _ingest(self, events: list[Any], faults: Faults) -> tuple[list[Any], list[Any]]:
        """Store the valid events (upsert on record.id); return (created, failed)."""
        rejected_customers, rejected_records = faults.reject_customer_ids, faults.reject_record_ids
        if rejected_customers or rejected_records:
            refused = [
                e
                for e in events
                if event_problem(e) is not None
                or e["customer_id"] in rejected_customers
                or e["record"]["id"] in rejected_records
            ]
        else:
            refused = [e for e in events if event_problem(e) is not None]
        if refused:
            refused_ids = {id(e) for e in refused}
            created = [e for e in events if id(e) not in refused_ids]
        else:
            created = events
        with self._lock:
            state = self._state
            state.events_received += len(created)
            if self.store:
                stored, counts = state.events, state.post_counts
                count = counts.get
                for event in created:
                    record_id = event["record"]["id"]
                    stored[(event["event_type"], record_id)] = event
                    counts[record_id] = count(record_id, 0) + 1
        if self.freeze_gc:
            gc.freeze()
        return created, refused

    def _note(self, status: int, events: int = 0, size: int = 0) -> None:
        with self._lock:
            state = self._state
            state.statuses[status] += 1
            state.max_request_events = max(state.max_request_events, events)
            state.max_request_bytes = max(state.max_request_bytes, size)

    def _list(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """``GET /v1/events``; parameters it does not know are ignored (the unfiltered list), as Hyperline does."""
        event_type = query.get("event_type", [""])[0]
        if not event_type:
            return 400, {"message": "event_type is required"}
        try:
            take = int(query.get("take", ["50"])[0])
            skip = int(query.get("skip", ["0"])[0])
            since = _epoch_ms(query["timestamp_gte"][0]) if "timestamp_gte" in query else None
            until = _epoch_ms(query["timestamp_lte"][0]) if "timestamp_lte" in query else None
        except ValueError:
            return 400, {"message": "take and skip must be integers, timestamp_gte/lte ISO 8601 date-times"}
        order, sort = query.get("order", ["desc"])[0], query.get("sort", [None])[0]
        if not 0 <= take <= MAX_TAKE or skip < 0 or order not in ("asc", "desc") or sort not in (None, "timestamp"):
            return 400, {"message": f"take must be 0-{MAX_TAKE}, skip >= 0, order asc|desc, sort timestamp"}
        with self._lock:
            stored = self._state.events
            if "record_id__in" in query:
                wanted = dict.fromkeys(i for v in query["record_id__in"] for i in v.split(",") if i)
                events = [stored[(event_type, i)] for i in wanted if (event_type, i) in stored]
            else:
                events = [e for (kind, _), e in stored.items() if kind == event_type]
        if "customer_id" in query:
            events = [e for e in events if e["customer_id"] == query["customer_id"][0]]
        if since is not None:
            events = [e for e in events if _epoch_ms(e["timestamp"]) >= since]
        if until is not None:
            events = [e for e in events if _epoch_ms(e["timestamp"]) <= until]
        if sort == "timestamp":
            events.sort(key=lambda e: _epoch_ms(e["timestamp"]), reverse=order == "desc")
        page = events[skip : skip + take]
        data = [
            {
                "id": "evt_" + hashlib.blake2b(f"{e['event_type']}/{e['record']['id']}".encode(),
                                               digest_size=10).hexdigest(),
                "event_type": e["event_type"],
                "timestamp": e["timestamp"],
                "customer_id": e["customer_id"],
                "record_id": e["record"]["id"],
                "record": e["record"],
            }
            for e in page
        ]
        return 200, {"meta": {"total": len(events), "taken": len(data), "skipped": skip}, "data": data}


def _epoch_ms(timestamp: Any) -> int:
    """An event's timestamp (ISO 8601 with a zone, or epoch milliseconds) as epoch milliseconds."""
    if isinstance(timestamp, int):
        return timestamp
    parsed = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {timestamp}")
    return int(parsed.timestamp() * 1000)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the hook's session expects
    # http.server writes headers and body in two sends; with Nagle on, the body waits ~40 ms for the
    # client's delayed ACK, which would cap one-event-per-request traffic near 22 requests/s.
    disable_nagle_algorithm = True
    server_version = "HyperlineEmulator/1.0"
    emulator: Emulator

    def setup(self) -> None:
        super().setup()
        self.emulator = self.server.emulator  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more than the request

    # ------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        payload: Any = None,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = raw if raw is not None else orjson.dumps(payload if payload is not None else {})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True  # no answer: the client sees the connection close

    # ------------------------------------------------------------ routes
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_emulator/stats":
            return self._send(200, self.emulator.stats())
        if parts.path == "/_emulator/events":
            counts = self.emulator.post_counts
            events = [
                {"record_id": rid, "posts": counts[rid], "event": event} for rid, event in self.emulator.events.items()
            ]
            return self._send(200, {"events": events})
        if parts.path == "/v1/events":
            return self._api(lambda faults, _body: (*self.emulator._list(
                {k: v for k, v in parse_qs(parts.query).items() if k not in faults.ignore_params}), None), b"")
        return self._send(404, {"message": "Not found"})

    def do_POST(self) -> None:
        body = self._body()  # always read, so a keep-alive connection stays in step
        path = urlsplit(self.path).path
        if path == "/_emulator/faults":
            try:
                self.emulator.set_faults(Faults.from_dict(orjson.loads(body or b"{}")))
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                return self._send(400, {"message": f"bad faults: {exc}"})
            return self._send(200, self.emulator.faults.to_dict())
        if path == "/_emulator/reset":
            self.emulator.reset()
            return self._send(200, {"reset": True})
        if path == "/v1/events/batch":
            return self._api(self._batch, body)
        if path == "/v1/events":
            return self._api(self._single, body)
        return self._send(404, {"message": "Not found"})

    def do_DELETE(self) -> None:
        body = self._body()
        if urlsplit(self.path).path == "/v1/events":
            return self._api(self._delete, body)
        return self._send(404, {"message": "Not found"})

    def _api(self, route: Any, body: bytes) -> None:
        """Auth, faults, then the route; every API answer passes here, counted while it is served."""
        emulator = self.emulator
        with emulator._lock:
            state = emulator._state
            state.active += 1
            state.max_concurrent = max(state.max_concurrent, state.active)
        try:
            self._serve(route, body)
        finally:
            with emulator._lock:
                state.active -= 1  # the state it was counted in, even if a reset replaced it meanwhile

    def _serve(self, route: Any, body: bytes) -> None:
        emulator = self.emulator
        header = self.headers.get("Authorization")
        authorized = emulator._authorized(header)
        with emulator._lock:
            emulator._state.requests += 1
            if authorized and header:
                emulator._state.auth_schemes[header.partition(" ")[0].lower()] += 1
        if not authorized:
            emulator._note(401)
            message = "Invalid API key" if header else "Missing authentication token"
            return self._send(401, {"message": message})
        is_post = self.command == "POST"
        faults, outcome, headers, retry_after = emulator._begin(ingest=is_post)
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if outcome == "drop":
            emulator._note(0)
            return self._drop()
        if outcome == "429":
            emulator._note(429)
            extra = dict(headers)
            if retry_after is not None:
                extra["Retry-After"] = _seconds_header(retry_after)
            return self._send(429, {"message": "Too many requests"}, headers=extra)
        if outcome.isdigit() and outcome != "200":
            emulator._note(int(outcome))
            extra = dict(headers)
            if outcome == "503" and faults.overloaded_retry_after is not None:
                extra["Retry-After"] = faults.overloaded_retry_after
            return self._send(int(outcome), {"message": f"Emulated HTTP {outcome}"}, headers=extra)
        if is_post and faults.max_body_bytes is not None and len(body) > faults.max_body_bytes:
            emulator._note(413, size=len(body))
            return self._send(413, {"message": "Request entity too large"}, headers=headers)
        status, payload, raw = route(faults, body)
        if outcome == "store_then_500" and is_post and status < 300:
            status, payload, raw = 500, {"message": "Emulated HTTP 500 after storing"}, None
        elif outcome == "bad_201" and is_post and status < 300:
            status, payload, raw = 201, None, b"<html>upstream says ok</html>"
        emulator._note(status, size=len(body))
        return self._send(status, payload, raw, headers)

    def _parse(self, body: bytes) -> tuple[Any, tuple[int, Any, None] | None]:
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError:
            return None, (400, {"message": "Malformed JSON body"}, None)

    def _batch(self, faults: Faults, body: bytes) -> tuple[int, Any, bytes | None]:
        events, error = self._parse(body)
        if error:
            return error
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
            return 400, {"message": f"Body must be an array of 1 to {MAX_BATCH} events"}, None
        with self.emulator._lock:
            state = self.emulator._state
            state.max_request_events = max(state.max_request_events, len(events))
        if faults.poison_record_ids:
            for index, event in enumerate(events):
                record = event.get("record") if isinstance(event, dict) else None
                if isinstance(record, dict) and record.get("id") in faults.poison_record_ids:
                    return 400, {"message": f"Invalid event at index {index}: record rejected"}, None
        created, failed = self.emulator._ingest(events, faults)
        if not failed:
            # The answer echoes the input: reuse the request bytes instead of serialising them again.
            return 201, None, b'{"events_created":' + body + b',"events_failed":[]}'
        return 201, {"events_created": created, "events_failed": failed}, None

    def _single(self, faults: Faults, body: bytes) -> tuple[int, Any, bytes | None]:
        event, error = self._parse(body)
        if error:
            return error
        problem = event_problem(event)
        if problem:
            return 400, {"message": problem}, None
        if faults.poison_record_ids and event["record"]["id"] in faults.poison_record_ids:
            return 400, {"message": "Invalid event: record rejected"}, None
        _, failed = self.emulator._ingest([event], faults)
        if failed:
            return 400, {"message": "Customer or record refused"}, None
        return 201, event, None

    def _delete(self, _faults: Faults, body: bytes) -> tuple[int, Any, bytes | None]:
        request, error = self._parse(body)
        if error:
            return error
        ids = request.get("record_ids") if isinstance(request, dict) else None
        if not isinstance(ids, list) or request.get("matching") != "record_ids" or len(ids) > MAX_BATCH:
            return 400, {"message": 'Body must be {"matching": "record_ids", "record_ids": [...]} (<= 5000)'}, None
        wanted = set(ids)
        with self.emulator._lock:
            stored = self.emulator._state.events
            doomed = [key for key in stored if key[1] in wanted]  # every event type of each id
            for key in doomed:
                del stored[key]
        return 200, {"deleted": len(doomed)}, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hyperline_devtools.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port (printed)")
    parser.add_argument("--api-key", default="test_local", help="the one key accepted")
    parser.add_argument("--faults", default="{}", help="Faults as JSON, e.g. '{\"rate_429\": 0.1}'")
    parser.add_argument("--no-store", action="store_true", help="count events but keep none (benchmarks)")
    args = parser.parse_args(argv)
    emulator = Emulator(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        faults=Faults.from_dict(orjson.loads(args.faults)),
        store=not args.no_store,
        freeze_gc=True,
    )

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"Hyperline emulator listening on {emulator.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    print("Hyperline emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
