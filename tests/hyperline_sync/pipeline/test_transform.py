"""Transform: one bucket per line, the default mapping's fields, rejects, and no leaked writeKey."""

from __future__ import annotations

import gc
import itertools
from typing import Any

import orjson
import pytest

from hyperline_sync.config.mapping import MappingConfig, parse_mapping
from hyperline_sync.pipeline.rejects import RAW_PREVIEW_BYTES
from hyperline_sync.pipeline.transform import EVENT_COLUMNS, ChunkResult, transform_chunk
from hyperline_sync.sources.archive.reading import MAX_LINE_BYTES, LineChunk

SECRET = "wk_SECRET_test_1234567890"
_ids = itertools.count()
ABSENT = object()


def track(**fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": "API Call",
        "messageId": f"msg-{next(_ids)}",
        "userId": "user_1",
        "timestamp": "2026-01-05T10:00:00.123Z",
        "properties": {"endpoint": "/v1/x", "ms": 5},
        "context": {"library": {"name": "analytics-node"}},
        "writeKey": SECRET,
    }
    for name, value in fields.items():
        if value is ABSENT:
            del message[name]
        else:
            message[name] = value
    return message


def run(*lines: dict | bytes, mapping: MappingConfig | None = None, line_nos: list[int] | None = None) -> ChunkResult:
    raw = [line if isinstance(line, bytes) else orjson.dumps(line) for line in lines]
    chunk = LineChunk("segment-logs/src/1767571200000/a.gz", 1, raw, line_nos)
    result = transform_chunk(chunk, mapping or MappingConfig())
    assert result.read == len(raw) == len(result.events) + result.rejected + result.skipped
    assert result.rejected == len(result.rejects)
    return result


def only_event(result: ChunkResult) -> dict[str, Any]:
    assert len(result.events) == 1, result.rejects
    return result.events.to_dict("records")[0]


def reasons(result: ChunkResult) -> list[str]:
    return [reject["reason"] for reject in result.rejects]


def test_default_mapping_fields() -> None:
    message = track(properties={"endpoint": "/v1/x", "plan": {"name": "pro"}, "gone": None, "id": "p"})
    result = run(message)
    event = only_event(result)
    assert list(result.events.columns) == list(EVENT_COLUMNS)
    assert event == {
        "message_id": message["messageId"],
        "customer_id": "user_1",
        "event_type": "API Call",
        "timestamp": "2026-01-05T10:00:00.123Z",
        "record": {"endpoint": "/v1/x", "plan_name": "pro", "id": message["messageId"]},
        "line_no": 1,
    }
    assert result.dropped_properties == 2  # the null and the property named id


def test_non_track_calls_are_skipped() -> None:
    calls = [track(type=kind) for kind in ("identify", "page", "screen", "group", "alias")]
    result = run(*calls, track(type=ABSENT), track())
    assert (result.skipped, len(result.events), result.rejected) == (6, 1, 0)


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("user_1", "user_1"),
        (123, "123"),
        (77.0, "77"),
        (12.5, "12.5"),
        (" padded ", " padded "),
    ],
)
def test_customer_id_is_the_user_id_as_a_string(user_id: Any, expected: str) -> None:
    assert only_event(run(track(userId=user_id)))["customer_id"] == expected


def test_integers_beyond_64_bits_stay_whole_as_customer_ids() -> None:
    line = orjson.dumps(track()).replace(b'"userId":"user_1"', b'"userId":100000000000000000000')
    assert only_event(run(line))["customer_id"] == "100000000000000000000"


def test_property_integers_beyond_64_bits_are_dropped_and_counted() -> None:
    # No 64-bit JSON encoder (the hook's orjson) can write them, and a float would change the value.
    big = (
        b'{"huge":18446744073709551616,"low":-9223372036854775809,"max":18446744073709551615,'
        b'"list":[1,99999999999999999999]}'
    )
    line = orjson.dumps(track(properties={})).replace(b'"properties":{}', b'"properties":' + big)
    result = run(line)
    assert only_event(result)["record"] == {"max": 2**64 - 1, "id": only_event(result)["message_id"]}
    assert result.dropped_properties == 3


def test_bad_utf8_in_a_field_the_transform_skips_is_still_malformed() -> None:
    line = orjson.dumps(track(context={"ip": "x"})).replace(b'"ip":"x"', b'"ip":"\xff"')
    reject = run(line).rejects[0]
    assert (reject["reason"], "utf-8" in reject["detail"].lower()) == ("malformed_json", True)


