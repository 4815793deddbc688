"""Message shapes and nasty cases for `sample_archive`: one `Line` per physical archive line.

Each line is built together with its known outcome under the default mapping (deliverable with
the exact expected Hyperline fields, skipped, rejected with a reason, or blank), so the archive's
manifest never has to run the transform to know what a correct reader must produce.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any

import orjson

DAY_MS = 86_400_000
MAX_LINE_BYTES = 1 << 20  # archive.MAX_LINE_BYTES, kept literal so the generator stays independent of the reader


@dataclass
class Line:
    """One physical line and its known outcome."""

    data: bytes
    outcome: str  # "deliver", "skip", "reject", "blank"
    reason: str = ""
    message: dict[str, Any] | None = None  # for deliverable lines (to copy as duplicates)
    expected: tuple[str, str, str, dict[str, Any]] | None = None  # customer_id, event_type, timestamp, record
    dropped: int = 0


_ABSENT = object()  # a field left out of the message (as opposed to null)
_DATE_CACHE: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` of epoch milliseconds (fast: no datetime per call)."""
    days, rest = divmod(ms, DAY_MS)
    day_text = _DATE_CACHE.get(days)
    if day_text is None:
        day_text = _DATE_CACHE[days] = (date(1970, 1, 1) + timedelta(days=days)).isoformat()
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{day_text}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


_ENDPOINTS = ["/v1/invoices", "/v1/customers", "/v1/events/batch", "/v2/subscriptions", "/v1/plans", "/v1/usage"]
_REGIONS = ["eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2"]
_PAGES = [
    ("/dashboard", "Dashboard"),
    ("/billing", "Billing"),
    ("/settings/team", "Team settings"),
    ("/reports/usage", "Usage report"),
    ("/integrations", "Integrations"),
]
_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
]
# Weighted so lines average ~650 bytes: browser lines are ~1 KB, server lines ~600 bytes.
_LIBRARIES = ("analytics.js",) * 2 + ("analytics-node",) * 4 + ("analytics-python",) * 3 + ("analytics-ios",)
_PLANS = ["starter", "pro", "business", "enterprise"]
_FORMATS = ["csv", "xlsx", "pdf"]
_ROLES = ["admin", "member", "viewer", "billing"]
_MESSAGE_MIX = [
    ("API Call", 45),
    ("Storage Used", 10),
    ("Seat Added", 5),
    ("Report Exported", 6),
    ("Order Completed", 4),
    ("Feature Used", 8),
    ("identify", 8),
    ("page", 8),
    ("screen", 3),
    ("group", 2),
    ("alias", 1),
]


