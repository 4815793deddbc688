"""The warehouse source's pure parts: Segment's snake_case, mapping paths to columns, identifier
quoting, column values to record values, and the wiring into `open_source` (no connection made).
The reading itself runs on a real Postgres in tests/hyperline_sync/sources/test_warehouse_postgres.py."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from hyperline_sync.config import PropertyRule, parse_config
from hyperline_sync.sources.base import open_source
from hyperline_sync.sources.errors import UnitReadError
from hyperline_sync.sources.warehouse.naming import column_for_path, column_rule, snake_case
from hyperline_sync.sources.warehouse.source import WarehouseReadError, WarehouseSource
from hyperline_sync.sources.warehouse.values import iso_ms, record_value, timestamp_texts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # segmentio/go-snakecase's own test cases
        ("sample text", "sample_text"),
        ("sample-text", "sample_text"),
        ("sample_text", "sample_text"),
        ("sample___text", "sample_text"),
        ("sampleText", "sample_text"),
        ("inviteYourCustomersAddInvites", "invite_your_customers_add_invites"),
        ("sample 2 Text", "sample_2_text"),
        ("   sample   2    Text   ", "sample_2_text"),
        ("   $#$sample   2    Text   ", "sample_2_text"),
        ("SAMPLE 2 TEXT", "sample_2_text"),
        ("___$$Base64Encode", "base64_encode"),
        ("FOO:BAR$BAZ", "foo_bar_baz"),
        ("something.com", "something_com"),
        ("$something%", "something"),
        ("•¶§ƒ˚foo˙∆˚¬", "foo"),
        # docs/segment-formats.md, "Names and values"
        ("Order Completed", "order_completed"),
        ("orderId", "order_id"),
        ("productID", "product_id"),
        ("UserID", "user_id"),
        ("pageURL", "page_url"),
        ("Cart Total ($)", "cart_total"),
        ("checkout-step", "checkout_step"),
        ("Plan.Name", "plan_name"),
        ("__private", "private"),
        ("accountType", "account_type"),
        ("éclair Ordered", "clair_ordered"),
        ("CStringRef", "cstring_ref"),
        ("Video Played 2x", "video_played_2x"),
        ("2FA Enabled", "2fa_enabled"),
        ("v2FA", "v_2fa"),
        ("", ""),
    ],
)
def test_snake_case_is_segments(name: str, expected: str) -> None:
    assert snake_case(name) == expected


@pytest.mark.parametrize(
    ("path", "column"),
    [
        ("userId", "user_id"),
        ("user_id", "user_id"),
        ("context.groupId", "context_group_id"),
        ("context.traits.accountId", "context_traits_account_id"),
        ("properties.accountId", "account_id"),
        ("account_id", "account_id"),
        ("properties", "properties"),
    ],
)
def test_mapping_paths_name_warehouse_columns(path: str, column: str) -> None:
    assert column_for_path(path) == column


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        ("", ""),
        ('["a","b"]', '["a","b"]'),  # arrays are JSON text in Segment warehouses: they stay strings
        (7, 7),
        (True, True),
        (False, False),
        (9007199254740993, 9007199254740993),
        (Decimal("42"), 42),
        (Decimal("42.000"), 42),
        (Decimal("-0"), 0),
        (Decimal("74.97"), 74.97),
        (Decimal("12345678901234.5678"), 12345678901234.568),  # the nearest double: documented precision
        (Decimal("18446744073709551615"), 18446744073709551615),  # the largest integer JSON encoders write
        (Decimal("1e30"), 1e30),  # an integer no 64-bit encoder writes: the nearest double
        (Decimal("NaN"), None),
        (Decimal("Infinity"), None),
        (1.5, 1.5),
        (float("nan"), None),
        (dt.datetime(2026, 3, 1, 9, 2, 59, 999999, tzinfo=dt.UTC), "2026-03-01T09:02:59.999Z"),
        (dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
         "2026-03-01T04:30:00.000Z"),
        (dt.datetime(2026, 3, 1, 9, 0), "2026-03-01T09:00:00.000Z"),  # naive: UTC
        (dt.date(2026, 3, 1), "2026-03-01"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ({"a": 1}, {"a": 1}),  # json columns: build_record flattens and checks them
        (b"\x00", None),
    ],
)
def test_column_values_become_record_values(value: object, expected: object) -> None:
    got = record_value(value)
    assert got == expected and type(got) is type(expected)


def test_timestamps_keep_four_year_digits() -> None:
    assert iso_ms(dt.datetime(5, 1, 2, tzinfo=dt.UTC)) == "0005-01-02T00:00:00.000Z"


def test_the_timestamp_column_is_formatted_like_one_value_at_a_time() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    values = [
        dt.datetime(2026, 3, 1, 9, 2, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 10, 0, 0, 1500, tzinfo=paris),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),  # before the epoch: still truncated
        dt.datetime(1500, 1, 1, tzinfo=dt.UTC),  # outside the transform's years: it rejects them itself
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        None,
    ]
    stamps, canonical = timestamp_texts(values)
    assert stamps == [iso_ms(v) if v else None for v in values]
    assert stamps[:2] == ["2026-03-01T09:02:59.999Z", "2026-03-01T09:00:00.001Z"]
    assert canonical == [True] * 5 + [False]
    assert timestamp_texts([dt.datetime(2026, 3, 1, 9, 0), None]) == (["2026-03-01T09:00:00.000Z", None], [True, False])
    # A driver that returns text: passed on for the transform to parse (not canonical).
    assert timestamp_texts(["2026-03-01 09:00:00+00", None]) == (["2026-03-01 09:00:00+00", None], [False, False])


def test_property_rules_match_snake_cased_columns() -> None:
    rule = PropertyRule(include=frozenset({"durationMs", "endpoint"}), exclude=frozenset({"Plan.Name"}),
                        rename={"durationMs": "ms"})
    by_column = column_rule(rule)
    assert by_column.include == {"duration_ms", "endpoint"}
    assert by_column.exclude == {"plan_name"}
    assert by_column.rename == {"duration_ms": "ms"}
    keep_all = PropertyRule()
    assert column_rule(keep_all) is keep_all


def pipeline(**source: object):
    raw = {"pipelines": [{"name": "wh", "source": {"kind": "warehouse", "conn_id": "no_such_conn_here",
                                                    "schema": "shop_prod", **source}}]}
    return parse_config(raw).pipelines[0]


def test_open_source_builds_a_warehouse_source_without_connecting() -> None:
    source = open_source(pipeline(events=["api_call"]))
    assert isinstance(source, WarehouseSource)
    assert source.customer_column == "user_id"
    assert source.config.tables == ("api_call",)


def test_a_missing_connection_is_a_unit_read_error_naming_it() -> None:
    source = WarehouseSource(pipeline())
    with pytest.raises(WarehouseReadError, match="connection no_such_conn_here") as info:
        source.list_units(dt.date(2026, 3, 1))
    assert isinstance(info.value, UnitReadError)


def test_an_archive_pipeline_is_not_a_warehouse_source() -> None:
    raw = {"pipelines": [{"name": "a", "source": {"kind": "s3_archive", "url": "file:///x", "source_id": "s"}}]}
    with pytest.raises(TypeError):
        WarehouseSource(parse_config(raw).pipelines[0])
