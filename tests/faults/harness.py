"""Shared machinery of the fault suite: the pipeline config, DAG runs, and the checks every scenario makes.

Each scenario gets a Harness: a fresh state dir (SQLite ledger unless the scenario points the pipeline
at Postgres), a fresh Hyperline emulator on 127.0.0.1, and the session's archive on moto S3. What is
asserted comes from the archive generator's manifest (written independently of the transform), from
what the emulator stored, and from the ledger and run reports.

`Evidence` collects, over the whole session, every place a secret could leak to (state dirs with
reports and dead letters, captured logs, subprocess output, run ids for XCom), and every secret used.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from hyperline_devtools.emulator import Emulator
from hyperline_devtools.sample_archive import SampleManifest
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import COUNT_FIELDS, DONE, Counts, Ledger
from tests.conftest import REPO
from tests.dag_runs import read_report, run_dag

DAYS = [dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(3)]
EVENTS_PER_DAY = 9000  # non-empty lines a day: ~21,000 deliverable events over the 3 days
OBJECTS_PER_DAY = 4
SOURCE_ID = "faultSrc01"
PIPELINE = "faults"
DAG_ID = f"segment_to_hyperline__{PIPELINE}"
HYPERLINE_CONN_ID = "hyperline_faults"
AWS_CONN_ID = "moto_faults"
API_KEY = "test_faults_SENTINEL_key_5b7e1c"
AWS_ACCESS_KEY_ID = "AKIAFAULTSSENTINEL01"
AWS_SECRET = "aws-secret-SENTINEL-2f9d4a"
ARCHIVE_BUCKET = "faults-archive"
ARCHIVE_PREFIX = "logs"
RANGE = {"start": DAYS[0].isoformat(), "end": (DAYS[-1] + dt.timedelta(days=1)).isoformat()}

# Tiny waits so 40% failing requests cost seconds, with enough attempts that a batch giving up is
# a one-in-a-million event (0.4 ** 15 per batch).
FAST_TUNING = {
    "retries": 0,
    "retry_delay_seconds": 0,
    "chunk_size": 2500,
    "batch_size": 500,
    "send_max_attempts": 15,
    "send_backoff_seconds": 0.01,
    "send_max_retry_seconds": 30,
    "claim_ttl_minutes": 1,
    "breaker_failures": 3,
    "breaker_cooldown_minutes": 15,
}


@dataclass
class Evidence:
    """Everything the secrets scan (scenario 8) reads at the end of the session."""

    secrets: dict[str, str] = field(default_factory=dict)  # label -> value that must never appear
    state_dirs: list[Path] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    run_ids: list[str] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)  # output files of subprocesses
    log_file: Path | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # the summary table

    def text(self, where: str, text: str) -> None:
        if text:
            self.texts.append((where, text))

    def result(self, scenario: str, expected: int, at_hyperline: int, sent_twice: int, posted_again: int,
               result: str) -> None:
        self.results.append({"scenario": scenario, "expected": expected, "at_hyperline": at_hyperline,
                             "sent_twice": sent_twice, "posted_again": posted_again, "result": result})


def pipeline_config(
    state_dir: Path,
    source_url: str,
    *,
    tuning: dict | None = None,
    ledger_conn_id: str | None = None,
    source_id: str = SOURCE_ID,
    aws_conn_id: str = AWS_CONN_ID,
) -> dict:
    state: dict[str, Any] = {"dir": str(state_dir)}
    if ledger_conn_id:
        state["ledger_conn_id"] = ledger_conn_id
    source: dict[str, Any] = {"kind": "s3_archive", "url": source_url, "source_id": source_id}
    if source_url.startswith("s3://"):
        source["aws_conn_id"] = aws_conn_id
    return {
        "state": state,
        "pipelines": [{
            "name": PIPELINE,
            "source": source,
            "hyperline_conn_id": HYPERLINE_CONN_ID,
            "tuning": {**FAST_TUNING, **(tuning or {})},
        }],
    }


@dataclass
class Harness:
    manifest: SampleManifest
    emulator: Emulator
    state_dir: Path
    config_path: Path
    evidence: Evidence
    source_url: str
    ledger_url: str | None = None  # Postgres URL when the pipeline's ledger is there
    capfd: Any = None

    # -- configuration ------------------------------------------------------------------------
    def configure(self, **kwargs: Any) -> dict:
        """(Re)write the pipeline config; tasks read it when they run."""
        kwargs.setdefault("source_url", self.source_url)
        config = pipeline_config(self.state_dir, kwargs.pop("source_url"), **kwargs)
        self.config_path.write_text(yaml.safe_dump(config))
        return config

    # -- running --------------------------------------------------------------------------------
    def run(self, conf: dict | None = None, **kwargs: Any):
        """One real DagRun (dag.test): plan -> mapped sync -> summarize."""
        dag_run = run_dag(DAG_ID, conf, **kwargs)
        self.evidence.run_ids.append(dag_run.run_id)
        return dag_run

    def python(self, code: str, *, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run `code` in a fresh interpreter with this test's environment (config, connections)."""
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              env=dict(os.environ), cwd=REPO, timeout=timeout)
        self.evidence.text(f"subprocess {code[:60]!r} stdout", done.stdout)
        self.evidence.text(f"subprocess {code[:60]!r} stderr", done.stderr)
        return done

    def start(self, code: str, log: Path) -> subprocess.Popen:
        """Start `code` in a fresh interpreter with this test's environment; its output goes to `log`,
        which the secrets scan reads."""
        self.evidence.logs.append(log)
        with open(log, "w") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=out,
                                    stderr=subprocess.STDOUT, env=dict(os.environ), cwd=REPO)

    # -- reading results ---------------------------------------------------------------------------
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    def report(self, run_id: str) -> dict:
        return read_report(self.reports_dir(), PIPELINE, run_id)

    def outcome(self, run_id: str, day: dt.date) -> dict:
        from hyperline_sync.state.report import run_dir

        return orjson.loads((run_dir(self.reports_dir(), PIPELINE, run_id) / "partitions" /
                             f"{day.isoformat()}.json").read_bytes())

    def ledger(self) -> Ledger:
        if self.ledger_url:
            return Ledger(self.ledger_url)
        return Ledger.sqlite(self.state_dir / "ledger.db")

    def dead_letters(self, day: dt.date | None = None) -> dict[str, list[dict]]:
        """Dead-letter rows by file name (object), for one day or all."""
        folder = self.reports_dir() / PIPELINE / "dead_letters"
        pattern = f"{day.isoformat()}/*.jsonl.gz" if day else "*/*.jsonl.gz"
        return {p.name: read_dead_letters(p) for p in sorted(folder.glob(pattern))}

    def sent_twice(self) -> int:
        """Events posted more than once."""
        return sum(1 for n in self.emulator.post_counts.values() if n > 1)

    def posted_again(self) -> int:
        """Posts beyond each event's first: what reruns, retries and lost acks sent again."""
        return sum(n - 1 for n in self.emulator.post_counts.values())

    # -- the checks every scenario makes -------------------------------------------------------------
    def assert_exact(self, expected: Iterable[str] | None = None) -> None:
        """Hyperline holds exactly the expected events by id, each as its first-received copy."""
        wanted = self.manifest.expected_events
        ids = set(wanted) if expected is None else set(expected)
        stored = self.emulator.events
        missing, extra = ids - set(stored), set(stored) - ids
        assert not missing and not extra, f"{len(missing)} events lost, {len(extra)} extra (e.g. " \
                                          f"{sorted(missing)[:3]}, {sorted(extra)[:3]})"
        altered = []
        for message_id in ids & wanted.keys():  # ids beyond the manifest: added by the test itself
            event, got = wanted[message_id], stored[message_id]
            if (got["customer_id"], got["event_type"], got["timestamp"], got["record"]) != (
                    event.customer_id, event.event_type, event.timestamp, event.record):
                altered.append(message_id)
        assert not altered, f"{len(altered)} events differ from their first-received copy: {altered[:5]}"
        assert not set(stored) & self.manifest.decoy_message_ids

    def assert_ledger_matches_manifest(self, days: Iterable[dt.date] = DAYS) -> None:
        """Every partition done in the ledger, with exactly the manifest's counts and objects."""
        states = self.ledger().partitions(PIPELINE)
        for day in days:
            state = states[day.isoformat()]
            expected = self.manifest.by_day[day]
            assert state.status == DONE, (day, state.status, state.last_error)
            assert state.counts.as_dict() == {"read": expected.read, "sent": expected.events,
                                              "rejected": expected.rejected_total, "skipped": expected.skipped,
                                              "duplicates": expected.duplicates}, day
            objects = sum(1 for key, d in self.manifest.object_days.items() if d == day)
            assert (state.objects_total, state.objects_done) == (objects, objects), day
            assert state.claimed_by is None

    def assert_report_matches_ledger(self, report: dict) -> None:
        """The run report's view of each partition is the ledger's, and its counts add up."""
        states = self.ledger().partitions(PIPELINE)
        assert report["balanced"] is True
        for part in report["partitions"]:
            state = states.get(part["partition"])
            assert state is not None, part["partition"]
            assert part["ledger_totals"] == state.counts.as_dict(), part["partition"]
            counts = Counts(**part["counts"])
            assert counts.balanced, part
        totals = {name: sum(p["counts"][name] for p in report["partitions"]) for name in COUNT_FIELDS}
        assert totals == report["totals"]

    def output(self) -> str:
        """Everything the test printed so far (dag.test task logs go to stdout), left in the capture."""
        assert self.capfd is not None
        out, err = self.capfd.readouterr()
        sys.stdout.write(out)
        sys.stderr.write(err)
        return out + err

    def record(self, scenario: str, expected: int, result: str = "pass") -> None:
        self.evidence.result(scenario, expected, len(self.emulator.events), self.sent_twice(), self.posted_again(),
                             result)


