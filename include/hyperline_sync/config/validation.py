"""Small helpers that validate parsed YAML and raise `ConfigError` naming the bad key path.

Shared by `config` and `mapping`; key paths look like `pipelines[0].source.url` or
`pipelines[1].mapping.properties["API Call"].rename`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(ValueError):
    """Invalid configuration. `str(error)` starts with the key path of the bad value."""

    def __init__(self, key_path: str, problem: str, source: str | None = None) -> None:
        self.key_path = key_path
        self.problem = problem
        self.source = source
        where = f" (in {source})" if source else ""
        super().__init__(f"{key_path or '<root>'}: {problem}{where}")

    def in_file(self, source: str) -> ConfigError:
        """The same error, annotated with the file it came from."""
        return ConfigError(self.key_path, self.problem, source)


def child(path: str, key: str | int) -> str:
    """Key path of `key` under `path`: `a.b`, `a[0]`, `a["API Call"]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def mapping(value: Any, path: str, allowed: Collection[str], required: Collection[str] = ()) -> dict[str, Any]:
    """Check that `value` is a mapping with string keys, only `allowed` keys and every `required` key."""
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a mapping, got {type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(path, f"keys must be strings, got {key!r}")
        if key not in allowed:
            hint = difflib.get_close_matches(key, list(allowed), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(sorted(allowed))}"
            raise ConfigError(child(path, key), f"unknown key{suggestion}")
    for key in required:
        if key not in value:
            raise ConfigError(child(path, key), "is required")
    return value


def string_map(value: Any, path: str) -> dict[str, Any]:
    """A mapping whose keys are free-form strings (event names, property names)."""
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a mapping, got {type_name(value)}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise ConfigError(path, f"keys must be non-empty strings, got {key!r}")
    return value


def string(value: Any, path: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str):
        raise ConfigError(path, f"must be a string, got {type_name(value)}")
    if not value:
        raise ConfigError(path, "must not be empty")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(path, f"must match {pattern.pattern}" + (f" ({what})" if what else ""))
    return value


def optional_string(value: Any, path: str, pattern: re.Pattern[str] | None = None) -> str | None:
    return None if value is None else string(value, path, pattern)


def integer(value: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
    # bool is an int subclass; `batch_size: yes` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"must be an integer, got {type_name(value)}")
    if minimum is not None and value < minimum:
        raise ConfigError(path, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(path, f"must be <= {maximum}, got {value}")
    return value


def string_list(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(path, f"must be a list of strings, got {type_name(value)}")
    return tuple(string(item, child(path, i)) for i, item in enumerate(value))
