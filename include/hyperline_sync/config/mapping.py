"""The `mapping` section of a pipeline: which events go to Hyperline and how they are shaped.

Paths and names refer to the Segment message as the S3 archive stores it (camelCase spec names:
`userId`, `event`, `properties`, `context.groupId`). The warehouse reader reuses this mapping: it
maps those paths to its snake_case columns and builds records with `build_record`.

YAML shape (every key optional)::

    mapping:
      events: {include: ["API Call"], exclude: ["Debug Ping"]}   # Segment event names
      event_types: {"API Call": api_call}                       # Segment name -> Hyperline event_type
      customer_id: userId                                       # dotted path into the message
      properties:                                               # keyed by Segment event name
        "*": {exclude: [debug]}                                 # rule for events without their own
        "API Call": {include: [endpoint, ms], rename: {ms: duration_ms}}
      static: {source: segment}                                 # fixed record fields

Record building: properties are flattened with `_` (`plan.name` -> `plan_name`), then selected
(`include`/`exclude` match a flattened name, or a top-level name to take all its children), then
renamed. Values Hyperline rejects (null, objects left after flattening, arrays of objects or of
mixed types) are dropped and counted, as is a property that would land on `id` or on a name
already taken (first in document order wins). `static` fields override properties; `id` is
always the messageId.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hyperline_sync.config import validation as v
from hyperline_sync.config.validation import ConfigError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "ConfigError",
    "MappingConfig",
    "PropertyRule",
    "build_record",
    "is_record_value",
    "parse_mapping",
]

DEFAULT_RULE_KEY = "*"
_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
_SECRET_FIELDS = frozenset({"writeKey"})


@dataclass(frozen=True)
class PropertyRule:
    """Property selection for one event name. `include=None` keeps every property."""

    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    rename: dict[str, str] = field(default_factory=dict)
    keeps_all: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Precomputed: checked once per event on the hot path.
        object.__setattr__(self, "keeps_all", self.include is None and not self.exclude and not self.rename)

    def selects(self, name: str, top: str) -> bool:
        if self.include is not None and name not in self.include and top not in self.include:
            return False
        return name not in self.exclude and top not in self.exclude


@dataclass(frozen=True)
class MappingConfig:
    """A validated `mapping` section. The default instance is DESIGN §4's default mapping."""

    include_events: frozenset[str] | None = None
    exclude_events: frozenset[str] = frozenset()
    event_types: dict[str, str] = field(default_factory=dict)
    customer_id: str = "userId"
    properties: dict[str, PropertyRule] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)

    @property
    def customer_id_path(self) -> tuple[str, ...]:
        return tuple(self.customer_id.split("."))

    @property
    def filters_events(self) -> bool:
        return self.include_events is not None or bool(self.exclude_events)

    def keeps_event(self, event: str) -> bool:
        if self.include_events is not None and event not in self.include_events:
            return False
        return event not in self.exclude_events

    def rule_for(self, event: str) -> PropertyRule:
        rule = self.properties.get(event)
        if rule is None:
            rule = self.properties.get(DEFAULT_RULE_KEY, _KEEP_ALL)
        return rule


_KEEP_ALL = PropertyRule()


def parse_mapping(raw: Any, path: str = "mapping") -> MappingConfig:
    """Validate a `mapping` section (already env-expanded) into a `MappingConfig`."""
    if raw is None:
        return MappingConfig()
    raw = v.mapping(raw, path, {"events", "event_types", "customer_id", "properties", "static"})
    include_events, exclude_events = _parse_events(raw.get("events"), v.child(path, "events"))
    return MappingConfig(
        include_events=include_events,
        exclude_events=exclude_events,
        event_types=_parse_event_types(raw.get("event_types"), v.child(path, "event_types")),
        customer_id=_parse_customer_id(raw.get("customer_id", "userId"), v.child(path, "customer_id")),
        properties=_parse_properties(raw.get("properties"), v.child(path, "properties")),
        static=_parse_static(raw.get("static"), v.child(path, "static")),
    )


def _parse_events(raw: Any, path: str) -> tuple[frozenset[str] | None, frozenset[str]]:
    if raw is None:
        return None, frozenset()
    raw = v.mapping(raw, path, {"include", "exclude"})
    include = raw.get("include")
    exclude = raw.get("exclude")
    return (
        None if include is None else frozenset(v.string_list(include, v.child(path, "include"))),
        frozenset() if exclude is None else frozenset(v.string_list(exclude, v.child(path, "exclude"))),
    )


