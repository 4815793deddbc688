"""Removing secrets from text before it is stored or shown (ledger errors, reports, logs)."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"
_BEARER = re.compile(r"(?i)\bBearer\s+[^\s'\",;\\]+")


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` (and its whitespace-stripped form) and any ``Bearer <token>``
    value replaced by ``***``. Empty secrets are ignored; longer ones go first, so a secret containing
    another is removed whole."""
    candidates = {form for secret in secrets if secret for form in (secret, secret.strip()) if form}
    for secret in sorted(candidates, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _BEARER.sub(f"Bearer {REDACTED}", text)