class MessageWriter:
    """Builds the lines of one archive: the random state, pools of ids and the message shapes."""

    def __init__(self, source_id: str, seed: int, write_key: str) -> None:
        self.rng = Random(seed)
        self.source_id = source_id
        self.write_key = write_key
        self.customers = [f"user_{self.rng.randrange(10_000, 99_999)}" for _ in range(300)]
        self.accounts = [f"acct_{n:04d}" for n in range(60)]
        self.anonymous = [str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(500)]
        self.kinds = [kind for kind, weight in _MESSAGE_MIX for _ in range(weight)]
        self.builders: dict[str, Callable[[], tuple[dict, dict, int]]] = {
            "API Call": self._api_call,
            "Storage Used": self._storage_used,
            "Seat Added": self._seat_added,
            "Report Exported": self._report_exported,
            "Order Completed": self._order_completed,
            "Feature Used": self._feature_used,
        }

    # ids and envelopes

    def message_id(self, library: str, ms: int) -> str:
        bits = self.rng.getrandbits(128)
        if library == "analytics.js":
            return f"ajs-next-{bits:032x}"
        if library == "analytics-node":
            return f"node-next-{ms}-{uuid.UUID(int=bits, version=4)}"
        if library == "analytics-ios":
            return str(uuid.UUID(int=bits, version=4)).upper()
        return str(uuid.UUID(int=bits, version=4))

    def envelope(self, kind: str, received_ms: int) -> dict[str, Any]:
        rng = self.rng
        library = rng.choice(_LIBRARIES)
        lag = rng.randrange(5, 900)
        timestamp_ms = received_ms - lag
        client = library in ("analytics.js", "analytics-ios")
        message: dict[str, Any] = {
            "channel": "client" if client else "server",
            "context": self.context(library),
            "integrations": {},
            "messageId": self.message_id(library, received_ms),
            "originalTimestamp": iso_ms(timestamp_ms - rng.randrange(0, 40)),
            "projectId": self.source_id,
            "receivedAt": iso_ms(received_ms),
            "sentAt": iso_ms(received_ms - rng.randrange(1, 30)),
            "timestamp": iso_ms(timestamp_ms),
            "type": kind,
            "userId": rng.choice(self.customers),
            "version": 2,
            "writeKey": self.write_key,
        }
        if client:  # server libraries usually send a userId only
            message["anonymousId"] = rng.choice(self.anonymous)
        if library == "analytics.js":
            message["_metadata"] = {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []}
        return message

    def context(self, library: str) -> dict[str, Any]:
        rng = self.rng
        if library == "analytics.js":
            path, title = rng.choice(_PAGES)
            return {
                "ip": f"203.0.113.{rng.randrange(1, 255)}",
                "library": {"name": "analytics.js", "version": "next-1.70.0"},
                "locale": "en-US",
                "page": {
                    "path": path,
                    "referrer": "",
                    "search": "",
                    "title": title,
                    "url": f"https://app.example.com{path}",
                },
                "userAgent": rng.choice(_USER_AGENTS),
            }
        if library == "analytics-ios":
            return {
                "app": {"build": "412", "name": "Example", "version": "4.12.0"},
                "device": {"manufacturer": "Apple", "model": "iPhone15,2", "type": "ios"},
                "library": {"name": "analytics-ios", "version": "4.1.8"},
                "os": {"name": "iOS", "version": "17.5"},
                "timezone": "Europe/Paris",
            }
        version = "1.3.0" if library == "analytics-node" else "2.3.2"
        return {"library": {"name": library, "version": version}}

    # track properties: (properties, expected flattened record fields, dropped values)

    def _api_call(self) -> tuple[dict, dict, int]:
        rng = self.rng
        props = {
            "endpoint": rng.choice(_ENDPOINTS),
            "method": rng.choice(("GET", "POST", "PUT")),
            "status": rng.choice((200, 200, 200, 201, 400, 429, 500)),
            "ms": rng.randrange(3, 2500),
            "bytes": rng.randrange(200, 200_000),
            "region": rng.choice(_REGIONS),
            "cached": rng.random() < 0.3,
            "tags": ["api", rng.choice(("internal", "partner", "public"))],
        }
        return props, dict(props), 0

    def _storage_used(self) -> tuple[dict, dict, int]:
        rng = self.rng
        gb = round(rng.uniform(0.5, 2000), 3)
        tier, klass = rng.choice((("standard", 1), ("infrequent", 2), ("archive", 3)))
        props = {
            "gb": gb,
            "bucket": f"bkt-{rng.randrange(1, 40)}",
            "tier": {"name": tier, "class": klass},
            "snapshot": None,
        }
        return props, {"gb": gb, "bucket": props["bucket"], "tier_name": tier, "tier_class": klass}, 1

    def _seat_added(self) -> tuple[dict, dict, int]:
        rng = self.rng
        plan, interval = rng.choice(_PLANS), rng.choice(("month", "year"))
        seats = rng.randrange(1, 50)
        role = rng.choice(_ROLES)
        props = {"seat_count": seats, "role": role, "plan": {"name": plan, "billing": {"interval": interval}}}
        return props, {"seat_count": seats, "role": role, "plan_name": plan, "plan_billing_interval": interval}, 0

    def _report_exported(self) -> tuple[dict, dict, int]:
        rng = self.rng
        fmt, rows = rng.choice(_FORMATS), rng.randrange(1, 100_000)
        props = {
            "format": fmt,
            "rows": rows,
            "columns": ["date", "customer", "amount"],
            "filters": [{"field": "date", "op": "gte"}, {"field": "plan", "op": "eq"}],
        }
        return props, {"format": fmt, "rows": rows, "columns": ["date", "customer", "amount"]}, 1

    def _order_completed(self) -> tuple[dict, dict, int]:
        rng = self.rng
        total = round(rng.uniform(5, 500), 2)
        method, cost = rng.choice((("ground", 10), ("express", 25)))
        props = {
            "orderId": f"ORD-{rng.randrange(10_000, 99_999)}",
            "total": total,
            "currency": "USD",
            "coupon": None,
            "shipping": {"method": method, "cost": cost},
            "products": [{"product_id": "sku-123", "price": 12.99, "quantity": 2}],
        }
        expected = {
            "orderId": props["orderId"],
            "total": total,
            "currency": "USD",
            "shipping_method": method,
            "shipping_cost": cost,
        }
        return props, expected, 2

    def _feature_used(self) -> tuple[dict, dict, int]:
        rng = self.rng
        feature = rng.choice(("invoice_preview", "dunning", "tax_engine", "quotes"))
        enabled = rng.random() < 0.8
        props = {"feature": feature, "enabled": enabled, "variant": None, "labels": ["beta", 2]}
        return props, {"feature": feature, "enabled": enabled}, 2

    # lines

    def regular(self, received_ms: int, kind: str | None = None) -> Line:
        kind = kind or self.rng.choice(self.kinds)
        if kind in self.builders:
            message = self.envelope("track", received_ms)
            message["event"] = kind
            properties, flat, dropped = self.builders[kind]()
            message["properties"] = properties
            return self.deliverable(message, flat, dropped)
        message = self.envelope(kind, received_ms)
        if kind == "identify":
            message["traits"] = {"email": f"{message['userId']}@example.com", "plan": self.rng.choice(_PLANS)}
        elif kind in ("page", "screen"):
            message["name"] = self.rng.choice(_PAGES)[1]
            message["properties"] = {"path": self.rng.choice(_PAGES)[0]}
        elif kind == "group":
            message["groupId"] = self.rng.choice(self.accounts)
            message["traits"] = {"plan": self.rng.choice(_PLANS)}
        else:
            message["previousId"] = self.rng.choice(self.anonymous)
        return Line(orjson.dumps(message), "skip")

    def deliverable(
        self,
        message: dict[str, Any],
        flat: dict[str, Any],
        dropped: int,
        customer_id: str | None = None,
        timestamp: str | None = None,
    ) -> Line:
        """A track line the default mapping turns into an event with the given expected fields."""
        record = {**flat, "id": message["messageId"]}
        expected = (
            customer_id if customer_id is not None else message["userId"],
            message["event"],
            timestamp if timestamp is not None else message["timestamp"],
            record,
        )
        return Line(orjson.dumps(message), "deliver", message=message, expected=expected, dropped=dropped)

    def track(self, received_ms: int, event: str = "API Call") -> tuple[dict, dict, int]:
        message = self.envelope("track", received_ms)
        message["event"] = event
        properties, flat, dropped = self._api_call()
        message["properties"] = properties
        return message, flat, dropped


