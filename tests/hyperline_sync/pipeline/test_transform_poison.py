"""Poison lines: whatever one line makes the decoder or the mapping raise is that line's reject."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hyperline_sync.config.mapping import MappingConfig, parse_mapping
from hyperline_sync.pipeline import transform
from hyperline_sync.pipeline.rejects import KEPT_DEPTH, TOO_DEEP_NOTE, storable
from hyperline_sync.state.deadletter import ObjectDeadLetters, read_dead_letters
from tests.hyperline_sync.pipeline.test_transform import SECRET, reasons, run, track


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + b"1" + close * depth


def deep_line(field: str, value: bytes, **fields: object) -> bytes:
    """A track line whose `field` holds `value` (raw JSON), writeKey included."""
    head = orjson.dumps(track(**fields))[:-1]
    return head + b',"' + field.encode() + b'":' + value + b"}"


DEEP_DICT = b'{"a":' * 1000 + b"1" + b"}" * 1000


@pytest.mark.parametrize(
    "line",
    [
        deep_line("properties", b'{"x":' + nested(1_000) + b"}"),  # msgspec builds properties: RecursionError
        deep_line("context", nested(1_000)),  # a field msgspec only skips over: RecursionError all the same
        deep_line("properties", nested(100_000, b"{", b"}").replace(b"{", b'{"a":')),  # beyond orjson's limit too
        deep_line("properties", DEEP_DICT),  # nested objects: flattening properties recurses
    ],
    ids=["properties", "context", "100k-deep", "objects"],
)
def test_a_line_nested_too_deep_is_its_own_reject(line: bytes) -> None:
    good = [track(), track()]
    result = run(good[0], line, good[1], track(userId=None))
    assert result.events["message_id"].tolist() == [good[0]["messageId"], good[1]["messageId"]]
    assert reasons(result) == ["too_deep", "missing_customer_id"]
    reject = result.rejects[0]
    assert reject["line_no"] == 2 and "RecursionError" in reject["detail"]
    assert len(reject["raw"]) <= 2048 and SECRET not in reject["raw"] and "[REDACTED]" in reject["raw"]


def test_a_line_nested_too_deep_when_its_customer_id_is_dug_out() -> None:
    mapping = parse_mapping({"customer_id": "context.groupId"})
    line = deep_line("context", b'{"groupId":' + DEEP_DICT + b"}")
    result = run(track(context={"groupId": "acct_1"}), line, mapping=mapping)
    assert len(result.events) == 1
    assert reasons(result) == ["too_deep"]


def test_any_error_while_mapping_one_line_is_that_lines_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error nobody foresaw in the mapping of one line fails that line, not the chunk."""
    build = transform.build_record

    def fussy(message_id, properties, rule, static, withheld):  # type: ignore[no-untyped-def]
        if isinstance(properties, dict) and properties.get("boom"):
            raise KeyError("boom")
        return build(message_id, properties, rule, static, withheld)

    monkeypatch.setattr(transform, "build_record", fussy)
    result = run(track(), track(properties={"boom": 1}), track())
    assert len(result.events) == 2
    assert reasons(result) == ["malformed_json"]
    assert result.rejects[0]["detail"] == "KeyError: 'boom'"


def test_a_deep_message_rejected_for_another_reason_still_fits_a_dead_letter(tmp_path: Path) -> None:
    """300 levels decode fine, but a dead letter (orjson) holds 254 at most: the message is cut, not lost."""
    line = deep_line("context", b'{"deep":' + nested(300) + b"}", userId=None, messageId="m-deep")
    result = run(line, mapping=MappingConfig())
    assert reasons(result) == ["missing_customer_id"]
    event = result.rejects[0]["event"]
    assert event["messageId"] == "m-deep" and "writeKey" not in event
    letters = ObjectDeadLetters(tmp_path / "x.jsonl.gz", "2026-01-05", "k", "run")
    letters.add("missing_customer_id", 1, event=event)
    path = letters.close()
    assert path is not None
    kept = read_dead_letters(path)[0]["event"]["context"]["deep"]
    depth = 1
    while isinstance(kept, list):
        kept, depth = kept[0], depth + 1
    assert (kept, depth) == (TOO_DEEP_NOTE, KEPT_DEPTH - 1)


def test_storable_keeps_ordinary_messages_as_they_are() -> None:
    message = track()
    assert storable(message) is message
