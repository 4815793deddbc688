"""A page of rows of one warehouse table as transformed events.

`table_plan` decides once per table which columns are read: the required ones first (`ID`,
`RECEIVED_AT`, ... index them), the customer id's column, the property columns (not Segment's
common ones) and the `context_*` columns a property rule includes by name. `transform_rows` turns a
page into `TrackColumns` and hands them to the transform's shared mapping stage. A row whose
conversion raises (a json value nested beyond what the mapping recurses into) is that row's reject
(`too_deep`, or `malformed_json` for anything else), never its slice's failure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from hyperline_sync.config.mapping import MappingConfig, PropertyRule
from hyperline_sync.pipeline.record import build_record
from hyperline_sync.pipeline.rejects import failure_reason, storable
from hyperline_sync.pipeline.transform import ChunkResult, TrackColumns, clean_customer_id, map_track_columns
from hyperline_sync.sources.warehouse.naming import COMMON_COLUMNS, CONTEXT_PREFIX, column_rule, snake_case
from hyperline_sync.sources.warehouse.values import json_number, record_value, timestamp_texts

__all__ = ["EVENT_TEXT", "ID", "RECEIVED_AT", "REQUIRED", "TIMESTAMP", "UUID_TS", "TablePlan", "table_plan",
           "transform_rows"]

log = logging.getLogger(__name__)

# Selected first, in this order, from every table.
REQUIRED = ("id", "received_at", "uuid_ts", "timestamp", "event_text")
ID, RECEIVED_AT, UUID_TS, TIMESTAMP, EVENT_TEXT = range(5)
_PLAIN_TYPES = frozenset({str, int, bool})  # column values that are record values as they are


@dataclass
class TablePlan:
    """How one table is read: the selected columns and the record's columns per property rule."""

    table: str
    names: tuple[str, ...]
    customer: int | None
    base_properties: tuple[int, ...]  # non-common columns
    context: dict[str, int]  # context_* column -> index (selected only when a rule includes it)
    rules: dict[int, tuple[PropertyRule, tuple[tuple[int, str], ...]]]  # id(rule) -> (column rule, columns)

    def for_rule(self, rule: PropertyRule) -> tuple[PropertyRule, tuple[tuple[int, str], ...]]:
        """The rule with column names, and the (index, name) of the columns it may put in the record."""
        found = self.rules.get(id(rule))
        if found is None:
            by_column = column_rule(rule)
            indices = self.base_properties
            if by_column.include is not None:
                indices += tuple(self.context[c] for c in sorted(by_column.include) if c in self.context)
            if not by_column.keeps_all:  # pre-select: unselected columns are not counted as dropped anyway
                indices = tuple(i for i in indices if by_column.selects(self.names[i], self.names[i]))
            found = self.rules[id(rule)] = (by_column, tuple((i, self.names[i]) for i in indices))
        return found


def table_plan(table: str, names: Sequence[str], customer_column: str, mapping: MappingConfig,
               load_column: str = "uuid_ts") -> TablePlan:
    """The columns to read of `table` (`schema.table`), which has `names` (all of REQUIRED among them,
    `load_column` standing for `uuid_ts`: BigQuery's cursor is `loaded_at`)."""
    selected = [load_column if c == "uuid_ts" else c for c in REQUIRED]
    customer = None
    if customer_column in names:
        if customer_column not in selected:
            selected.append(customer_column)
        customer = selected.index(customer_column)
    else:
        log.warning("%s has no column %s (mapping.customer_id %s): its rows are missing_customer_id",
                    table, customer_column, mapping.customer_id)
    properties = [c for c in names if c not in COMMON_COLUMNS and not c.startswith(CONTEXT_PREFIX)]
    included = {snake_case(name) for rule in mapping.properties.values() for name in rule.include or ()}
    context = [c for c in names if c.startswith(CONTEXT_PREFIX) and c in included]
    for column in properties + context:
        if column not in selected:
            selected.append(column)
    return TablePlan(
        table=table,
        names=tuple(selected),
        customer=customer,
        base_properties=tuple(selected.index(c) for c in properties),
        context={c: selected.index(c) for c in context},
        rules={},
    )


def transform_rows(
    key: str, plan: TablePlan, rows: list[tuple], first_line: int, mapping: MappingConfig
) -> ChunkResult:
    """Rows of one page -> `TrackColumns` (sanitised, records built) -> the shared mapping stage."""
    names, customer_at = plan.names, plan.customer
    static, withheld = mapping.static, mapping.withheld
    by_event: dict[str | None, tuple[PropertyRule, tuple[tuple[int, str], ...]]] = {}
    events, message_ids, customers, records, dropped = [], [], [], [], []
    failed: list[dict[str, Any]] = []
    plain = _PLAIN_TYPES
    for n, row in enumerate(rows):
        try:  # whatever one row raises is its reject (no cost in the loop unless raised)
            message_id = row[ID]
            if type(message_id) is not str or not message_id or message_id.isspace():
                message_id = None
            event = row[EVENT_TEXT]
            if type(event) is not str or not event or event.isspace():
                event = None
            value = row[customer_at] if customer_at is not None else None
            if type(value) is not str or not value or value.isspace():
                value = clean_customer_id(json_number(value) if type(value) is Decimal else value)
            found = by_event.get(event)
            if found is None:
                found = by_event[event] = plan.for_rule(mapping.rule_for(event or ""))
            rule, selected = found
            properties = {
                name: v if type(v) in plain else record_value(v) for i, name in selected if (v := row[i]) is not None
            }
            record, lost = build_record(message_id, properties, rule, static, withheld)
        except MemoryError:
            raise  # the process's state, not the row's
        except Exception as exc:
            failed.append({"reason": failure_reason(exc), "source_key": key, "line_no": first_line + n,
                           "event": storable(dict(zip(names, row, strict=True)))})
            continue
        events.append(event)
        message_ids.append(message_id)
        customers.append(value)
        records.append(record)
        dropped.append(lost)
    line_no = np.arange(first_line, first_line + len(rows), dtype=np.int64)
    kept = rows
    if failed:
        gone = {reject["line_no"] - first_line for reject in failed}
        kept = [row for n, row in enumerate(rows) if n not in gone]
        line_no = np.delete(line_no, sorted(gone))
    timestamps, canonical = timestamp_texts([row[TIMESTAMP] for row in kept])

    def original(i: int) -> dict[str, Any]:
        return dict(zip(names, kept[i], strict=True))

    columns = TrackColumns(
        source_key=key,
        line_no=line_no,
        event=events,
        message_id=message_ids,
        customer_id=customers,
        timestamp=timestamps,
        canonical=canonical,
        record=records,
        dropped=dropped,
        original=original,
    )
    result = map_track_columns(columns, mapping)
    result.read = len(rows)
    if failed:
        result.rejects = sorted(failed + result.rejects, key=lambda reject: reject["line_no"])
        result.rejected = len(result.rejects)
    return result
