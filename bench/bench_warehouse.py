"""Benchmark of the warehouse source: 1M Segment rows in PostgreSQL, read through our path.

    .venv/bin/python bench/bench_warehouse.py               # 1M rows, 3 runs per mode
    .venv/bin/python bench/bench_warehouse.py --index       # with indexes on received_at and uuid_ts
    .venv/bin/python bench/bench_warehouse.py --profile     # plus a cProfile of our path

Loads one received day of Segment-shaped rows (api_call 75%, storage_used 25%, Segment's Postgres
column types, a primary key on id as Segment creates it, hourly loads: 24 slices per table) into
the database `hyperline_bench_warehouse` on 127.0.0.1:5432 with COPY, once (kept while its recipe is
unchanged). Then measures, each run in a fresh subprocess so peak RSS belongs to that run alone:
- floor: one server-side cursor over the day's rows, the columns we read, no transform (the least any
  reader must do to get the rows into Python);
- naive: pandas.read_sql of each table's day at once + to_dict("records");
- ours: WarehouseSource.list_units + chunks (keyset pages of 50k rows, transform into Hyperline events)
  + SeenIds.filter/commit_object (the sync's data path without HTTP), through an Airflow connection.
Prints wall time (best of --runs), CPU time of this process (the rest is the database and the wire),
rows/s, the ratio to the floor and peak RSS (largest of the runs).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _common import peak_rss_mb, read_and_dedup  # shared with the other benchmarks

from hyperline_sync.config.models import TuningConfig  # no pandas; pydantic (~15 MB, in every Airflow worker)

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATABASE = "hyperline_bench_warehouse"
URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
SCHEMA = "shop_prod"
DAY = date(2026, 1, 5)
CHUNK_ROWS = TuningConfig().chunk_size  # the config's default
MODES = ("floor", "naive", "ours")
COMMON = """
    id varchar(1024) primary key, received_at timestamptz not null, uuid_ts timestamptz, sent_at timestamptz,
    original_timestamp timestamptz, "timestamp" timestamptz, user_id text, anonymous_id text, event text,
    event_text text, context_library_name text, context_library_version text, context_ip text,
    context_user_agent text, context_page_url text