def upload(s3: Any, bucket: str, root: Path, prefix: str = ARCHIVE_PREFIX) -> None:
    """Upload an archive folder (decoys included) under `s3://bucket/prefix/`."""
    s3.create_bucket(Bucket=bucket)
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "sample-manifest.json":
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(root).as_posix()}", Body=path.read_bytes())


def xcom_rows(run_ids: Iterable[str] | None = None) -> list[tuple]:
    """XCom rows of Airflow's metadata DB (SQLite under the tests' AIRFLOW_HOME): of some runs, or all."""
    import sqlite3

    from tests.conftest import AIRFLOW_HOME

    with sqlite3.connect(AIRFLOW_HOME / "airflow.db") as db:
        rows = db.execute("SELECT dag_id, run_id, task_id, map_index, key, value FROM xcom").fetchall()
    wanted = None if run_ids is None else set(run_ids)
    return [row for row in rows if wanted is None or row[1] in wanted]


def make_job(run_id: str, sender: Any = None) -> Any:
    """What tasks.sync builds for one attempt of a run (a SyncJob), with its own ledger connection."""
    from hyperline_sync.orchestration import tasks
    from hyperline_sync.pipeline.sync import SyncJob
    from hyperline_sync.sources.base import open_source

    config, pipeline = tasks.load_pipeline(PIPELINE)
    return SyncJob(pipeline=pipeline, ledger=tasks.ledger_for(config), source=open_source(pipeline),
                   state_dir=config.state.dir, output_dir=config.state.output_dir, run_id=run_id, owner=run_id,
                   sender=sender or make_sender())


def make_sender() -> Any:
    """The pipeline's real Hyperline sender (the hook), as the sync task makes it."""
    from hyperline_sync.orchestration import tasks

    return tasks.make_sender(tasks.load_pipeline(PIPELINE)[1])
