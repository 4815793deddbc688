"""The `mapping` section of a pipeline: which events go to Hyperline and how they are shaped.

Paths and names refer to the Segment message as the S3 archive stores it (camelCase spec names:
`userId`, `event`, `properties`, `context.groupId`). The warehouse reader reuses this mapping: it
maps those paths to its snake_case columns. Records are built by `pipeline.record.build_record`.

YAML shape (every key optional)::

    mapping:
      events: {include: ["API Call"], exclude: ["Debug Ping"]}   # Segment event names
      event_types: {"API Call": api_call}                       # Segment name -> Hyperline event_type
      customer_id: userId                                       # dotted path into the message
      properties:                                               # keyed by Segment event name
        "*": {exclude: [debug]}                                 # rule for events without their own
        "API Call": {include: [endpoint, ms], rename: {ms: duration_ms}}
      static: {source: segment}                                 # fixed record fields
      allow_properties: [apiKey]                                # credential-named properties to send
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from hyperline_sync.config.base import FrozenModel, Text
from hyperline_sync.config.errors import problem, validate
from hyperline_sync.pipeline.record import (
    CREDENTIAL_PROPERTIES,
    Selection,
    Withheld,
    credential_key,
    is_record_value,
    selected,
    withheld_names,
)

__all__ = ["DEFAULT_RULE_KEY", "MappingConfig", "PropertyRule", "parse_mapping"]

DEFAULT_RULE_KEY = "*"
_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
Names = frozenset[Text]


class PropertyRule(FrozenModel):
    """Property selection for one event name. `include=None` keeps every property."""

    include: Names | None = Field(None, description="Properties to keep (flattened names, or a top-level name "
                                                    "for all its children); omitted keeps every property.")
    exclude: Names = Field(frozenset(), description="Properties to leave out (flattened or top-level names).")
    rename: dict[Text, Text] = Field(default_factory=dict, description="Flattened name -> name in the record.")

    @field_validator("rename")
    @classmethod
    def _rename_targets(cls, rename: dict[str, str]) -> dict[str, str]:
        taken: dict[str, str] = {}
        for source, target in rename.items():
            if target == "id":
                raise problem("cannot rename a property to id: record.id is always the messageId", at=(source,))
            if target in taken:
                raise problem(f"{taken[target]!r} is already renamed to {{value}}", at=(source,), value=target)
            taken[target] = source
        return rename

    @cached_property
    def keeps_all(self) -> bool:
        """Checked once per event on the hot path (a cached property: computed once per rule)."""
        return self.include is None and not self.exclude and not self.rename

    @cached_property
    def selection(self) -> Selection:
        """(include, exclude, rename) for `build_record`: plain locals read faster than model fields."""
        return self.include, self.exclude, self.rename

    def selects(self, name: str, top: str) -> bool:
        return selected(self.include, self.exclude, name, top)

    def with_names(self, convert: Callable[[str], str]) -> PropertyRule:
        """The rule with its property names converted (e.g. to warehouse columns); targets unchanged."""
        return PropertyRule(
            include=None if self.include is None else frozenset(convert(n) for n in self.include),
            exclude=frozenset(convert(n) for n in self.exclude),
            rename={convert(source): target for source, target in self.rename.items()},
        )


_KEEP_ALL = PropertyRule()


class EventFilter(FrozenModel):
    include: Names | None = Field(None, description="Segment event names to sync; omitted: every event.")
    exclude: Names = Field(frozenset(), description="Segment event names never synced (wins over include).")


def _customer_path(value: str) -> str:
    if not _PATH.match(value):
        raise problem("must be a dotted path such as userId or context.groupId")
    for part in value.split("."):
        if name := credential_key(part):
            raise problem(f"{name} is a credential and never leaves the source")
    return value


def _static_values(static: dict[str, Any]) -> dict[str, Any]:
    for name, value in static.items():
        if name == "id":
            raise problem("record.id is always the messageId", at=(name,))
        if not is_record_value(value):
            raise problem("must be a string, number, boolean, or a list of one of those", at=(name,))
    return static


def _credential_names(names: tuple[str, ...]) -> tuple[str, ...]:
    for i, name in enumerate(names):
        if not credential_key(name):
            known = ", ".join(CREDENTIAL_PROPERTIES)
            raise problem("{value} is not a withheld property name (those are " + known + ", any case, "
                          "camelCase or snake_case); every other property is sent anyway", at=(i,), value=name)
    return names


class MappingConfig(FrozenModel):
    """A validated `mapping` section. The default instance is the default mapping: every track
    event, customer from `userId`, every property flattened, no credential-named property."""

    events: EventFilter = Field(default_factory=EventFilter, description="Which Segment events are synced.")
    event_types: dict[Text, Text] = Field(default_factory=dict,
                                          description="Segment event name -> Hyperline event_type (default: "
                                                      "the event name).")
    customer_id: Annotated[Text, AfterValidator(_customer_path)] = Field(
        "userId", description="Dotted path of the Hyperline customer id in the Segment message.")
    properties: dict[Text, PropertyRule] = Field(default_factory=dict,
                                                 description=f'Property rules by Segment event name; '
                                                             f'"{DEFAULT_RULE_KEY}" for events without their own.')
    static: Annotated[dict[Text, Any], AfterValidator(_static_values)] = Field(
        default_factory=dict, description="Fixed record fields; they override properties (never `id`).")
    allow_properties: Annotated[tuple[Text, ...], AfterValidator(_credential_names)] = Field(
        (), description="Credential-named properties (writeKey, password, apiKey, secret, authorization) "
                        "to send anyway; by default they are dropped and counted.")

    @field_validator("properties", mode="before")
    @classmethod
    def _null_rule_keeps_all(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {event: _KEEP_ALL if rule is None else rule for event, rule in value.items()}
        return value

    @property
    def include_events(self) -> frozenset[str] | None:
        return self.events.include

    @property
    def exclude_events(self) -> frozenset[str]:
        return self.events.exclude

    @property
    def customer_id_path(self) -> tuple[str, ...]:
        return tuple(self.customer_id.split("."))

    @property
    def filters_events(self) -> bool:
        return self.events.include is not None or bool(self.events.exclude)

    @cached_property
    def withheld(self) -> Withheld:
        """The property names `build_record` drops as credentials (after `allow_properties`)."""
        return withheld_names(self.allow_properties)

    def keeps_event(self, event: str) -> bool:
        if self.events.include is not None and event not in self.events.include:
            return False
        return event not in self.events.exclude

    def rule_for(self, event: str) -> PropertyRule:
        rule = self.properties.get(event)
        if rule is None:
            rule = self.properties.get(DEFAULT_RULE_KEY, _KEEP_ALL)
        return rule


def parse_mapping(raw: Any, path: str = "mapping") -> MappingConfig:
    """Validate a `mapping` section (already env-expanded) into a `MappingConfig`."""
    return validate(MappingConfig, raw, (path,))
