"""Cutting events into batches: validation, the wire form, JSON encoding under the byte cap, halving."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, NamedTuple

import orjson

from hyperline_provider.events import DUMPS_OPTIONS, validate_event, wire_event
from hyperline_provider.results import FailedEvent, SendResult


class Batch(NamedTuple):
    """Events as the caller gave them, what is sent for each (``wire``: four-field dicts, the same
    objects when the caller's already are), and the JSON body of ``wire`` once encoded."""

    events: list[Mapping[str, Any]]
    wire: list[dict[str, Any]]
    body: bytes | None = None

    def halves(self) -> tuple[Batch, Batch]:
        middle = len(self.wire) // 2
        return (
            Batch(self.events[:middle], self.wire[:middle]),
            Batch(self.events[middle:], self.wire[middle:]),
        )

    def encoded(self) -> bytes:
        return self.body if self.body is not None else orjson.dumps(self.wire, option=DUMPS_OPTIONS)


def slices(events: Iterable[Mapping[str, Any]], size: int) -> Iterator[Batch]:
    """Groups of ``size`` prevalidated events; their wire form is the events themselves."""
    iterator = iter(events)
    while group := list(islice(iterator, size)):
        # prevalidated events are plain four-field dicts already: they are their own wire form
        yield Batch(group, group)  # type: ignore[arg-type]


def validated(events: Iterable[Mapping[str, Any]], size: int, result: SendResult) -> Iterator[Batch]:
    """Groups of at most ``size`` valid events, each with what goes on the wire for it (its four
    fields); invalid events go to ``result.failed``."""
    failed = result.failed
    originals: list[Mapping[str, Any]] = []
    wire: list[dict[str, Any]] = []
    for event in events:
        reason = validate_event(event)
        if reason is not None:
            failed.append(FailedEvent(event, reason))
            continue
        originals.append(event)
        wire.append(event if type(event) is dict and len(event) == 4 else wire_event(event))
        if len(wire) == size:
            yield Batch(originals, wire)
            originals, wire = [], []
    if wire:
        yield Batch(originals, wire)


def encoded(batch: Batch, max_bytes: int, result: SendResult) -> Iterator[Batch]:
    """``batch`` with its JSON body, halved until each body fits ``max_bytes``; an event that cannot
    be encoded, or alone exceeds the cap, goes to ``result.failed``."""
    try:
        body = orjson.dumps(batch.wire, option=DUMPS_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        batch = _encodable(batch, result)
        if not batch.wire:
            return
        body = orjson.dumps(batch.wire, option=DUMPS_OPTIONS)
    if len(body) <= max_bytes:
        yield batch._replace(body=body)
    elif len(batch.wire) == 1:
        reason = f"invalid_event: {len(body) - 2} bytes encoded, over the {max_bytes}-byte request cap"
        result.failed.append(FailedEvent(batch.events[0], reason))
    else:
        first, second = batch.halves()
        yield from encoded(first, max_bytes, result)
        yield from encoded(second, max_bytes, result)


def _encodable(batch: Batch, result: SendResult) -> Batch:
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
    return Batch(events, wire)
