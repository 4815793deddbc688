"""What kind of answer Hyperline gave to a batch (``classify``), and the parsing of its body.

Deciding what to do about an answer (wait, resend, split, give up) is the retry policy's and the
client's business; this module only says what the answer is.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from typing import Any, NamedTuple

import orjson

_SPLIT_STATUSES = frozenset({400, 413, 422})


class Kind(Enum):
    ACKNOWLEDGED = "acknowledged"  # 2xx with events_created/events_failed lists
    SPLIT = "split"  # 400/413/422: the batch (or an event of it) was refused; bisect
    AUTH = "auth"  # 401/403: the key was refused
    RATE_LIMITED = "rate_limited"  # 429
    TRANSIENT = "transient"  # 5xx, 408, or a 2xx whose body is not Hyperline's answer: resend
    REFUSED = "refused"  # any other status: the request itself is wrong (404 on a wrong host...)


class Reply(NamedTuple):
    """One HTTP answer as read off the wire."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    reason: str | None


class Answer(NamedTuple):
    """A classified reply: ``failed_ids``/``unattributed`` for ACKNOWLEDGED, else ``message`` (unredacted)."""

    kind: Kind
    status: int
    failed_ids: set[str]
    unattributed: int
    message: str

    @property
    def problem(self) -> str:
        """Why a TRANSIENT or RATE_LIMITED answer is resent, for logs and the give-up message."""
        if self.kind is Kind.RATE_LIMITED:
            return "HTTP 429 (rate limited)"
        if 200 <= self.status < 300:
            return f"HTTP {self.status} without events_created/events_failed lists"
        return f"HTTP {self.status}: {self.message}"


def classify(reply: Reply) -> Answer:
    """Say what kind of answer ``reply`` is to a ``POST /v1/events/batch``."""
    status = reply.status
    if 200 <= status < 300:
        parsed = parse_batch_answer(reply.content)
        if parsed is not None:
            return Answer(Kind.ACKNOWLEDGED, status, parsed[0], parsed[1], "")
        return Answer(Kind.TRANSIENT, status, set(), 0, "")
    if status in _SPLIT_STATUSES:
        kind = Kind.SPLIT
    elif status in (401, 403):
        kind = Kind.AUTH
    elif status == 429:
        kind = Kind.RATE_LIMITED
    elif status >= 500 or status == 408:
        kind = Kind.TRANSIENT
    else:
        kind = Kind.REFUSED
    return Answer(kind, status, set(), 0, error_message(reply.content, reply.reason))


def error_message(content: bytes, reason: str | None) -> str:
    """Hyperline's error ``message`` (or the start of the body); the caller redacts it."""
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
    return text or content[:200].decode("utf-8", "replace").strip() or reason or "no message"


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


def parse_batch_answer(content: bytes) -> tuple[set[str], int] | None:
    """``(ids in events_failed, failed entries without an id)``, or None if the body is not the answer."""
    with _gc_paused():
        return read_batch_answer(content)  # the parsed tree is freed before the GC resumes


def failed_member(content: bytes) -> list[Any] | None:
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


def read_batch_answer(content: bytes) -> tuple[set[str], int] | None:
    failed = failed_member(content)
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
