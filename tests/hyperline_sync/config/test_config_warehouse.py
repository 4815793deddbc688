"""Config of the `warehouse` source kind: parsing, lookback, and SQL names that are refused by key."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from hyperline_sync.config import ConfigError, S3ArchiveSourceConfig, WarehouseSourceConfig, parse_config
from hyperline_sync.config.models import WAREHOUSE_DEFAULT_LOOKBACK_DAYS

EXAMPLE = """
pipelines:
  - name: shop
    source:
      kind: warehouse
      conn_id: segment_warehouse       # any common-sql connection; Postgres tested
      schema: shop_prod                # the Segment source's schema
      events: [api_call, storage_used] # event tables to sync; omitted = every event through `tracks`
      lookback_days: 3                 # late loads
    mapping:
      customer_id: context.groupId
"""


def source(**keys: object) -> dict:
    return {"kind": "warehouse", "conn_id": "segment_warehouse", "schema": "shop_prod", **keys}


def pipeline_of(source_raw: dict, **pipeline: object) -> dict:
    return {"pipelines": [{"name": "p", "source": source_raw, **pipeline}]}


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return str(info.value)


def test_the_issue_example_parses() -> None:
    config = parse_config(yaml.safe_load(EXAMPLE))
    pipeline = config.pipelines[0]
    assert pipeline.source == WarehouseSourceConfig(
        conn_id="segment_warehouse", schema="shop_prod", events=("api_call", "storage_used"), lookback_days=3
    )
    assert pipeline.source.kind == "warehouse"
    assert pipeline.source.tables == ("api_call", "storage_used")
    assert pipeline.tuning.lookback_days == 3  # what the planner reads
    assert pipeline.mapping.customer_id == "context.groupId"
    with pytest.raises(ValidationError, match="frozen"):
        pipeline.source.schema = "x"  # type: ignore[misc]


def test_events_omitted_means_every_event_through_tracks() -> None:
    pipeline = parse_config(pipeline_of(source())).pipelines[0]
    assert pipeline.source.events == ()
    assert pipeline.source.tables == ("tracks",)


@pytest.mark.parametrize(
    ("source_keys", "tuning", "expected"),
    [
        ({}, None, WAREHOUSE_DEFAULT_LOOKBACK_DAYS),  # a warehouse loads late: 3 days unless told
        ({"lookback_days": 5}, None, 5),
        ({}, {"lookback_days": 2}, 2),  # the tuning key works for a warehouse too
        ({"lookback_days": 0}, {"lookback_days": 0}, 0),  # both, when equal
    ],
)
def test_lookback_days_from_either_key_is_the_planner_lookback(source_keys, tuning, expected) -> None:
    extra = {"tuning": tuning} if tuning is not None else {}
    pipeline = parse_config(pipeline_of(source(**source_keys), **extra)).pipelines[0]
    assert pipeline.source.lookback_days == pipeline.tuning.lookback_days == expected


def test_the_archive_keeps_its_own_default_lookback() -> None:
    raw = pipeline_of({"kind": "s3_archive", "url": "file:///data", "source_id": "src1"})
    pipeline = parse_config(raw).pipelines[0]
    assert isinstance(pipeline.source, S3ArchiveSourceConfig)
    assert pipeline.tuning.lookback_days == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            pipeline_of(source(lookback_days=3), tuning={"lookback_days": 1}),
            "pipelines[0].source.lookback_days: 3 conflicts with tuning.lookback_days (1)",
        ),
        (pipeline_of(source(schema="shop_prod; drop table x")), "pipelines[0].source.schema: must be a Segment"),
        (pipeline_of(source(schema='a"b')), "pipelines[0].source.schema: must be a Segment"),
        (pipeline_of(source(schema="Shop_Prod")), "pipelines[0].source.schema: must be a Segment"),
        (pipeline_of(source(schema="shop.prod")), "pipelines[0].source.schema: must be a Segment"),
        (pipeline_of(source(schema="")), "pipelines[0].source.schema: must not be empty"),
        (pipeline_of(source(schema="x" * 128)), "pipelines[0].source.schema: must be a Segment"),
        (pipeline_of(source(events=["api_call", 'a"b'])), "pipelines[0].source.events[1]: must be an event table"),
        (
            pipeline_of(source(events=["api_call; drop table x"])),
            "pipelines[0].source.events[0]: must be an event table",
        ),
        (pipeline_of(source(events=["API Call"])), "pipelines[0].source.events[0]: must be an event table"),
        (pipeline_of(source(events=["tracks"])), "pipelines[0].source.events[0]: 'tracks' is Segment's own table"),
        (pipeline_of(source(events=["identifies"])), "pipelines[0].source.events[0]: 'identifies' is Segment's"),
        (pipeline_of(source(events=["a", "a"])), "pipelines[0].source.events[1]: duplicate event table 'a'"),
        (pipeline_of(source(events=[])), "pipelines[0].source.events: must be a non-empty list"),
        (pipeline_of(source(events="api_call")), "pipelines[0].source.events: must be a non-empty list"),
        (pipeline_of(source(events=[3])), "pipelines[0].source.events[0]: must be a string"),
        (pipeline_of(source(conn_id="bad conn")), "pipelines[0].source.conn_id: must match"),
        (pipeline_of({"kind": "warehouse", "schema": "s"}), "pipelines[0].source.conn_id: is required"),
        (pipeline_of({"kind": "warehouse", "conn_id": "c"}), "pipelines[0].source.schema: is required"),
        (pipeline_of(source(lookback_days=-1)), "pipelines[0].source.lookback_days: must be >= 0"),
        (pipeline_of(source(lookback_days="3")), "pipelines[0].source.lookback_days: must be an integer"),
        (pipeline_of(source(url="s3://x")), "pipelines[0].source.url: unknown key"),
        (pipeline_of(source(table="x")), "pipelines[0].source.table: unknown key"),
        (pipeline_of({"kind": "bigquery"}), "pipelines[0].source.kind: must be one of: s3_archive, warehouse"),
    ],
)
def test_invalid_warehouse_sources_name_the_key(raw: dict, expected: str) -> None:
    assert error_of(raw).startswith(expected)
