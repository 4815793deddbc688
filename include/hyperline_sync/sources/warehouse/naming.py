"""Segment's warehouse naming: snake_cased event and property names (quoting: `dialects`).

Segment stores every event and property under its name snake_cased (`durationMs` ->
`duration_ms`, `context.groupId` -> `context_group_id`); the mapping names things as they are in
the messages, so they are translated here before they are matched against columns.
"""

from __future__ import annotations

from hyperline_sync.config.mapping import PropertyRule

__all__ = ["COMMON_COLUMNS", "CONTEXT_PREFIX", "column_for_path", "column_rule", "snake_case"]

CONTEXT_PREFIX = "context_"
# Segment's columns on every track row (plus the context_* space): never properties of the record.
COMMON_COLUMNS = frozenset(
    {
        "id", "received_at", "uuid_ts", "uuid", "sent_at", "original_timestamp", "timestamp", "user_id",
        "anonymous_id", "event", "event_text", "loaded_at", "channel",
    }
)


def snake_case(name: str) -> str:
    """Segment's warehouse naming of events and properties (segmentio/go-snakecase's algorithm).

    Only ASCII letters and digits survive; other characters separate words. A word is a run of
    capitals/digits followed by a run of lowercase letters/digits, so `productID` -> `product_id`,
    `2FA Enabled` -> `2fa_enabled`. A name already in snake_case comes back unchanged.
    """
    n, i = len(name), 0
    while i < n and (_lower_or_digit(name[i]) or (name[i] == "_" and i + 1 < n and _lower_or_digit(name[i + 1]))):
        i += 1
    if i == n:
        return name
    if i > 0 and name[i - 1].isdigit():
        i -= 1  # a digit right before capitals joins their word: "v2FA" -> "v_2fa"
    out = [name[:i]] if i else []
    while i < n:
        if not (_upper_or_digit(name[i]) or _lower_or_digit(name[i])):
            i += 1
            continue
        word = []
        while i < n and _upper_or_digit(name[i]):
            word.append(name[i].lower())
            i += 1
        while i < n and _lower_or_digit(name[i]):
            word.append(name[i])
            i += 1
        out.append("".join(word))
    return "_".join(out)


def _lower_or_digit(c: str) -> bool:
    return "a" <= c <= "z" or "0" <= c <= "9"


def _upper_or_digit(c: str) -> bool:
    return "A" <= c <= "Z" or "0" <= c <= "9"


def column_for_path(path: str) -> str:
    """The warehouse column of a mapping path: `userId` -> `user_id`, `context.groupId` ->
    `context_group_id`, `properties.accountId` -> `account_id` (properties have no prefix)."""
    parts = path.split(".")
    if parts[0] == "properties" and len(parts) > 1:
        parts = parts[1:]
    return "_".join(snake_case(part) for part in parts)


def column_rule(rule: PropertyRule) -> PropertyRule:
    """A property rule whose names are warehouse columns (Segment's snake_case of the mapping's names)."""
    return rule if rule.keeps_all else rule.with_names(snake_case)
