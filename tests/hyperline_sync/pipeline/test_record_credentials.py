"""Credential-named properties (writeKey, password, apiKey, secret, authorization) never reach
Hyperline's `record` unless `mapping.allow_properties` names them; each is a dropped property."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from hyperline_sync.config import MappingConfig, parse_mapping
from hyperline_sync.pipeline.transform import ChunkResult, transform_chunk
from hyperline_sync.sources.archive.reading import LineChunk

SECRET = "sk_live_credential_in_properties"
_ids = itertools.count()
CREDENTIALS = {
    "writeKey": SECRET, "password": SECRET, "apiKey": SECRET, "secret": SECRET, "authorization": SECRET,
    "WRITE_KEY": SECRET, "api_key": SECRET, "Password": SECRET, "AUTHORIZATION": SECRET,
}


def run(properties: dict[str, Any], mapping: MappingConfig | None = None) -> ChunkResult:
    message = {"type": "track", "event": "API Call", "messageId": f"msg-{next(_ids)}", "userId": "u1",
               "timestamp": "2026-01-05T10:00:00.123Z", "properties": properties}
    chunk = LineChunk("segment-logs/src/1767571200000/a.gz", 1, [orjson.dumps(message)])
    return transform_chunk(chunk, mapping or MappingConfig())


def record_of(result: ChunkResult) -> dict[str, Any]:
    (event,) = result.events.to_dict("records")
    return event["record"]


@pytest.mark.parametrize(
    "mapping",
    [None, {"properties": {"*": {"exclude": ["debug"]}}}, {"properties": {"*": {"rename": {"ms": "duration"}}}}],
    ids=["keep-all", "exclude", "rename"],
)
def test_credentials_are_dropped_and_counted(mapping: dict | None) -> None:
    result = run({"endpoint": "/x", "ms": 3, **CREDENTIALS}, None if mapping is None else parse_mapping(mapping))
    record = record_of(result)
    assert SECRET not in str(record)
    assert set(record) - {"id"} == ({"endpoint", "duration"} if mapping and "rename" in str(mapping)
                                    else {"endpoint", "ms"})
    assert result.dropped_properties == len(CREDENTIALS)


def test_nested_credentials_and_objects_named_like_one_are_dropped_value_by_value() -> None:
    properties = {"auth": {"password": SECRET, "user": "bob"}, "secret": {"value": SECRET, "kind": "token"},
                  "plan": "pro"}
    result = run(properties)
    assert record_of(result) == {"auth_user": "bob", "plan": "pro", "id": record_of(result)["id"]}
    assert result.dropped_properties == 3  # auth.password, secret.value, secret.kind


def test_an_included_credential_is_still_dropped_and_a_look_alike_is_kept() -> None:
    mapping = parse_mapping({"properties": {"API Call": {"include": ["password", "secret", "password_hint"]}}})
    result = run({"password": SECRET, "secret": {"value": SECRET}, "password_hint": "pet", "other": 1}, mapping)
    assert {k: v for k, v in record_of(result).items() if k != "id"} == {"password_hint": "pet"}
    assert result.dropped_properties == 2


def test_allow_properties_lets_the_named_credentials_through() -> None:
    mapping = parse_mapping({"allow_properties": ["apiKey", "AUTHORIZATION"]})
    result = run({"api_key": "k1", "apiKey": "k2", "Authorization": "Bearer x", "password": SECRET}, mapping)
    assert {k: v for k, v in record_of(result).items() if k != "id"} == {
        "api_key": "k1", "apiKey": "k2", "Authorization": "Bearer x"}
    assert result.dropped_properties == 1
