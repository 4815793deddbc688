"""Scrubbing the API key out of text before it leaves the client in an error, a reason or a log line."""

from __future__ import annotations

import re

_BEARER = re.compile(r"(?i)\bBearer\s+[^\s'\",;\\]+")
REDACTED = "***"


def redact(text: str, key: str = "") -> str:
    """``text`` without ``key`` (also its whitespace-stripped form) and without any ``Bearer <token>`` value."""
    for secret in {key, key.strip()}:
        if secret:
            text = text.replace(secret, REDACTED)
    return _BEARER.sub(f"Bearer {REDACTED}", text)
