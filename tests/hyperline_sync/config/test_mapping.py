"""Mapping section: validation with key paths, and how a Hyperline `record` is built."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hyperline_sync.config import ConfigError, MappingConfig, PropertyRule, parse_mapping
from hyperline_sync.pipeline.record import build_record

KEEP_ALL = PropertyRule()


def record_of(properties: Any, rule: PropertyRule = KEEP_ALL, static: dict | None = None) -> tuple[dict, int]:
    return build_record("msg-1", properties, rule, static or {})


def test_absent_mapping_is_the_default_mapping() -> None:
    assert parse_mapping(None) == MappingConfig()
    assert MappingConfig().customer_id_path == ("userId",)
    assert not MappingConfig().filters_events


def test_full_mapping_section() -> None:
    mapping = parse_mapping(
        {
            "events": {"include": ["API Call", "Seat Added"], "exclude": ["Seat Added"]},
            "event_types": {"API Call": "api_call"},
            "customer_id": "context.groupId",
            "properties": {
                "*": {"exclude": ["debug"]},
                "API Call": {"include": ["endpoint", "ms"], "rename": {"ms": "duration_ms"}},
            },
            "static": {"source": "segment", "tags": ["a", "b"]},
        }
    )
    assert mapping.include_events == frozenset({"API Call", "Seat Added"})
    assert mapping.exclude_events == frozenset({"Seat Added"})
    assert mapping.customer_id_path == ("context", "groupId")
    assert mapping.rule_for("API Call") == PropertyRule(
        include=frozenset({"endpoint", "ms"}), rename={"ms": "duration_ms"}
    )
    assert mapping.rule_for("Other") == PropertyRule(exclude=frozenset({"debug"}))
    assert mapping.static == {"source": "segment", "tags": ["a", "b"]}
    assert mapping.keeps_event("API Call")
    assert not mapping.keeps_event("Seat Added")  # exclude wins over include
    assert not mapping.keeps_event("Report Exported")  # not included


def test_rule_for_without_default_keeps_everything() -> None:
    mapping = parse_mapping({"properties": {"API Call": {"include": ["ms"]}}})
    assert mapping.rule_for("Seat Added").keeps_all
    assert not mapping.rule_for("API Call").keeps_all


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"events": {"include": "API Call"}}, "mapping.events.include: must be a list of strings"),
        ({"events": {"include": ["ok", 3]}}, "mapping.events.include[1]: must be a string"),
        ({"events": {"only": []}}, "mapping.events.only: unknown key"),
        ({"event_types": ["API Call"]}, "mapping.event_types: must be a mapping"),
        ({"customer_id": "properties..accountId"}, "mapping.customer_id: must be a dotted path"),
        ({"customer_id": "writeKey"}, "mapping.customer_id: writeKey is a credential"),
        ({"customer_id": 12}, "mapping.customer_id: must be a string"),
        ({"properties": {"API Call": {"keep": ["ms"]}}}, 'mapping.properties["API Call"].keep: unknown key'),
        ({"properties": {"API Call": {"rename": {"ms": "id"}}}}, 'mapping.properties["API Call"].rename.ms: cannot'),
        (
            {"properties": {"*": {"rename": {"a": "x", "b": "x"}}}},
            "mapping.properties[\"*\"].rename.b: 'a' is already renamed to 'x'",
        ),
        ({"static": {"id": "x"}}, "mapping.static.id: record.id is always the messageId"),
        ({"static": {"meta": {"a": 1}}}, "mapping.static.meta: must be a string, number, boolean"),
        ({"static": {"mixed": ["a", 1]}}, "mapping.static.mixed: must be a string, number, boolean"),
    ],
)
def test_invalid_mapping_names_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(raw)
    assert str(caught.value).startswith(expected)


def test_default_record_flattens_and_drops_what_hyperline_rejects() -> None:
    properties = {
        "endpoint": "/v1/invoices",
        "ms": 12,
        "ratio": 0.5,
        "cached": False,
        "tags": ["a", "b"],
        "sizes": [1, 2.5],
        "flags": [True, False],
        "empty": [],
        "plan": {"name": "pro", "billing": {"interval": "month"}, "seats": None},
        "products": [{"sku": "a"}],
        "mixed": ["a", 1],
        "nested_list": [["a"]],
        "bools_and_ints": [True, 1],
        "coupon": None,
    }
    record, dropped = record_of(properties)
    assert record == {
        "endpoint": "/v1/invoices",
        "ms": 12,
        "ratio": 0.5,
        "cached": False,
        "tags": ["a", "b"],
        "sizes": [1, 2.5],
        "flags": [True, False],
        "empty": [],
        "plan_name": "pro",
        "plan_billing_interval": "month",
        "id": "msg-1",
    }
    # plan.seats, products, mixed, nested_list, bools_and_ints, coupon
    assert dropped == 6


@pytest.mark.parametrize("rule", [PropertyRule(), PropertyRule(include=frozenset({"a", "b", "c", "ok"}))])
def test_non_finite_numbers_are_dropped(rule: PropertyRule) -> None:
    # JSON cannot hold them, but a warehouse's JSON column can (1e999 reads as infinity)
    properties = {"a": math.inf, "b": math.nan, "c": [1.0, -math.inf], "ok": [1, 2.5]}
    assert record_of(properties, rule) == ({"ok": [1, 2.5], "id": "msg-1"}, 3)


def test_property_named_id_never_replaces_the_message_id() -> None:
    record, dropped = record_of({"id": "from-properties", "x": 1})
    assert record == {"x": 1, "id": "msg-1"}
    assert dropped == 1


def test_flattening_collision_keeps_the_first_and_counts_the_other() -> None:
    record, dropped = record_of({"plan": {"name": "nested"}, "plan_name": "flat"})
    assert record["plan_name"] == "nested"
    assert dropped == 1


@pytest.mark.parametrize(("properties", "dropped"), [(None, 0), ("a string", 1), ([1, 2], 1), ({}, 0)])
def test_missing_or_odd_properties(properties: Any, dropped: int) -> None:
    assert record_of(properties) == ({"id": "msg-1"}, dropped)


def test_include_matches_flattened_or_top_level_names_and_rename_applies() -> None:
    rule = PropertyRule(include=frozenset({"endpoint", "plan", "shipping_cost", "ms"}), rename={"ms": "duration_ms"})
    properties = {
        "endpoint": "/x",
        "region": "eu",
        "ms": 3,
        "plan": {"name": "pro", "tier": 2},
        "shipping": {"method": "ground", "cost": 10},
    }
    record, dropped = record_of(properties, rule)
    assert record == {
        "endpoint": "/x",
        "duration_ms": 3,
        "plan_name": "pro",
        "plan_tier": 2,
        "shipping_cost": 10,
        "id": "msg-1",
    }
    assert dropped == 0


def test_exclude_and_selected_values_still_checked() -> None:
    rule = PropertyRule(exclude=frozenset({"debug", "plan_tier"}))
    properties = {"debug": {"trace": "x"}, "plan": {"name": "pro", "tier": 2}, "nulls": None}
    record, dropped = record_of(properties, rule)
    assert record == {"plan_name": "pro", "id": "msg-1"}
    assert dropped == 1  # `nulls`; excluded properties are not "dropped"


def test_rename_onto_an_existing_name_keeps_the_first() -> None:
    rule = PropertyRule(rename={"ms": "duration"})
    record, dropped = record_of({"duration": 1, "ms": 2}, rule)
    assert record == {"duration": 1, "id": "msg-1"}
    assert dropped == 1


def test_rename_can_rescue_a_property_named_id() -> None:
    record, dropped = record_of({"id": "order-9"}, PropertyRule(rename={"id": "order_id"}))
    assert record == {"order_id": "order-9", "id": "msg-1"}
    assert dropped == 0


def test_static_fields_override_properties_but_not_the_id() -> None:
    record, _ = record_of({"source": "app", "x": 1}, static={"source": "segment"})
    assert record == {"source": "segment", "x": 1, "id": "msg-1"}
