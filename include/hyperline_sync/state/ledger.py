"""Progress per partition and per archive object, in a real database.

The ledger answers three questions for the sync: which objects of a partition are already done
(key + ETag), may this attempt work on a partition now (claims that expire when a worker dies:
see `claims`), and what happened (status, attempts, counts, timings, last error) for reports and
reruns of failed partitions.

One code path serves SQLite (the default, a file under the state dir) and Postgres (production,
through an Airflow connection): SQLAlchemy Core with portable SQL only (tables in `schema`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import sqlalchemy as sa

from hyperline_sync.redact import redact_secrets
from hyperline_sync.state.claims import ClaimHeartbeat, PartitionClaims, attempt_owner
from hyperline_sync.state.schema import (
    COUNT_FIELDS,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    SCHEMA_VERSION,
    Counts,
    LedgerError,
    PartitionBusyError,
    PartitionState,
    aware,
    breaker_table,
    describe,
    migrate,
    objects_table,
    partitions_table,
    to_state,
    utcnow,
)

__all__ = [
    "COUNT_FIELDS", "DONE", "FAILED", "PENDING", "RUNNING", "SCHEMA_VERSION", "ClaimHeartbeat", "Counts", "Ledger",
    "LedgerError", "PartitionBusyError", "PartitionState", "attempt_owner", "breaker_table", "objects_table",
    "open_ledger", "partitions_table",
]


class Ledger(PartitionClaims):
    """Partition and object progress for all pipelines, in one database."""

    def __init__(self, url: str | sa.engine.URL, *, engine_kwargs: Mapping | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.engine = sa.create_engine(url, future=True, **dict(engine_kwargs or {}))
        self.secrets = tuple(secrets)  # removed, with any `Bearer <token>`, from every error text stored
        migrate(self.engine)

    @classmethod
    def sqlite(cls, path: Path, secrets: Iterable[str] = ()) -> Ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A busy timeout lets parallel mapped tasks on one machine share the file.
        return cls(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}}, secrets=secrets)

    def _redact(self, error: str | None) -> str | None:
        return None if error is None else redact_secrets(error, self.secrets)

    def describe(self) -> str:
        """The database, without any password, for logs and errors."""
        return describe(self.engine)

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
                    finished_at=utcnow(),
                    last_error=self._redact(error),
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
        values = dict(etag=etag, status=status, run_id=run_id, finished_at=utcnow(), error=self._redact(error),
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
        return (0, None, None) if row is None else (row.consecutive_failures, aware(row.open_until), row.last_error)

    def set_breaker(self, pipeline: str, failures: int, open_until: dt.datetime | None, error: str | None) -> None:
        b = breaker_table.c
        values = dict(consecutive_failures=failures, open_until=open_until, last_error=self._redact(error))
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
            return {row.partition: to_state(row) for row in rows}

    def failed_partitions(self, pipeline: str, now: dt.datetime | None = None) -> list[str]:
        """Partitions to rerun: failed ones, and running ones whose claim expired (a dead worker)."""
        now = now or utcnow()
        return sorted(
            name
            for name, state in self.partitions(pipeline).items()
            if state.status == FAILED
            or (state.status == RUNNING and state.claim_expires_at is not None and state.claim_expires_at < now)
        )


def open_ledger(ledger_conn_id: str | None, state_dir: Path | str, secrets: Iterable[str] = ()) -> Ledger:
    """The ledger a pipeline uses: Postgres through an Airflow connection, else SQLite in the state dir
    (a local folder: the config refuses a SQLite ledger with the state in object storage)."""
    if not ledger_conn_id:
        if not isinstance(state_dir, Path):
            raise LedgerError(f"state.dir {state_dir} is in object storage: set state.ledger_conn_id (Postgres)")
        return Ledger.sqlite(state_dir / "ledger.db", secrets)
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return Ledger(PostgresHook(postgres_conn_id=ledger_conn_id).sqlalchemy_url, engine_kwargs={"pool_pre_ping": True},
                  secrets=secrets)