# --- nasty cases ----------------------------------------------------------------------------------


@dataclass
class DayState:
    """What the nasty cases of a day may copy from."""

    last_deliverable: Line | None = None
    first_of_object: Line | None = None
    first_of_day: Line | None = None
    previous_day: list[Line] = field(default_factory=list)


def _rejected(data: bytes, reason: str) -> Line:
    return Line(data, "reject", reason)


def nasty_cases(w: MessageWriter, day_index: int, objects: int) -> list[tuple[int, Callable[[int, DayState], Line]]]:
    """(object index, factory(received_ms, state)) for the special lines of one day."""
    rng = w.rng
    cases: list[tuple[int, Callable[[int, DayState], Line]]] = []

    def add(factory: Callable[[int, DayState], Line], obj: int | None = None) -> None:
        cases.append((rng.randrange(objects) if obj is None else obj, factory))

    def dup_of(line_of: Callable[[DayState], Line | None]) -> Callable[[int, DayState], Line]:
        def make(_ms: int, state: DayState) -> Line:
            original = line_of(state)
            assert original is not None and original.message is not None
            return Line(
                original.data, "deliver", message=original.message, expected=original.expected, dropped=original.dropped
            )

        return make

    # duplicates: the previous line (same chunk), the object's first line (far away), another object
    add(dup_of(lambda s: s.last_deliverable))
    add(dup_of(lambda s: s.first_of_object))
    if objects > 1:
        add(dup_of(lambda s: s.first_of_day), obj=objects - 1)
    if day_index > 0:
        add(dup_of(lambda s: s.previous_day[0]))

        def changed_timestamp(_ms: int, state: DayState) -> Line:
            original = state.previous_day[1]
            assert original.message is not None
            message = {**original.message, "timestamp": iso_ms(_ms)}
            return Line(
                orjson.dumps(message), "deliver", message=message, expected=original.expected, dropped=original.dropped
            )

        add(changed_timestamp)

    secret = f'"writeKey":"{w.write_key}"'.encode()
    add(
        lambda ms, s: _rejected(
            b"{" + secret + b',"type":"track","event":"API Call","properties":{"ms":1', "malformed_json"
        )
    )
    add(
        lambda ms, s: _rejected(
            b'{"type":"track",' + secret + b',"event":"Bad \xff\xfe bytes","userId":"u1"}', "malformed_json"
        )
    )
    add(lambda ms, s: _rejected(b"[1,2,3]", "malformed_json"))
    add(lambda ms, s: _rejected(b'"just a string"', "malformed_json"))

    def with_user(value: Any, expected_id: str | None, reason: str = "") -> Callable[[int, DayState], Line]:
        def make(ms: int, _state: DayState) -> Line:
            message, flat, dropped = w.track(ms)
            if value is _ABSENT:
                del message["userId"]
            else:
                message["userId"] = value
            if expected_id is None:
                return _rejected(orjson.dumps(message), reason)
            return w.deliverable(message, flat, dropped, customer_id=expected_id)

        return make

    add(with_user(4821, "4821"))
    add(with_user(77.0, "77"))
    add(with_user(_ABSENT, None, "missing_customer_id"))
    add(with_user(None, None, "missing_customer_id"))
    add(with_user("", None, "missing_customer_id"))
    add(with_user(True, None, "invalid_customer_id"))

    def with_properties(properties: dict, flat: dict, dropped: int, event: str = "Feature Used"):
        def make(ms: int, _state: DayState) -> Line:
            message = w.envelope("track", ms)
            message["event"] = event
            message["properties"] = properties
            return w.deliverable(message, flat, dropped)

        return make

    add(with_properties({"id": "prop-id", "feature": "x"}, {"feature": "x"}, 1))
    big = "x" * 10_240
    add(with_properties({"note": big, "size": 10_240}, {"note": big, "size": 10_240}, 0))
    add(with_properties({"a": {"b": {"c": 1, "d": [1, 2.5]}, "e": None}}, {"a_b_c": 1, "a_b_d": [1, 2.5]}, 1))
    add(with_properties({"items": [{"sku": "a"}], "nums": [1, None]}, {}, 2))
    add(with_properties({"drink": "café"}, {"drink": "café"}, 0, event="Café Ordered ☕"))
    add(with_properties({"taille": 3}, {"taille": 3}, 0, event="Résumé Téléchargé"))

    def with_timestamp(text_of: Callable[[int], tuple[str, str | None]]) -> Callable[[int, DayState], Line]:
        def make(ms: int, _state: DayState) -> Line:
            message, flat, dropped = w.track(ms)
            text, expected = text_of(ms)
            message["timestamp"] = text
            if expected is None:
                return _rejected(orjson.dumps(message), "invalid_timestamp")
            return w.deliverable(message, flat, dropped, timestamp=expected)

        return make

    def offset(ms: int) -> tuple[str, str]:
        local = datetime.fromtimestamp(ms / 1000, tz=UTC) + timedelta(hours=2)
        micros = (ms % 1000) * 1000 + 456
        return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}+02:00", iso_ms(ms)

    def nanos(ms: int) -> tuple[str, str]:
        return iso_ms(ms)[:-1] + "987654Z", iso_ms(ms)

    def whole_seconds(ms: int) -> tuple[str, str]:
        ms -= ms % 1000
        return iso_ms(ms)[:19] + "Z", iso_ms(ms)

    late = 120 * DAY_MS
    add(with_timestamp(lambda ms: (iso_ms(ms - late), iso_ms(ms - late))))
    add(with_timestamp(lambda ms: (iso_ms(ms + 400 * DAY_MS), iso_ms(ms + 400 * DAY_MS))))
    add(with_timestamp(offset))
    add(with_timestamp(nanos))
    add(with_timestamp(whole_seconds))
    add(with_timestamp(lambda ms: ("not-a-timestamp", None)))
    add(with_timestamp(lambda ms: ("2026-13-45T25:61:00Z", None)))

    def without(field_name: str, reason: str) -> Callable[[int, DayState], Line]:
        def make(ms: int, _state: DayState) -> Line:
            message, _, _ = w.track(ms)
            del message[field_name]
            return _rejected(orjson.dumps(message), reason)

        return make

    add(without("timestamp", "invalid_timestamp"))
    add(without("messageId", "missing_message_id"))
    add(without("event", "missing_event"))

    def blank(field_name: str, reason: str) -> Callable[[int, DayState], Line]:
        def make(ms: int, _state: DayState) -> Line:
            message, _, _ = w.track(ms)
            message[field_name] = " \t"
            return _rejected(orjson.dumps(message), reason)

        return make

    add(blank("messageId", "missing_message_id"))
    add(blank("event", "missing_event"))

    def swift_original_timestamp(ms: int, _state: DayState) -> Line:
        message, flat, dropped = w.track(ms)
        message["originalTimestamp"] = iso_ms(ms)[:19] + ".029:Z"
        message["sentAt"] = None
        return w.deliverable(message, flat, dropped)

    add(swift_original_timestamp)
    add(lambda ms, s: Line(b"", "blank"))

    def crlf(ms: int, _state: DayState) -> Line:
        message, flat, dropped = w.track(ms)
        line = w.deliverable(message, flat, dropped)
        line.data += b"\r"
        return line

    add(crlf)
    if day_index == 0:
        filler = b"y" * (MAX_LINE_BYTES + 100)
        add(lambda ms, s: _rejected(b"{" + secret + b',"type":"track","blob":"' + filler + b'"}', "line_too_long"))
    return cases