def test_a_number_beyond_the_float_range_in_a_skipped_field() -> None:
    # Valid JSON that orjson cannot hold: the event is still delivered, and a dead letter of such a
    # message keeps the fields the transform read, never the writeKey.
    kept, rejected = (
        orjson.dumps(track(context={"n": 0}, **fields)).replace(b'"n":0', b'"n":1e999')
        for fields in ({}, {"userId": None})
    )
    result = run(kept, rejected)
    assert len(result.events) == 1
    assert reasons(result) == ["missing_customer_id"]
    dead = result.rejects[0]["event"]
    assert dead["type"] == "track" and dead["properties"] == {"endpoint": "/v1/x", "ms": 5}
    assert "writeKey" not in dead and SECRET not in str(dead)


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [
        (ABSENT, "missing_customer_id"),
        (None, "missing_customer_id"),
        ("", "missing_customer_id"),
        ("   ", "missing_customer_id"),
        (True, "invalid_customer_id"),
        ({"id": 1}, "invalid_customer_id"),
        (["u"], "invalid_customer_id"),
    ],
)
def test_unusable_customer_ids_are_rejected(user_id: Any, reason: str) -> None:
    result = run(track(userId=user_id))
    assert reasons(result) == [reason]
    assert result.events.empty


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("2024-06-10T19:23:32.411Z", "2024-06-10T19:23:32.411Z"),
        ("2024-06-10T21:23:32.123456+02:00", "2024-06-10T19:23:32.123Z"),
        ("2024-06-10T16:53:32.411-02:30", "2024-06-10T19:23:32.411Z"),
        ("2024-06-11T01:23:32.411+06:00", "2024-06-10T19:23:32.411Z"),
        ("2024-06-10T21:23:32+0200", "2024-06-10T19:23:32.000Z"),
        ("2024-06-10T19:23:32.123456789Z", "2024-06-10T19:23:32.123Z"),
        ("2024-06-10T19:23:32.9999Z", "2024-06-10T19:23:32.999Z"),
        ("2024-06-10T19:23:32.4Z", "2024-06-10T19:23:32.400Z"),
        ("2024-06-10T19:23:32Z", "2024-06-10T19:23:32.000Z"),
        ("2024-06-10 19:23:32.411Z", "2024-06-10T19:23:32.411Z"),
        ("2099-01-01T00:00:00.000Z", "2099-01-01T00:00:00.000Z"),
        ("2019-02-03T04:05:06.007+00:00", "2019-02-03T04:05:06.007Z"),
    ],
)
def test_timestamps_are_normalised_to_utc_milliseconds(raw: str, normalised: str) -> None:
    assert only_event(run(track(timestamp=raw)))["timestamp"] == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "2024-06-10T19:23:32",  # no zone: would silently be read as UTC
        "not-a-timestamp",
        "2024-13-10T00:00:00Z",
        "2024-06-10T25:00:00Z",
        "",
        None,
        1718047412000,
        ABSENT,
        "2024-06-10T19:23:32.411z",
        "9999-12-31T00:00:00Z",  # beyond MAX_YEAR
        "1600-01-01T00:00:00Z",  # before MIN_YEAR
    ],
)
def test_unusable_timestamps_are_rejected(raw: Any) -> None:
    assert reasons(run(track(timestamp=raw))) == ["invalid_timestamp"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event": ABSENT}, "missing_event"),
        ({"event": ""}, "missing_event"),
        ({"event": 42}, "missing_event"),
        ({"messageId": ABSENT}, "missing_message_id"),
        ({"messageId": ""}, "missing_message_id"),
        ({"messageId": 7}, "missing_message_id"),
        # several problems: the first check in the documented order decides the reason
        ({"event": None, "userId": None, "timestamp": "x"}, "missing_event"),
        ({"messageId": None, "userId": None}, "missing_message_id"),
        ({"userId": None, "timestamp": "x"}, "missing_customer_id"),
    ],
)
def test_message_rejects_and_their_precedence(fields: dict, reason: str) -> None:
    assert reasons(run(track(**fields))) == [reason]


def test_message_rejects_carry_the_message_without_write_key() -> None:
    message = track(userId=None)
    reject = run(track(), message).rejects[0]
    expected = {key: value for key, value in message.items() if key != "writeKey"}
    assert reject == {
        "reason": "missing_customer_id",
        "source_key": "segment-logs/src/1767571200000/a.gz",
        "line_no": 2,
        "event": expected,
    }


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (b'{"type":"track","event":"API Call"', "unexpected"),
        (b'{"type":"track","event":"Bad \xff bytes"}', "utf-8"),
        (b"[1,2,3]", "expected a JSON object, got list"),
        (b'"a string"', "expected a JSON object, got str"),
        (b"null", "expected a JSON object, got NoneType"),
        (b"   ", "empty"),
    ],
)
def test_malformed_lines(line: bytes, detail: str) -> None:
    reject = run(line).rejects[0]
    assert reject["reason"] == "malformed_json"
    assert detail.lower() in reject["detail"].lower()
    assert reject["raw"] == line.decode("utf-8", errors="replace")
    assert "event" not in reject


