"""The ``hyperline`` connection read into typed settings, checked before any request is made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from hyperline_provider import PRODUCTION_HOST, SANDBOX_HOST
from hyperline_provider.client.messages import auth_message
from hyperline_provider.exceptions import HyperlineAuthError
from hyperline_provider.limits import DEFAULT_TIMEOUT, MAX_BATCH_EVENTS

SETTING_NAMES = ("batch_size", "timeout", "max_requests_per_second")
_LEGACY_PREFIX = "extra__hyperline__"  # key prefix used by older connection forms
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_setting(extra_name: str) -> bool:
    """Whether a connection extra is one of the client's settings (not an HTTP header)."""
    name = extra_name.lower()
    return name in SETTING_NAMES or name.startswith(_LEGACY_PREFIX)


@dataclass(frozen=True)
class HyperlineSettings:
    """What the client needs of the connection; ``api_key`` is stripped of surrounding whitespace."""

    base_url: str
    api_key: str
    batch_size: int = MAX_BATCH_EVENTS
    timeout: float = DEFAULT_TIMEOUT
    max_requests_per_second: float | None = None

    @property
    def cleartext(self) -> bool:
        """Whether the key would travel without TLS to a host other than this machine."""
        url = urlparse(self.base_url)
        return url.scheme != "https" and url.hostname not in _LOCAL_HOSTS

    @classmethod
    def from_connection(cls, conn: Any, base_url: str, overrides: Mapping[str, Any]) -> HyperlineSettings:
        """Read ``conn`` (``base_url`` as HttpHook built it); keyword ``overrides`` win over the extras.

        Raises ``ValueError`` for a missing host or a bad setting, :class:`HyperlineAuthError` for a
        missing or malformed key; no message holds the key.
        """
        conn_id = conn.conn_id
        if not conn.host:
            raise ValueError(
                f"Connection '{conn_id}' has no host: set it to {PRODUCTION_HOST} (production) "
                f"or {SANDBOX_HOST} (sandbox)."
            )
        extra = conn.extra_dejson

        def setting(name: str, kind: type, default: Any) -> Any:
            value = overrides.get(name)
            for key in (name, _LEGACY_PREFIX + name):
                if value in (None, ""):
                    value = extra.get(key)
            if value in (None, ""):
                return default
            try:
                return kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"Connection '{conn_id}': {name} must be a {kind.__name__}, got {value!r}") from None

        batch_size = setting("batch_size", int, MAX_BATCH_EVENTS)
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"Connection '{conn_id}': batch_size must be 1-{MAX_BATCH_EVENTS}, got {batch_size}")
        timeout = setting("timeout", float, DEFAULT_TIMEOUT)
        rate = setting("max_requests_per_second", float, None)
        return cls(base_url, _api_key(conn_id, conn.password), batch_size, timeout, rate)


def _api_key(conn_id: str, password: str | None) -> str:
    # A key pasted with a trailing newline or space would make requests refuse the header with an
    # error quoting it; surrounding whitespace is never part of a Hyperline key.
    key = (password or "").strip()
    if not key:
        raise HyperlineAuthError(auth_message(conn_id, "", "", None, "no request sent"))
    if not key.isprintable() or any(char.isspace() for char in key):
        raise HyperlineAuthError(
            f"The API key of connection '{conn_id}' contains whitespace or control characters; "
            "Hyperline keys have none: paste the key again (no request sent)."
        )
    return key
