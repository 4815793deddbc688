"""Progress per partition and per archive object, in a real database.

The ledger answers three questions for the sync: which objects of a partition are already done
(key + ETag), may this run work on a partition now (claims that expire when a worker dies), and what
happened (status, attempts, counts, timings, last error) for reports and reruns of failed partitions.

One code path serves SQLite (the default, a file under the state dir) and Postgres (production,
through an Airflow connection): SQLAlchemy Core with portable SQL only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; every value we write is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class Ledger:
    """Partition and object progress for all pipelines, in one database."""

    def __init__(self, url: str | sa.engine.URL, *, engine_kwargs: Mapping | None = None) -> None:
        self.engine = sa.create_engine(url, future=True, **dict(engine_kwargs or {}))
        self._migrate()

    @classmethod
    def sqlite(cls, path: Path) -> Ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A busy timeout lets parallel mapped tasks on one machine share the file.
        return cls(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}})

    def _migrate(self) -> None:
        try:
            with self.engine.begin() as conn:
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
            raise LedgerError(f"cannot reach the ledger database ({self.describe()}): {exc.orig}") from exc

    def describe(self) -> str:
        """The database, without any password, for logs and errors."""
        return self.engine.url.render_as_string(hide_password=True)

    # -- claims -------------------------------------------------------------------------------
    def claim(self, pipeline: str, partition: str, owner: str, ttl: dt.timedelta, run_id: str) -> str:
        """Take the partition for `owner`, or raise PartitionBusyError naming who holds it.

        The same owner may re-take its own claim (a retried task of the same run); anyone may take
        an expired one (the worker that held it died). Returns the partition's status before the claim.
        """
        now = _utcnow()
        p = partitions_table.c
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(p.status).where(p.pipeline == pipeline, p.partition == partition)
            ).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            partitions_table.insert().values(
                                pipeline=pipeline, partition=partition, status=PENDING
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # another run inserted it first; the guarded update below decides
            taken = conn.execute(
                partitions_table.update()
                .where(
                    p.pipeline == pipeline,
                    p.partition == partition,
                    sa.or_(p.claimed_by.is_(None), p.claimed_by == owner, p.claim_expires_at < now),
                )
                .values(
                    claimed_by=owner,
                    claim_expires_at=now + ttl,
                    status=RUNNING,
                    attempts=p.attempts + 1,
                    run_id=run_id,
                    started_at=now,
                    finished_at=None,
                    last_error=None,
                )
            ).rowcount
            if taken != 1:
                row = conn.execute(
                    sa.select(p.claimed_by, p.claim_expires_at).where(
                        p.pipeline == pipeline, p.partition == partition
                    )
                ).one()
                raise PartitionBusyError(
                    f"partition {partition} of pipeline {pipeline} is being synced by {row.claimed_by} "
                    f"(claim expires {_aware(row.claim_expires_at):%Y-%m-%d %H:%M:%S} UTC)"
                )
        return PENDING if exists is None else exists.status

    def live_claims(self, pipeline: str, partitions: Iterable[str], other_than: str) -> dict[str, str]:
        """partition -> holder, for those of `partitions` claimed (unexpired) by an owner other than `other_than`."""
        p = partitions_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(p.partition, p.claimed_by).where(
                    p.pipeline == pipeline,
                    p.partition.in_(list(partitions)),
                    p.claimed_by.is_not(None),
                    p.claimed_by != other_than,
                    p.claim_expires_at > _utcnow(),
                )
            )
            return {row.partition: row.claimed_by for row in rows}

    def release(self, pipeline: str, partition: str, owner: str, status: str) -> None:
        """Give a claim back without syncing, restoring the partition's status (a dead worker's stays failed)."""
        p = partitions_table.c
        with self.engine.begin() as conn:
            conn.execute(
                partitions_table.update()
                .where(p.pipeline == pipeline, p.partition == partition, p.claimed_by == owner)
                .values(status=FAILED if status == RUNNING else status, claimed_by=None, claim_expires_at=None)
            )

    def renew(self, pipeline: str, partition: str, owner: str, ttl: dt.timedelta) -> None:
        """Extend our claim while work goes on; raise if it was lost (expired and taken)."""
        p = partitions_table.c
        with self.engine.begin() as conn:
            renewed = conn.execute(
                partitions_table.update()
                .where(p.pipeline == pipeline, p.partition == partition, p.claimed_by == owner)
                .values(claim_expires_at=_utcnow() + ttl)
            ).rowcount
        if renewed != 1:
            raise PartitionBusyError(
                f"lost the claim on partition {partition} of pipeline {pipeline}: it expired and "
                "another run took it; raise claim_ttl_minutes if batches are this slow"
            )

    def finish(
        self, pipeline: str, partition: str, owner: str, status: str, error: str | None = None,
        watermark: str | None = None,
    ) -> None:
        """Release the claim, record the outcome and roll object counts up into the partition.

        `watermark` (kept when None) is how far the data of a partition synced in full goes.
        """
        p, o = partitions_table.c, objects_table.c
        with self.engine.begin() as conn:
            sums = conn.execute(
                sa.select(
                    *[sa.func.coalesce(sa.func.sum(getattr(o, n)), 0).label(n) for n in COUNT_FIELDS],
                    sa.func.count().label("total"),
                    sa.func.coalesce(sa.func.sum(sa.case((o.status == DONE, 1), else_=0)), 0).label("done"),
                ).where(o.pipeline == pipeline, o.partition == partition)
            ).one()
            conn.execute(
                partitions_table.update()
                .where(p.pipeline == pipeline, p.partition == partition, p.claimed_by == owner)
                .values(
                    status=status,
                    claimed_by=None,
                    claim_expires_at=None,
                    finished_at=_utcnow(),
                    last_error=error,
                    objects_total=sums.total,
                    objects_done=sums.done,
                    **{n: getattr(sums, n) for n in COUNT_FIELDS},
                    **({} if watermark is None else {"watermark": watermark}),
                )
            )

    # -- objects ------------------------------------------------------------------------------
    def done_objects(self, pipeline: str, partition: str) -> dict[str, str]:
        """key -> ETag of the objects of a partition that are fully synced."""
        o = objects_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(o.key, o.etag).where(
                    o.pipeline == pipeline, o.partition == partition, o.status == DONE
                )
            )
            return {row.key: row.etag for row in rows}

    def record_object(
        self,
        pipeline: str,
        partition: str,
        key: str,
        etag: str,
        status: str,
        counts: Counts,
        run_id: str,
        error: str | None = None,
    ) -> None:
        """Upsert the outcome of one object (the latest processing of a key wins)."""
        o = objects_table.c
        values = dict(etag=etag, status=status, run_id=run_id, finished_at=_utcnow(), error=error,
                      **counts.as_dict())
        with self.engine.begin() as conn:
            updated = conn.execute(
                objects_table.update()
                .where(o.pipeline == pipeline, o.partition == partition, o.key == key)
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(objects_table.insert().values(pipeline=pipeline, partition=partition, key=key,
                                                           **values))

    def objects(self, pipeline: str, partition: str) -> list[dict]:
        o = objects_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(objects_table).where(o.pipeline == pipeline, o.partition == partition)
                .order_by(o.key)
            )
            return [dict(row._mapping) for row in rows]

    # -- circuit breaker (shared by every task of a pipeline) ---------------------------------------
    def breaker(self, pipeline: str) -> tuple[int, dt.datetime | None, str | None]:
        """(consecutive failed sends, open until, last error) of the pipeline's breaker."""
        b = breaker_table.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(breaker_table).where(b.pipeline == pipeline)).first()
        return (0, None, None) if row is None else (row.consecutive_failures, _aware(row.open_until), row.last_error)

    def set_breaker(self, pipeline: str, failures: int, open_until: dt.datetime | None, error: str | None) -> None:
        b = breaker_table.c
        values = dict(consecutive_failures=failures, open_until=open_until, last_error=error)
        with self.engine.begin() as conn:
            if not conn.execute(breaker_table.update().where(b.pipeline == pipeline).values(**values)).rowcount:
                conn.execute(breaker_table.insert().values(pipeline=pipeline, **values))

    # -- reads for planning and reports --------------------------------------------------------
    def partitions(self, pipeline: str, partitions: Iterable[str] | None = None) -> dict[str, PartitionState]:
        p = partitions_table.c
        query = sa.select(partitions_table).where(p.pipeline == pipeline)
        wanted = None if partitions is None else list(partitions)
        if wanted is not None:
            query = query.where(p.partition.in_(wanted))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(p.partition))
            return {row.partition: _to_state(row) for row in rows}

    def failed_partitions(self, pipeline: str, now: dt.datetime | None = None) -> list[str]:
        """Partitions to rerun: failed ones, and running ones whose claim expired (a dead worker)."""
        now = now or _utcnow()
        return sorted(
            name
            for name, state in self.partitions(pipeline).items()
            if state.status == FAILED
            or (state.status == RUNNING and state.claim_expires_at is not None and state.claim_expires_at < now)
        )


def _to_state(row: sa.Row) -> PartitionState:
    return PartitionState(
        pipeline=row.pipeline,
        partition=row.partition,
        status=row.status,
        attempts=row.attempts,
        counts=Counts(**{n: getattr(row, n) for n in COUNT_FIELDS}),
        objects_total=row.objects_total,
        objects_done=row.objects_done,
        claimed_by=row.claimed_by,
        claim_expires_at=_aware(row.claim_expires_at),
        run_id=row.run_id,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
        last_error=row.last_error,
        watermark=row.watermark,
    )


def open_ledger(ledger_conn_id: str | None, state_dir: Path) -> Ledger:
    """The ledger a pipeline uses: Postgres through an Airflow connection, else SQLite in the state dir."""
    if not ledger_conn_id:
        return Ledger.sqlite(state_dir / "ledger.db")
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return Ledger(PostgresHook(postgres_conn_id=ledger_conn_id).sqlalchemy_url, engine_kwargs={"pool_pre_ping": True})