def test_raw_rejects_are_cut_and_scrubbed_of_the_write_key() -> None:
    padding = "p" * (RAW_PREVIEW_BYTES - 30)
    cut_inside_secret = f'{{"pad":"{padding}","writeKey":"{SECRET}", broken'.encode()
    result = run(cut_inside_secret, f'{{"writeKey" : "{SECRET}", "x":'.encode())
    for reject in result.rejects:
        assert len(reject["raw"]) <= RAW_PREVIEW_BYTES
        assert SECRET[:12] not in reject["raw"]
    assert '"writeKey" : "[REDACTED]"' in result.rejects[1]["raw"]


def test_over_long_lines_are_rejected_with_a_short_preview() -> None:
    line = b'{"writeKey":"' + SECRET.encode() + b'","blob":"' + b"y" * MAX_LINE_BYTES + b'"}'
    result = run(line[: MAX_LINE_BYTES + 1], track())
    assert reasons(result) == ["line_too_long"]
    raw = result.rejects[0]["raw"]
    assert raw.startswith('{"writeKey":"[REDACTED]","blob":"yyy')
    assert len(raw) <= RAW_PREVIEW_BYTES
    assert SECRET not in raw
    assert len(result.events) == 1


def test_write_key_never_reaches_events_or_rejects() -> None:
    lines = [
        track(),
        track(properties={"nested": {"writeKey": "still a property"}}),
        track(userId=None),
        b'{"writeKey":"' + SECRET.encode() + b'","type":"track",',
        track(type="identify"),
    ]
    result = run(*lines)
    dumped = orjson.dumps({"events": result.events.to_dict("records"), "rejects": result.rejects})
    assert SECRET.encode() not in dumped
    assert len(result.events) == 2


def test_line_numbers_follow_the_chunk_numbering() -> None:
    result = run(track(), track(userId=None), b"{", track(), line_nos=[3, 4, 9, 12])
    assert result.events["line_no"].tolist() == [3, 12]
    assert [(r["reason"], r["line_no"]) for r in result.rejects] == [("missing_customer_id", 4), ("malformed_json", 9)]


def test_events_filters_skip_before_other_checks() -> None:
    mapping = parse_mapping({"events": {"include": ["API Call", "Seat Added"], "exclude": ["Seat Added"]}})
    result = run(
        track(event="API Call"),
        track(event="Seat Added"),
        track(event="Report Exported", userId=None),  # filtered out: skipped, not rejected
        track(event=None),
        mapping=mapping,
    )
    assert (len(result.events), result.skipped, reasons(result)) == (1, 2, ["missing_event"])


def test_event_type_renames_and_unicode_names() -> None:
    mapping = parse_mapping({"event_types": {"API Call": "api_call"}})
    result = run(track(event="API Call"), track(event="Café Ordered ☕"), mapping=mapping)
    assert result.events["event_type"].tolist() == ["api_call", "Café Ordered ☕"]


@pytest.mark.parametrize(
    ("path", "fields", "expected"),
    [
        ("context.groupId", {"context": {"groupId": "acct_9"}}, "acct_9"),
        ("properties.accountId", {"properties": {"accountId": 55}}, "55"),
        ("anonymousId", {"anonymousId": "anon-1"}, "anon-1"),
    ],
)
def test_customer_id_from_another_field(path: str, fields: dict, expected: str) -> None:
    mapping = parse_mapping({"customer_id": path})
    assert only_event(run(track(userId=None, **fields), mapping=mapping))["customer_id"] == expected


def test_customer_id_path_through_a_non_object_is_missing() -> None:
    mapping = parse_mapping({"customer_id": "context.groupId"})
    assert reasons(run(track(context="flat"), mapping=mapping)) == ["missing_customer_id"]


def test_per_event_property_rules_and_static_fields() -> None:
    mapping = parse_mapping(
        {
            "properties": {
                "*": {"exclude": ["debug"]},
                "API Call": {"include": ["endpoint", "ms"], "rename": {"ms": "duration_ms"}},
            },
            "static": {"source": "segment"},
        }
    )
    api = track(event="API Call", properties={"endpoint": "/x", "ms": 3, "region": "eu"})
    other = track(event="Seat Added", properties={"seats": 2, "debug": True})
    records = run(api, other, mapping=mapping).events["record"].tolist()
    assert records == [
        {"endpoint": "/x", "duration_ms": 3, "source": "segment", "id": api["messageId"]},
        {"seats": 2, "source": "segment", "id": other["messageId"]},
    ]


def test_the_transform_does_not_deduplicate() -> None:
    message = track()
    assert run(message, message).events["message_id"].tolist() == [message["messageId"]] * 2


def test_empty_chunk() -> None:
    result = run()
    assert list(result.events.columns) == list(EVENT_COLUMNS)
    assert (result.read, result.skipped, result.rejected, result.dropped_properties) == (0, 0, 0, 0)


def test_dropped_properties_count_only_events_that_are_kept() -> None:
    result = run(track(properties={"a": None}), track(userId=None, properties={"a": None, "b": None}))
    assert result.dropped_properties == 1


@pytest.mark.parametrize("enabled", [True, False])
def test_the_gc_state_is_restored(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        run(track(), b"{")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
