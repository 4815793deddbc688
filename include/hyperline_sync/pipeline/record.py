"""The Hyperline `record` of one event, built from its Segment properties by a `PropertyRule`.

Properties are flattened with `_` (`plan.name` -> `plan_name`), then selected (`include`/`exclude`
match a flattened name, or a top-level name to take all its children), then renamed. Values
Hyperline rejects (null, objects left after flattening, arrays of objects or of mixed types) are
dropped and counted, as is a property that would land on `id` or on a name already taken (first in
document order wins), and a credential: a property named writeKey, password, apiKey, secret or
authorization (any case, camelCase or snake_case), or anything inside an object of that name,
unless `mapping.allow_properties` lets it through. `static` fields override properties; `id` is
always the messageId.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperline_sync.config.mapping import PropertyRule

# A rule's include (None: every property), exclude and rename, as plain locals for the hot loop.
Selection = tuple[frozenset[str] | None, frozenset[str], dict[str, str]]

__all__ = [
    "CREDENTIAL_PROPERTIES",
    "INT_MAX",
    "INT_MIN",
    "WITHHELD",
    "Selection",
    "Withheld",
    "build_record",
    "credential_key",
    "is_record_value",
    "selected",
    "withheld_names",
]

CREDENTIAL_PROPERTIES = ("writeKey", "password", "apiKey", "secret", "authorization")


def _forms(name: str) -> frozenset[str]:
    """The lowercased camelCase and snake_case spellings of a name: `apiKey` -> apikey, api_key."""
    return frozenset({name.lower(), re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()})


_FORMS = {name: _forms(name) for name in CREDENTIAL_PROPERTIES}
_CANONICAL = {form: name for name, forms in _FORMS.items() for form in forms}


def credential_key(name: str) -> str | None:
    """The credential property `name` spells (`WRITE_KEY` -> `writeKey`), or None."""
    return _CANONICAL.get(name.lower())


class Withheld:
    """Which property names are withheld as credentials. The hot path reads `verdicts[name]` (one
    dict lookup per property); a spelling not seen yet goes through `learn` (`lower()` and a set
    lookup) and is remembered, up to `MEMO` spellings (property names are few; a hostile source's
    endless new names are still checked, just not remembered)."""

    __slots__ = ("names", "verdicts")
    MEMO = 100_000

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names  # lowercased
        self.verdicts: dict[str, bool] = {}

    def learn(self, name: str) -> bool:
        verdict = name.lower() in self.names
        if len(self.verdicts) < self.MEMO:
            self.verdicts[name] = verdict
        return verdict


def withheld_names(allowed: Iterable[str]) -> Withheld:
    """The names `build_record` drops, once the credentials in `allowed` are let through."""
    let_through = {credential_key(name) for name in allowed}
    return Withheld(frozenset(form for form, name in _CANONICAL.items() if name not in let_through))


# Every credential dropped: the default of `build_record`.
WITHHELD = withheld_names(())


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


def build_record(
    message_id: str, properties: Any, rule: PropertyRule, static: dict[str, Any], withheld: Withheld = WITHHELD
) -> tuple[dict, int]:
    """Hyperline `record` for one event and the number of property values dropped. `withheld` is
    the mapping's `withheld`; by default every credential is dropped."""
    record: dict[str, Any] = {}
    if type(properties) is dict:
        if rule.keeps_all:
            dropped = _flatten_all(properties, "", record, withheld)
        else:
            dropped = _flatten_selected(properties, "", "", rule.selection, record, withheld, False)
    else:
        # `properties` missing or null is normal; any other shape is a value we could not use.
        dropped = 0 if properties is None else 1
    if static:
        record.update(static)
    record["id"] = message_id
    return record, dropped


def _flatten_all(properties: dict, prefix: str, record: dict, withheld: Withheld) -> int:
    dropped = 0
    verdicts = withheld.verdicts
    for key, value in properties.items():
        kind = type(value)
        try:
            secret = verdicts[key]
        except KeyError:
            secret = withheld.learn(key)
        if secret:
            dropped += _values_in(value)
        # Cheapest checks first: this loop runs for every property of every event.
        elif (
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
            dropped += _flatten_all(value, (prefix + key if prefix else key) + "_", record, withheld)
        else:
            dropped += 1
    return dropped


def _values_in(value: Any) -> int:
    """How many record values `value` would have given: a withheld object's values all count as dropped."""
    if type(value) is dict:
        return sum(_values_in(item) for item in value.values())
    return 1


def selected(include: frozenset[str] | None, exclude: frozenset[str], name: str, top: str) -> bool:
    """A rule's selection of a property by its flattened name or its top-level name."""
    if include is not None and name not in include and top not in include:
        return False
    return name not in exclude and top not in exclude


def _flatten_selected(
    properties: dict, prefix: str, top: str, selection: Selection, record: dict, withheld: Withheld, hidden: bool
) -> int:
    """`selection` is the rule's (include, exclude, rename); `hidden`: inside an object named like a
    credential, whose selected values are dropped."""
    dropped = 0
    (include, exclude, rename), verdicts = selection, withheld.verdicts
    for key, value in properties.items():
        name = prefix + key
        top_name = top or key
        try:
            secret = hidden or verdicts[key]
        except KeyError:
            secret = withheld.learn(key)
        if type(value) is dict:
            if top_name not in exclude:
                dropped += _flatten_selected(value, name + "_", top_name, selection, record, withheld, secret)
            continue
        if not selected(include, exclude, name, top_name):
            continue
        target = rename.get(name, name)
        if secret or not is_record_value(value) or target == "id" or target in record:
            dropped += 1
        else:
            record[target] = value
    return dropped
