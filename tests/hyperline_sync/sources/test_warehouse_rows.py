"""A page of warehouse rows as events: a row whose value makes the mapping raise is that row's reject."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hyperline_sync.config.mapping import MappingConfig
from hyperline_sync.sources.warehouse.rows import table_plan, transform_rows
from hyperline_sync.state.deadletter import ObjectDeadLetters, read_dead_letters

NAMES = ["id", "received_at", "uuid_ts", "timestamp", "event_text", "user_id", "endpoint", "payload"]
AT = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def row(message_id: str, payload: Any = None, user_id: str | None = "user_1") -> tuple:
    return (message_id, AT, AT, AT, "API Call", user_id, "/v1/x", payload)


def deep_dict(depth: int) -> dict:
    """Nested objects, as a json column could hold them (built without recursion)."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_row_nested_too_deep_is_its_own_reject(tmp_path: Path) -> None:
    mapping = MappingConfig()
    plan = table_plan("shop_prod.api_call", NAMES, "user_id", mapping)
    rows = [row("r1"), row("r2", deep_dict(5_000)), row("r3", {"plan": "pro"}), row("r4", user_id=None)]

    result = transform_rows("shop_prod.api_call@2026-03-01T10", plan, rows, 11, mapping)

    assert result.read == 4 == len(result.events) + result.rejected + result.skipped
    assert result.events["message_id"].tolist() == ["r1", "r3"]
    assert result.events["line_no"].tolist() == [11, 13]
    assert result.events["record"].tolist()[1] == {"endpoint": "/v1/x", "payload_plan": "pro", "id": "r3"}
    assert [(r["reason"], r["line_no"]) for r in result.rejects] == [("too_deep", 12), ("missing_customer_id", 14)]
    assert result.rejects[1]["event"]["id"] == "r4"

    letters = ObjectDeadLetters(tmp_path / "x.jsonl.gz", "2026-03-01", "k", "run")
    for reject in result.rejects:  # the deep row's value is cut to what a dead letter holds, not fatal
        letters.add(reject["reason"], reject["line_no"], event=reject["event"])
    path = letters.close()
    assert path is not None
    written = read_dead_letters(path)
    assert [w["event"]["id"] for w in written] == ["r2", "r4"]
