"""The ledger's tables, row types and schema creation (SQLAlchemy Core, portable SQL only).

One schema serves SQLite (the default, a file under the state dir) and Postgres (production). Tasks
starting together on a fresh database race to create the tables: `migrate` serialises them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

SCHEMA_VERSION = 1
_MIGRATION_LOCK = 0x48594C4E_53594E43  # a Postgres advisory lock id ("HYLNSYNC") serialising schema creation
COUNT_FIELDS = ("read", "sent", "rejected", "skipped", "duplicates")

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"

_metadata = sa.MetaData()


def _count_columns() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in COUNT_FIELDS]


schema_version_table = sa.Table(
    "hyperline_sync_schema",
    _metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

partitions_table = sa.Table(
    "hyperline_sync_partitions",
    _metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    *_count_columns(),
    sa.Column("objects_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("objects_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.String(500)),
    sa.Column("claim_expires_at", sa.DateTime(timezone=True)),
    sa.Column("run_id", sa.String(500)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("watermark", sa.String(64)),
)

objects_table = sa.Table(
    "hyperline_sync_objects",
    _metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("etag", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    *_count_columns(),
    sa.Column("run_id", sa.String(500)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
)


breaker_table = sa.Table(
    "hyperline_sync_breaker",
    _metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("open_until", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
)


# What operators did by hand (`hyperline-sync breaker reset`, dead-letter replays): who, when, what, and
# a replay's own counts (state.operations).
operations_table = sa.Table(
    "hyperline_sync_operations",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("partition", sa.String(64)),
    sa.Column("run_id", sa.String(500)),
    sa.Column("actor", sa.String(500)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    *_count_columns(),
    sa.Column("detail", sa.Text),
)


class LedgerError(RuntimeError):
    """The ledger database cannot be reached or has an unexpected schema."""


class PartitionBusyError(RuntimeError):
    """Another run holds an unexpired claim on the partition."""


@dataclass
class Counts:
    """The buckets every input line ends in: read = sent + rejected + skipped + duplicates."""

    read: int = 0
    sent: int = 0
    rejected: int = 0
    skipped: int = 0
    duplicates: int = 0

    def add(self, other: Counts) -> None:
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    @property
    def balanced(self) -> bool:
        return self.read == self.sent + self.rejected + self.skipped + self.duplicates


@dataclass
class PartitionState:
    """One ledger row for a partition, as reports and the planner read it."""

    pipeline: str
    partition: str
    status: str
    attempts: int
    counts: Counts
    objects_total: int
    objects_done: int
    claimed_by: str | None
    claim_expires_at: dt.datetime | None
    run_id: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    last_error: str | None
    watermark: str | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; every value we write is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value



def migrate(engine: sa.engine.Engine) -> None:
    """Create the tables if missing; refuse a schema newer than this code."""
    try:
        with engine.begin() as conn:
            # Tasks starting together on a fresh database (mapped tasks of a first run) would race
            # to create the tables: the first to lock creates them, the others then find them.
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            elif conn.dialect.name == "sqlite" and set(_metadata.tables) - set(sa.inspect(conn).get_table_names()):
                # Its write lock, waited for up to the busy timeout; only while a table is missing
                # (a new file, or one from before a table was added), because every task (and
                # every 10 s poll of a waiting one) opens the ledger.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            _metadata.create_all(conn)
            version = conn.execute(sa.select(schema_version_table.c.version)).scalar()
            if version is None:
                conn.execute(schema_version_table.insert().values(version=SCHEMA_VERSION))
            elif version > SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger schema version {version} is newer than this code ({SCHEMA_VERSION}); "
                    "upgrade hyperline-sync"
                )
    except sa.exc.OperationalError as exc:
        raise LedgerError(f"cannot reach the ledger database ({describe(engine)}): {exc.orig}") from exc


def describe(engine: sa.engine.Engine) -> str:
    """The database, without any password, for logs and errors."""
    return engine.url.render_as_string(hide_password=True)


def to_state(row: sa.Row) -> PartitionState:
    return PartitionState(
        pipeline=row.pipeline,
        partition=row.partition,
        status=row.status,
        attempts=row.attempts,
        counts=Counts(**{n: getattr(row, n) for n in COUNT_FIELDS}),
        objects_total=row.objects_total,
        objects_done=row.objects_done,
        claimed_by=row.claimed_by,
        claim_expires_at=aware(row.claim_expires_at),
        run_id=row.run_id,
        started_at=aware(row.started_at),
        finished_at=aware(row.finished_at),
        last_error=row.last_error,
        watermark=row.watermark,
    )
from hyperline_sync.state import audit as _audit  # noqa: E402,F401 (registers the corrections audit table)
