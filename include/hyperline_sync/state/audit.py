"""The ledger's audit of corrections: every event a changed source unit made the sync resend or delete
at Hyperline, or only report (`pipeline.corrections`), with the run, the unit and when.

Actions: `reported` (corrections: report; nothing changed at Hyperline), `resent` (changed content,
sent again: Hyperline upserts), `deleted` (gone from the source, deleted at Hyperline),
`pending_approval` (a deletion over `tuning.corrections_approval_over`, waiting for a human: it
becomes `deleted` once approved and applied, `rejected` if not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa

from hyperline_sync.state.schema import _metadata, utcnow

REPORTED, RESENT, DELETED, PENDING_APPROVAL, REJECTED = "reported", "resent", "deleted", "pending_approval", "rejected"

corrections_table = sa.Table(
    "hyperline_sync_corrections",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(500), nullable=False),
    sa.Column("partition", sa.String(64), nullable=False),
    sa.Column("key", sa.String(1024), nullable=False),
    sa.Column("record_id", sa.String(1024), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),  # changed | gone
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_hyperline_sync_corrections_run", "pipeline", "run_id", "action"),
)


def record(engine: sa.engine.Engine, pipeline: str, run_id: str, partition: str, key: str, change: str,
           action: str, record_ids: Iterable[str]) -> int:
    """Add one audit row per record id; how many."""
    now = utcnow()
    rows = [dict(pipeline=pipeline, run_id=run_id, partition=partition, key=key, record_id=i, change=change,
                 action=action, at=now) for i in record_ids]
    if rows:
        with engine.begin() as conn:
            conn.execute(corrections_table.insert(), rows)
    return len(rows)


def rows(engine: sa.engine.Engine, pipeline: str, run_id: str | None = None,
         action: str | None = None) -> list[dict]:
    c = corrections_table.c
    query = sa.select(corrections_table).where(c.pipeline == pipeline).order_by(c.id)
    if run_id is not None:
        query = query.where(c.run_id == run_id)
    if action is not None:
        query = query.where(c.action == action)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def count(engine: sa.engine.Engine, pipeline: str, run_id: str, actions: Iterable[str]) -> int:
    c = corrections_table.c
    query = sa.select(sa.func.count()).where(c.pipeline == pipeline, c.run_id == run_id, c.action.in_(list(actions)))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def settle_pending(engine: sa.engine.Engine, pipeline: str, run_id: str, action: str,
                   when: dt.datetime | None = None) -> int:
    """Mark the run's deletions waiting for approval as `action` (deleted or rejected)."""
    c = corrections_table.c
    with engine.begin() as conn:
        return conn.execute(corrections_table.update()
                            .where(c.pipeline == pipeline, c.run_id == run_id, c.action == PENDING_APPROVAL)
                            .values(action=action, at=when or utcnow())).rowcount
