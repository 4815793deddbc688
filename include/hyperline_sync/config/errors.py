"""`ConfigError` and the wording of every config problem, pydantic's included.

A problem names its key path (`pipelines[0].source.url`, `mapping.properties["API Call"].rename`)
and, when it quotes a value that came from a `${VAR}`, says so instead of printing it: expanded
values may be secrets. pydantic's own messages quote `input_value`, so they are reworded here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]
# Key path -> the variables its string was expanded from.
Expansions = Mapping[Loc, tuple[str, ...]]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
M = TypeVar("M", bound=BaseModel)
_PROBLEM = "config_problem"  # the pydantic error type of `problem()`


@dataclass(frozen=True)
class Issue:
    """One problem of a config file: where, and what is wrong."""

    loc: Loc
    problem: str

    @property
    def key_path(self) -> str:
        return key_path(self.loc)

    def __str__(self) -> str:
        return f"{self.key_path or '<root>'}: {self.problem}"


class ConfigError(ValueError):
    """Invalid configuration. `str(error)` starts with the key path of the (first) bad value;
    further problems follow, one a line. `issues` holds them all."""

    def __init__(self, key_path: str, problem: str, source: str | None = None, *, issues: tuple[Issue, ...] = ()):
        self.key_path = key_path
        self.problem = problem
        self.source = source
        self.issues = issues or (Issue((key_path,) if key_path else (), problem),)  # a top-level key
        where = f" (in {source})" if source else ""
        more = "".join(f"\n  {issue}" for issue in self.issues[1:])
        super().__init__(f"{key_path or '<root>'}: {problem}{where}{more}")

    @classmethod
    def of(cls, issues: Iterable[Issue], source: str | None = None) -> ConfigError:
        found = tuple(issues)
        return cls(found[0].key_path, found[0].problem, source, issues=found)

    def in_file(self, source: str) -> ConfigError:
        """The same error, annotated with the file it came from."""
        return ConfigError(self.key_path, self.problem, source, issues=self.issues)


def key_path(loc: Loc) -> str:
    """`("pipelines", 0, "mapping", "event_types", "API Call")` -> `pipelines[0].mapping.event_types["API Call"]`."""
    path = ""
    for key in loc:
        if isinstance(key, int):
            path += f"[{key}]"
        elif isinstance(key, str) and _IDENTIFIER.match(key):
            path = f"{path}.{key}" if path else key
        else:
            path += f'["{key}"]'
    return path


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def unknown_key(key: str, allowed: Collection[str]) -> str:
    hint = difflib.get_close_matches(key, list(allowed), n=1)
    return f"unknown key; did you mean {hint[0]!r}?" if hint else f"unknown key; allowed: {', '.join(sorted(allowed))}"


def problem(template: str, *, at: Loc = (), value: Any = None, **others: tuple[Loc, Any]) -> PydanticCustomError:
    """A validation error worded by `template`. `{value}` in it is `value` (the input at `at`, below
    the validated object); other `{names}` are `(loc, value)` pairs. Values are quoted only when they
    did not come from a `${VAR}`."""
    values = {"value": (at, value), **others}
    return PydanticCustomError(_PROBLEM, "{template}", {"template": template, "at": at, "values": values})


def validate(model: type[M], raw: Any, base: Loc = (), expansions: Expansions | None = None,
             context: dict[str, Any] | None = None) -> M:
    """`model` validated from `raw`, or a `ConfigError` listing every problem; `base` is where
    `raw` sits in the file."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError.of(issues_of(exc, expansions or {}, base)) from None


def shown(value: Any, loc: Loc, expansions: Expansions) -> str:
    """`repr(value)`, unless the value at `loc` was expanded from environment variables."""
    names = expansions.get(loc)
    if names:
        return "<value of " + ", ".join(f"${{{name}}}" for name in names) + ">"
    return repr(value)


def issues_of(error: ValidationError, expansions: Expansions, base: Loc = ()) -> list[Issue]:
    """pydantic's errors as issues worded here; `base` is where the validated object sits in the file."""
    found = []
    for detail in error.errors(include_url=False):
        loc = base + tuple(k for k in detail["loc"] if k != "[key]")
        if detail["type"] == _PROBLEM:
            ctx = detail["ctx"]
            texts = {name: shown(value, loc + rel, expansions) for name, (rel, value) in ctx["values"].items()}
            text = ctx["template"]
            for name, value_text in texts.items():  # not str.format: templates quote names with braces
                text = text.replace("{" + name + "}", value_text)
            found.append(Issue(loc + ctx["at"], text))
        else:
            found.append(Issue(loc, _reword(detail, loc, expansions)))
    return found


def _reword(detail: Mapping[str, Any], loc: Loc, expansions: Expansions) -> str:
    kind, ctx, given = detail["type"], detail.get("ctx") or {}, detail.get("input")
    got = f"got {type_name(given)}"
    if "[key]" in detail["loc"]:
        return f"keys must be strings, {got}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, {got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, {got}"
    if kind == "string_type":
        return f"must be a string, {got}"
    if kind == "bool_type":
        return f"must be true or false, {got}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"):
        return f"must be a list of strings, {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, {got}"
    if kind == "literal_error":
        return f"must be one of: {ctx.get('expected')}"
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        sign, key = bounds[kind]
        return f"must be {sign} {ctx.get(key)}, got {shown(given, loc, expansions)}"
    # A type this config does not use yet: pydantic's words, without the value.
    return str(detail["msg"])
