"""What the sync's error texts pass through before they reach a sink (ledger, outcome, report, logs)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")
REDACTED = "[redacted]"


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without any of `secrets` (empty ones ignored) and without the token of any `Bearer <token>`."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _BEARER.sub(f"Bearer {REDACTED}", text)