"""
TABLES = {
    "api_call": ("API Call", "endpoint text, method text, status bigint, duration_ms bigint, cost numeric, "
                             "cached boolean, region text, tags text"),
    "storage_used": ("Storage Used", "gigabytes numeric, region text, bucket_count bigint"),
}
AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari"


def connect(url: str = URL, autocommit: bool = False):
    import psycopg

    return psycopg.connect(url, autocommit=autocommit)


def ensure_data(rows: int, index: bool) -> None:
    """The benchmark day in Postgres, (re)loaded with COPY when its recipe changed."""
    recipe = json.dumps({"rows": rows, "day": DAY.isoformat(), "index": index, "version": 1})
    with connect(ADMIN_URL, autocommit=True) as admin:
        if not admin.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
            admin.execute(f'create database "{DATABASE}"')
    with connect() as conn:
        found = conn.execute("select to_regclass(%s)", (f"{SCHEMA}.bench_recipe",)).fetchone()[0]
        if found and conn.execute(f"select recipe from {SCHEMA}.bench_recipe").fetchone()[0] == recipe:
            return
    started = time.perf_counter()
    with connect() as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")
        conn.execute(f"create schema {SCHEMA}")
        for table, (_, props) in TABLES.items():
            conn.execute(f"create table {SCHEMA}.{table} ({COMMON}, {props})")
        counts = {"api_call": rows * 3 // 4, "storage_used": rows - rows * 3 // 4}
        for table, count in counts.items():
            copy_rows(conn, table, count)
        if index:
            for table in TABLES:
                conn.execute(f"create index on {SCHEMA}.{table} (received_at)")
                conn.execute(f"create index on {SCHEMA}.{table} (uuid_ts)")
        conn.execute(f"create table {SCHEMA}.bench_recipe (recipe text)")
        conn.execute(f"insert into {SCHEMA}.bench_recipe values (%s)", (recipe,))
        conn.commit()
    with connect(autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"vacuum analyze {SCHEMA}.{table}")
    print(f"loaded {rows:,} rows with COPY in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def copy_rows(conn, table: str, count: int) -> None:
    rng = random.Random(f"{table}-{count}")
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    step = 86_400_000_000 / count  # microseconds between rows: spread over the day
    event_text = TABLES[table][0]
    lines = []
    with conn.cursor().copy(f"copy {SCHEMA}.{table} from stdin") as copy:
        for i in range(count):
            received = start + timedelta(microseconds=int(i * step))
            loaded = received.replace(minute=40, second=0, microsecond=0) + timedelta(hours=1)
            stamp = received - timedelta(milliseconds=rng.randint(5, 900))
            common = [
                f"ajs-next-{rng.getrandbits(128):032x}", received.isoformat(), loaded.isoformat(),
                received.isoformat(), stamp.isoformat(), stamp.isoformat(), f"user_{rng.randint(1, 5000)}",
                f"{rng.getrandbits(128):032x}", table, event_text, "analytics-node", "1.3.0",
                f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}", AGENT,
                f"https://app.example.com/projects/{rng.randint(1, 999)}",
            ]
            if table == "api_call":
                props = [f"/v1/items/{rng.randint(1, 99999)}", rng.choice(["GET", "POST", "PUT"]),
                         str(rng.choice([200, 200, 200, 201, 404, 500])), str(rng.randint(1, 3000)),
                         f"{rng.randint(0, 100000) / 10000:.4f}", rng.choice(["t", "f"]),
                         rng.choice(["eu-west-1", "us-east-1"]), '["beta","internal"]' if i % 7 == 0 else r"\N"]
            else:
                props = [f"{rng.randint(0, 10**6) / 1000:.3f}", rng.choice(["eu-west-1", "us-east-1"]),
                         str(rng.randint(1, 50))]
            lines.append("\t".join(common + props))
            if len(lines) == 20_000:
                copy.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            copy.write("\n".join(lines) + "\n")


def pipeline():
    from hyperline_sync.config import parse_config

    raw = {"pipelines": [{"name": "bench", "source": {"kind": "warehouse", "conn_id": "bench_warehouse",
                                                      "schema": SCHEMA, "events": list(TABLES)},
                          "tuning": {"chunk_size": CHUNK_ROWS}}]}
    return parse_config(raw).pipelines[0]


def measure_floor() -> dict:
    columns = ('id, received_at, uuid_ts, "timestamp", event_text, user_id, endpoint, method, status, '
               "duration_ms, cost, cached, region, tags")
    rows = 0
    with connect() as conn:
        for table in TABLES:
            select = columns if table == "api_call" else (
                'id, received_at, uuid_ts, "timestamp", event_text, user_id, gigabytes, region, bucket_count')
            with conn.cursor(name=f"floor_{table}") as cursor:
                cursor.itersize = CHUNK_ROWS
                cursor.execute(f"select {select} from {SCHEMA}.{table} where received_at >= %s and received_at < %s",
                               (DAY, DAY + timedelta(days=1)))
                while batch := cursor.fetchmany(CHUNK_ROWS):
                    rows += len(batch)
    return {"rows": rows, "events": 0}


def measure_naive() -> dict:
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(URL.replace("postgresql://", "postgresql+psycopg://"))
    rows = events = 0
    for table in TABLES:
        frame = pd.read_sql_query(
            sa.text(f"select * from {SCHEMA}.{table} where received_at >= :a and received_at < :b"),
            engine, params={"a": DAY, "b": DAY + timedelta(days=1)})
        records = frame.to_dict("records")
        rows += len(records)
        events += len(records)
    return {"rows": rows, "events": events}


def measure_ours() -> dict:
    from hyperline_sync.sources.warehouse.source import WarehouseSource

    totals = read_and_dedup(WarehouseSource(pipeline()), DAY, CHUNK_ROWS)
    return {"rows": totals.pop("read"), **totals}


def child(mode: str) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import pandas  # noqa: F401 - imported before the baseline so every mode pays the same imports
    import psycopg  # noqa: F401
    from airflow.sdk import BaseHook  # noqa: F401

    import hyperline_sync.sources.warehouse.source  # noqa: F401

    baseline_mb = peak_rss_mb()
    cpu, started = time.process_time(), time.perf_counter()
    result = {"floor": measure_floor, "naive": measure_naive, "ours": measure_ours}[mode]()
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - cpu
    result["peak_rss_mb"] = peak_rss_mb()
    result["baseline_rss_mb"] = baseline_mb
    print(json.dumps(result))


def child_env() -> dict:
    env = dict(os.environ)
    env["AIRFLOW_CONN_BENCH_WAREHOUSE"] = URL
    env.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "hyperline-bench-airflow"))
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return env


def run_child(mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode], check=True, capture_output=True, text=True,
                         env=child_env())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per mode (best time kept)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--index", action="store_true",
                        help="index received_at and uuid_ts (Segment creates only the id key)")
    parser.add_argument("--profile", action="store_true", help="cProfile our path")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    ensure_data(args.rows, args.index)
    print(f"python {sys.version.split()[0]}, {args.rows:,} rows in 2 tables x 24 load hours, "
          f"chunk {CHUNK_ROWS} rows, indexes on received_at, uuid_ts: {'yes' if args.index else 'no'}, "
          f"best of {args.runs} fresh processes")
    print(f"{'mode':<7}{'rows':>10}{'events':>10}{'wall s':>9}{'cpu s':>8}{'rows/s':>11}{'x floor':>9}"
          f"{'peak RSS MB':>13}{'(+ over imports)':>18}")
    floor_seconds = None
    for mode in args.modes:
        runs = [run_child(mode) for _ in range(args.runs)]
        best = min(run["seconds"] for run in runs)
        cpu = min(run["cpu_seconds"] for run in runs)
        peak = max(run["peak_rss_mb"] for run in runs)
        extra = max(run["peak_rss_mb"] - run["baseline_rss_mb"] for run in runs)
        if mode == "floor":
            floor_seconds = best
        ratio = f"{best / floor_seconds:.2f}" if floor_seconds else "-"
        print(f"{mode:<7}{runs[0]['rows']:>10}{runs[0]['events']:>10}{best:>9.2f}{cpu:>8.2f}"
              f"{runs[0]['rows'] / best:>11,.0f}{ratio:>9}{peak:>13.0f}{extra:>18.0f}")
        if mode == "ours":
            assert runs[0]["rows"] == runs[0]["events"] == args.rows, runs[0]
    if args.profile:
        os.environ.update(child_env())
        profiler = cProfile.Profile()
        profiler.runcall(measure_ours)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())


if __name__ == "__main__":
    main()
