"""The base of every config model and the value types the models share.

Models are frozen and refuse unknown keys, naming the nearest known one. Numbers are strict
(`batch_size: "100"` or `yes` is not 100 or 1): YAML already typed them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from hyperline_sync.config.errors import problem, type_name, unknown_key


class FrozenModel(BaseModel):
    """A config section: immutable, unknown keys refused, an empty (null) section means defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            allowed = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if not isinstance(key, str):
                    raise problem(f"keys must be strings, got {type_name(key)}")
                if key not in allowed:
                    raise problem(unknown_key(key, allowed), at=(key,))
        elif not isinstance(data, BaseModel):
            raise problem(f"must be a mapping, got {type_name(data)}")
        return data


def matching(pattern: str, what: str = "") -> AfterValidator:
    """A string check: the whole value matches `pattern` (`what` explains it to the user)."""
    compiled = re.compile(pattern)
    explained = f"must match {pattern}" + (f" ({what})" if what else "")

    def check(value: str) -> str:
        if not compiled.match(value):
            raise problem(explained)
        return value

    return AfterValidator(check)


def number_check(message: str, accepts: Callable[[float], bool]) -> BeforeValidator:
    """A number (int or float, never a boolean) that `accepts`; else `message`, got the value."""

    def check(value: Any) -> Any:
        if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not accepts(value):
            raise problem(message + ", got {value}", value=value)
        return float(value)

    return BeforeValidator(check)


Text = Annotated[str, Strict(), Field(min_length=1)]
Int = Annotated[int, Strict()]
ConnId = Annotated[Text, matching(r"^[A-Za-z0-9_.\-]+$")]
Seconds = Annotated[float, number_check("must be a number of seconds >= 0", lambda x: x >= 0)]
