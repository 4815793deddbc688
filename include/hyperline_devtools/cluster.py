"""A multi-worker Airflow on one machine, without Docker: the deployment of docker-compose.yaml.

CeleryExecutor with Postgres as the metadata DB (a database of its own, created and dropped here),
Redis as the broker (a db number of its own, flushed), and one process each for the scheduler, the
DAG processor and the API server, plus `workers` Celery workers (concurrency 1, distinct
`--celery-hostname`s). The Airflow settings shared with docker-compose.yaml come from
include/docker/celery.env. Every process starts in its own process group and is stopped by group:
SIGTERM, then SIGKILL after a timeout (a component may ignore SIGTERM).

Used by the distributed test (tests/distributed) and `make distributed-demo`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
SHARED_ENV = REPO / "include" / "docker" / "celery.env"
POSTGRES = os.environ.get("HYPERLINE_CLUSTER_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("HYPERLINE_CLUSTER_REDIS", "redis://127.0.0.1:6379")
STOP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_settings(path: Path = SHARED_ENV) -> dict[str, str]:
    """The KEY=VALUE lines of the env file shared with docker-compose.yaml."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


class CeleryCluster:
    """The processes of one deployment; `start()`, then `stop()` (always, e.g. in a `finally`)."""

    def __init__(self, home: Path, env: Mapping[str, str], *, workers: int = 2, redis_db: int = 7,
                 settings: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.db_name = f"airflow_cluster_{uuid.uuid4().hex[:10]}"
        self.db_url = sa.engine.make_url(POSTGRES).set(database=self.db_name).render_as_string(hide_password=False)
        self.broker = f"{REDIS}/{redis_db}"
        self.api_port = free_port()
        self.worker_names = [f"worker{n}" for n in range(1, workers + 1)]
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[IO[str]] = []
        self._engine: sa.Engine | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(shared_settings())
        self.env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__CELERY__BROKER_URL": self.broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.db_url.replace("+psycopg2", ""),
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            # one value for every process, as docker-compose.yaml's .env gives them
            "AIRFLOW__CORE__FERNET_KEY": "Xq3J5o8YdlK7mD4b8WvY0a5x2Lh7Gq9cV1nT3sR6uE0=",
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        self.env.update(settings or {})
        self.env.update(env)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._flush_broker()
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.db_name}"'))
        admin.dispose()
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "hyperline", str(len(self.worker_names)), "Concurrent senders to Hyperline")
        self._spawn("scheduler", ["scheduler"])
        self._spawn("dag-processor", ["dag-processor"])
        self._spawn("api-server", ["api-server", "--port", str(self.api_port)])
        for name in self.worker_names:
            self._spawn(name, ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"{name}@%h"],
                        {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})
        self.wait(lambda: all("ready" in self.log(n) for n in self.worker_names), "the workers to be ready", 180)

    def stop(self) -> None:
        """Stop every process by its group (SIGTERM, then SIGKILL), drop the database, flush the broker."""
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        for log in self._logs:
            log.close()
        if self._engine is not None:
            self._engine.dispose()
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        admin.dispose()
        self._flush_broker()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one process and everything it started (its process group)."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(STOP_SECONDS)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_SECONDS)
        if sig != signal.SIGKILL:  # children that outlived their leader
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _spawn(self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None) -> None:
        log = (self.home / f"{name}.log").open("w")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(["airflow", *args], env={**self.env, **(extra_env or {})},
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _flush_broker(self) -> None:
        import redis

        redis.Redis.from_url(self.broker).flushdb()

    # -- looking at it ----------------------------------------------------------------------------
    def airflow(self, *args: str) -> str:
        done = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def query(self, sql: str, **params: Any) -> list[tuple]:
        if self._engine is None:
            self._engine = sa.create_engine(self.db_url, poolclass=sa.pool.NullPool)
        with self._engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Start a DagRun as a user does (`airflow dags trigger`); its run id."""
        out = self.airflow("dags", "trigger", dag_id, "--conf", json.dumps(dict(conf)), "--output", "json")
        return json.loads(out[out.index("[{"):])[0]["dag_run_id"]  # after the CLI's warnings

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """`success` or `failed` once the run has ended, else None."""
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = :dag AND run_id = :run", dag=dag_id, run=run_id)
        return rows[0][0] if rows and rows[0][0] in ("success", "failed") else None

    def attempts(self, dag_id: str, run_id: str) -> list[tuple]:
        """(task_id, map_index, try_number, state, external_executor_id) of every task attempt of a run,
        earlier tries (task_instance_history) included."""
        sql = ("SELECT task_id, map_index, try_number, state, external_executor_id FROM {} "
               "WHERE dag_id = :dag AND run_id = :run")
        return sorted({row for table in ("task_instance", "task_instance_history")
                       for row in self.query(sql.format(table), dag=dag_id, run=run_id)},
                      key=lambda r: (r[0], r[1], r[2]))

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_of(self, celery_task_id: str | None) -> str | None:
        """The worker whose log says it received the Celery task (hostnames are all this machine's)."""
        if not celery_task_id:
            return None
        pattern = re.compile(rf"\[{re.escape(celery_task_id)}\] received")
        return next((name for name in self.worker_names if pattern.search(self.log(name))), None)

    def wait(self, until: Callable[[], Any], what: str, seconds: float = 300) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name in ("scheduler", "api-server"):
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.log(name)[-3000:]}")
            found = until()
            if found:
                return found
            time.sleep(1)
        tails = "\n".join(f"--- {name}\n{self.log(name)[-1500:]}" for name in self.processes)
        raise TimeoutError(f"timed out waiting for {what}\n{tails}")

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"
