"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from hyperline_sync.ledger import Ledger


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path) -> Ledger:
    """A fresh ledger on SQLite and, as a second case, on the real Postgres."""
    if request.param == "sqlite":
        return Ledger.sqlite(tmp_path / "ledger.db")
    return Ledger(request.getfixturevalue("postgres_url"))
