"""redact_secrets: what the ledger and report sinks pass errors through before storing them."""

from __future__ import annotations

import pytest

from hyperline_sync.redact import redact_secrets


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("Invalid header value 'Bearer prod_abc123\\n'", (), "Invalid header value 'Bearer ***\\n'"),
        ("authorization: bearer test_x.y-z, next", (), "authorization: Bearer ***, next"),
        ("key prod_abc123 rejected", ["prod_abc123"], "key *** rejected"),
        ("key prod_abc123 rejected", ["prod_abc123\n"], "key *** rejected"),  # a pasted key, newline and all
        ("AKIAEXAMPLE and AKIAEXAMPLE2", ["AKIAEXAMPLE", "AKIAEXAMPLE2"], "*** and ***"),  # longest first
        ("nothing to hide", ["", "absent"], "nothing to hide"),
        ("Bearer", (), "Bearer"),
    ],
)
def test_redact_secrets(text: str, secrets: list[str], expected: str) -> None:
    assert redact_secrets(text, secrets) == expected