def _parse_event_types(raw: Any, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    raw = v.string_map(raw, path)
    return {name: v.string(target, v.child(path, name)) for name, target in raw.items()}


def _parse_customer_id(raw: Any, path: str) -> str:
    value = v.string(raw, path)
    if not _PATH.match(value):
        raise ConfigError(path, "must be a dotted path such as userId or context.groupId")
    if value.split(".")[0] in _SECRET_FIELDS:
        raise ConfigError(path, "writeKey is a credential and never leaves the source")
    return value


def _parse_properties(raw: Any, path: str) -> dict[str, PropertyRule]:
    if raw is None:
        return {}
    raw = v.string_map(raw, path)
    return {event: _parse_rule(rule, v.child(path, event)) for event, rule in raw.items()}


def _parse_rule(raw: Any, path: str) -> PropertyRule:
    if raw is None:
        return _KEEP_ALL
    raw = v.mapping(raw, path, {"include", "exclude", "rename"})
    include = raw.get("include")
    exclude = raw.get("exclude")
    rename = _parse_rename(raw.get("rename"), v.child(path, "rename"))
    return PropertyRule(
        include=None if include is None else frozenset(v.string_list(include, v.child(path, "include"))),
        exclude=frozenset() if exclude is None else frozenset(v.string_list(exclude, v.child(path, "exclude"))),
        rename=rename,
    )


def _parse_rename(raw: Any, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    raw = v.string_map(raw, path)
    rename: dict[str, str] = {}
    taken: dict[str, str] = {}
    for source, target in raw.items():
        key_path = v.child(path, source)
        target = v.string(target, key_path)
        if target == "id":
            raise ConfigError(key_path, "cannot rename a property to id: record.id is always the messageId")
        if target in taken:
            raise ConfigError(key_path, f"{taken[target]!r} is already renamed to {target!r}")
        taken[target] = source
        rename[source] = target
    return rename


def _parse_static(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    raw = v.string_map(raw, path)
    for name, value in raw.items():
        key_path = v.child(path, name)
        if name == "id":
            raise ConfigError(key_path, "record.id is always the messageId")
        if not is_record_value(value):
            raise ConfigError(key_path, "must be a string, number, boolean, or a list of one of those")
    return dict(raw)


_SCALARS = frozenset({str, float, bool})
# JSON integers a 64-bit encoder can write (orjson's range); msgspec decodes longer ones exactly.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1


def is_record_value(value: Any) -> bool:
    """True for the value types Hyperline accepts in `record` (homogeneous scalar arrays only)."""
    kind = type(value)
    if kind is float:
        return value - value == 0.0  # finite
    if kind is int:
        return INT_MIN <= value <= INT_MAX
    return kind in _SCALARS or (kind is list and _homogeneous_scalars(value))


def _homogeneous_scalars(items: list[Any]) -> bool:
    """Only strings, only booleans, or only numbers (ints and floats mix)."""
    first: type | None = None
    for item in items:  # a plain loop: ~3x faster than all(...) on the usual 2-3 item arrays
        kind = type(item)
        if kind is int:
            if not INT_MIN <= item <= INT_MAX:
                return False
            kind = float
        elif kind is float:
            if item - item != 0.0:  # NaN or infinity (a warehouse's JSON can hold 1e999)
                return False
        elif kind is not str and kind is not bool:
            return False
        if first is None:
            first = kind
        elif kind is not first:
            return False
    return True


def build_record(message_id: str, properties: Any, rule: PropertyRule, static: dict[str, Any]) -> tuple[dict, int]:
    """Hyperline `record` for one event and the number of property values dropped."""
    record: dict[str, Any] = {}
    if type(properties) is dict:
        if rule.keeps_all:
            dropped = _flatten_all(properties, "", record)
        else:
            dropped = _flatten_selected(properties, "", "", rule, record)
    else:
        # `properties` missing or null is normal; any other shape is a value we could not use.
        dropped = 0 if properties is None else 1
    if static:
        record.update(static)
    record["id"] = message_id
    return record, dropped


def _flatten_all(properties: dict, prefix: str, record: dict) -> int:
    dropped = 0
    for key, value in properties.items():
        kind = type(value)
        # Cheapest checks first: this loop runs for every property of every event.
        if (
            kind is str
            or (kind is int and INT_MIN <= value <= INT_MAX)
            or (kind is float and value - value == 0.0)  # finite
            or kind is bool
            or (kind is list and _homogeneous_scalars(value))
        ):
            name = prefix + key if prefix else key
            if name in record or name == "id":
                dropped += 1
            else:
                record[name] = value
        elif kind is dict:
            dropped += _flatten_all(value, (prefix + key if prefix else key) + "_", record)
        else:
            dropped += 1
    return dropped


def _flatten_selected(properties: dict, prefix: str, top: str, rule: PropertyRule, record: dict) -> int:
    dropped = 0
    for key, value in properties.items():
        name = prefix + key
        top_name = top or key
        if type(value) is dict:
            if top_name not in rule.exclude:
                dropped += _flatten_selected(value, name + "_", top_name, rule, record)
            continue
        if not rule.selects(name, top_name):
            continue
        target = rule.rename.get(name, name)
        if not is_record_value(value) or target == "id" or target in record:
            dropped += 1
        else:
            record[target] = value
    return dropped
