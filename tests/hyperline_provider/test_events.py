"""Client-side validation and serialisation of Hyperline events."""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import pytest

from hyperline_provider.events import DUMPS_OPTIONS, validate_event, wire_event


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer_id": "cus_1",
        "event_type": "api_call",
        "timestamp": "2026-11-20T10:00:00Z",
        "record": {"id": "r1", "n": 3, "ok": True, "ratio": 0.5, "tags": ["a", 1, False, 2.5]},
    }
    base.update(overrides)
    return base


def record(**values: Any) -> dict[str, Any]:
    return event(record={"id": "r1", **values})


@pytest.mark.parametrize(
    "candidate",
    [
        event(),
        event(timestamp="2026-11-20T10:00:00.123456789Z"),
        event(timestamp="2026-11-20T10:00:00+02:00"),
        event(timestamp=1_766_224_800_000),
        event(timestamp=np.int64(1_766_224_800_000)),
        record(n=np.int64(3), x=np.float32(1.5), flag=np.bool_(True)),
        record(big=2**63 - 1),
        OrderedDict(event()),
        MappingProxyType(event()),
        {**event(), "line_no": 7},  # extra keys are the caller's; they are not sent
    ],
)
def test_valid_events(candidate: Any) -> None:
    assert validate_event(candidate) is None


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("not an event", "invalid_event: event must be an object"),
        ({k: v for k, v in event().items() if k != "customer_id"}, "invalid_event: missing customer_id"),
        (event(customer_id=""), "invalid_event: customer_id must be a non-empty string"),
        (event(customer_id="  "), "invalid_event: customer_id must be a non-empty string"),
        (event(customer_id=42), "invalid_event: customer_id must be a non-empty string"),
        (event(event_type=None), "invalid_event: missing event_type"),
        (event(timestamp=None), "invalid_event: missing timestamp"),
        (event(timestamp="2026-11-20 10:00:00"), "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        (event(timestamp="2026-11-20T10:00:00"), "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        (event(timestamp="2026-11-20"), "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        (event(timestamp="2026-11-20T10:00Z"), "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        (
            event(timestamp="2026-02-30T10:00:00Z"),
            "invalid_event: timestamp not ISO 8601 with zone or epoch ms (not a real date/time)",
        ),
        (
            event(timestamp=1_766_224_800),
            "invalid_event: timestamp not ISO 8601 with zone or epoch ms (integer out of the epoch-millisecond range)",
        ),
        (event(timestamp=True), "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        (event(timestamp=1.7e12), "invalid_event: timestamp not ISO 8601 with zone or epoch ms"),
        (event(record=None), "invalid_event: missing record"),
        (event(record=["r1"]), "invalid_event: record must be an object"),
        (event(record={"n": 1}), "invalid_event: missing record.id"),
        (event(record={"id": 485}), "invalid_event: record.id must be a string"),
        (event(record={"id": ""}), "invalid_event: record.id must be a non-empty string"),
        (record(tags=["a", {"b": 1}]), "invalid_event: record.tags contains an object"),
        (record(tags=["a", None]), "invalid_event: record.tags contains null"),
        (record(tags=[["a"]]), "invalid_event: record.tags contains a list"),
        (record(tags=[float("nan")]), "invalid_event: record.tags contains a value that is not a finite number"),
        (record(nested={"b": 1}), "invalid_event: record.nested is an object"),
        (record(missing=None), "invalid_event: record.missing is null"),
        (record(ratio=float("inf")), "invalid_event: record.ratio is not a finite number"),
        (record(ratio=np.float64("nan")), "invalid_event: record.ratio is not a finite number"),
        (record(when=object()), "invalid_event: record.when has unsupported type object"),
    ],
)
def test_invalid_events_have_a_precise_reason(candidate: Any, reason: str) -> None:
    assert validate_event(candidate) == reason


def encode(candidate: Any) -> bytes:
    return orjson.dumps(wire_event(candidate), option=DUMPS_OPTIONS)


def test_the_wire_form_is_exactly_the_four_fields_and_leaves_the_event_alone() -> None:
    original = {**event(), "line_no": 7, "message_id": "m1"}
    snapshot = orjson.dumps(original)

    sent = orjson.loads(encode(original))

    assert sent == event()
    assert orjson.dumps(original) == snapshot


def test_the_wire_form_encodes_numpy_values_and_mappings() -> None:
    sent = orjson.loads(encode(MappingProxyType(record(n=np.int64(3), flag=np.bool_(True)))))

    assert sent["record"] == {"id": "r1", "n": 3, "flag": True}


def test_encode_raises_on_what_validation_cannot_see() -> None:
    with pytest.raises(orjson.JSONEncodeError):
        encode(record(**{"big": 2**64}))
