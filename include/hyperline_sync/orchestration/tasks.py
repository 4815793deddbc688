"""The bodies of the DAG's sync and summarize tasks, kept out of the DAG file so they read (and test) as Python.

`sync` runs `sync_partition` for each day of one group, `summarize` gathers the outcomes into the run
report and fails the run when any partition failed, or says why planning failed (`planning.plan` is
the plan task's body, `runtime` what every body reads first). This module imports the whole sync
pipeline (pandas, pyarrow, the sources, the provider): the DAG file imports it inside the task bodies
that need it, never at parse time. Error texts leave here without the Hyperline API key or any
`Bearer` token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import logging
from typing import IO, Any, NoReturn

import orjson

from hyperline_provider.exceptions import HyperlineAuthError, HyperlineRequestError
from hyperline_sync.config import Config, PipelineConfig
from hyperline_sync.insight.run_files import write_run_insight
from hyperline_sync.insight.usage import UsageTally, write_usage_part
from hyperline_sync.orchestration.runtime import hyperline_secrets, ledger_for, load_pipeline, output_location
from hyperline_sync.orchestration.sender import make_sender
from hyperline_sync.pipeline.breaker import CircuitBreaker
from hyperline_sync.pipeline.ports import Sender
from hyperline_sync.pipeline.replay import replay_dead_letters
from hyperline_sync.pipeline.sync import (
    PartitionFailedError,
    SyncJob,
    discard_dry_run_state,
    dry_run_dir,
    sync_partition,
)
from hyperline_sync.redact import redact_secrets
from hyperline_sync.sources.base import open_source
from hyperline_sync.state.ledger import (
    DONE,
    FAILED,
    LedgerError,
    PartitionBusyError,
    attempt_owner,
)
from hyperline_sync.state.report import (
    PartitionOutcome,
    build_report,
    read_outcomes,
    read_plan_failure,
    render_table,
    write_outcome,
    write_report,
)
from hyperline_sync.state.retention import prune_expired
from hyperline_sync.state.store import Location, locations, writer

log = logging.getLogger(__name__)


class RunFailedError(RuntimeError):
    """At least one partition of the run did not finish; the message names them."""


class PartitionsBusyError(RuntimeError):
    """Every day of the group is being synced by another run (or has a neighbour that is); nothing
    was done and no outcome written, so the task can wait and try again."""


class SyncError(RuntimeError):
    """An error whose text held a secret, raised again with the secret redacted. `fatal`: the original
    was one a retry cannot fix (a refused key, a wrong request), so the DAG fails without retrying."""

    fatal = False




def sync(
    pipeline_name: str,
    days: list[str],
    params: dict,
    run_id: str,
    sender: Sender | None = None,
    *,
    wait_if_busy: bool = False,
    map_index: int | None = None,
    try_number: int | None = None,
    run_days: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Sync each day of a group; every day is attempted even if an earlier one failed.

    `run_days`: every day of the run (the plan), synced by other tasks possibly at the same time;
    each day drops the ids their unfinished units hold (`pipeline.id_index`). Default: `days`.

    A day another attempt holds ends as `busy` (the task fails and Airflow retries it); with
    `wait_if_busy`, a group whose days were all busy raises PartitionsBusyError instead, leaving no
    outcome, so that the caller can reschedule the task. The claims are this attempt's own
    (`attempt_owner`: run, map index, try, host, pid, token): a zombie of the task and its retry
    never both pass them.
    """
    config, pipeline = load_pipeline(pipeline_name)
    dry_run, resend = bool(params.get("dry_run")), bool(params.get("resend"))
    secrets = hyperline_secrets(pipeline)
    state_dir, output_dir = locations(config.state)
    try:
        ledger = ledger_for(config, secrets)
        breaker = CircuitBreaker(ledger, pipeline.name, pipeline.tuning.breaker_failures,
                                 dt.timedelta(minutes=pipeline.tuning.breaker_cooldown_minutes))
        job = SyncJob(
            pipeline=pipeline,
            ledger=ledger,
            source=open_source(pipeline),
            state_dir=state_dir,
            output_dir=output_dir,
            run_id=run_id,
            owner=attempt_owner(run_id, map_index, try_number),
            sender=None if dry_run else (sender or make_sender(pipeline)),
            dry_run=dry_run,
            resend=resend,
            breaker=breaker,
            secrets=secrets,
            run_days=frozenset(run_days or days),
        )
    except Exception as exc:
        # Say why for each day (ledger database down, bad source connection...): the report shows the
        # reason instead of "unknown".
        for day in days:
            write_outcome(output_dir, pipeline.name, run_id,
                          PartitionOutcome(day, FAILED, error=f"{type(exc).__name__}: {exc}"), secrets)
        _raise_redacted(exc, secrets)
    outcomes: dict[str, PartitionOutcome] = {}
    busy: list[PartitionOutcome] = []
    for day in days:
        sink = DryRunSink(dry_run_dir(output_dir, pipeline.name, run_id) / f"{day}.jsonl.gz")
        job.event_sink = sink.write if dry_run else None
        usage = job.usage = UsageTally(pipeline.report.sum_properties)
        try:
            outcome = _sync_day(job, dt.date.fromisoformat(day), params)
        except PartitionBusyError as exc:
            # Written after the loop: if every day is busy the task may wait instead, with no outcome.
            busy.append(PartitionOutcome(day, "busy", error=str(exc)))
            continue
        except PartitionFailedError as exc:
            outcome = _failed_outcome(job, day, exc)
        except Exception as exc:
            write_outcome(output_dir, pipeline.name, run_id, _failed_outcome(job, day, exc), secrets)
            write_usage_part(output_dir, pipeline.name, run_id, day, usage)
            _raise_redacted(exc, secrets)  # Hyperline unreachable or bad credentials: the DAG decides about retries
        finally:
            sink.close()
        if dry_run and sink.written:
            outcome.dry_run_output = str(sink.path)
        write_outcome(output_dir, pipeline.name, run_id, outcome, secrets)
        write_usage_part(output_dir, pipeline.name, run_id, day, usage)
        outcomes[day] = outcome
    if wait_if_busy and busy and len(busy) == len(days):
        raise PartitionsBusyError("; ".join(o.error or o.partition for o in busy))
    for outcome in busy:
        write_outcome(output_dir, pipeline.name, run_id, outcome, secrets)
        outcomes[outcome.partition] = outcome
    failures = [f"{day}: {outcomes[day].error}" for day in days if outcomes[day].status not in (DONE, "dry_run")]
    summaries = [{"partition": day, "status": outcomes[day].status, **outcomes[day].counts.as_dict()} for day in days]
    if failures:
        raise PartitionFailedError(redact_secrets("; ".join(failures), secrets))
    return summaries


def _sync_day(job: SyncJob, day: dt.date, params: dict) -> PartitionOutcome:
    """The day's sync or, with `replay_dead_letters`, the replay of its dead letters (`pipeline.replay`)."""
    if params.get("replay_dead_letters"):
        return replay_dead_letters(job, day, params.get("replay_reason") or None).as_outcome(job.dry_run)
    return sync_partition(job, day)


def _raise_redacted(exc: Exception, secrets: tuple[str, ...]) -> NoReturn:
    """Raise `exc` again, or, if its text holds a secret, a SyncError with the text redacted (and
    without the original in the traceback Airflow logs)."""
    text = f"{type(exc).__name__}: {exc}"
    if redact_secrets(text, secrets) == text:
        raise exc
    error = SyncError(redact_secrets(text, secrets))
    error.fatal = isinstance(exc, (HyperlineAuthError, HyperlineRequestError))
    raise error from None


def _failed_outcome(job: SyncJob, day: str, exc: BaseException) -> PartitionOutcome:
    recorded = getattr(exc, "partition_outcome", None)  # set by sync_partition: this run's counts so far
    if recorded is not None:
        return recorded
    state = None if job.dry_run else job.ledger.partitions(job.pipeline.name, [day]).get(day)
    outcome = PartitionOutcome(day, FAILED, error=f"{type(exc).__name__}: {exc}")
    if state is not None:
        outcome.ledger_totals = state.counts
        outcome.objects_total, outcome.objects_synced = state.objects_total, state.objects_done
    return outcome


def summarize(pipeline_name: str, groups: list[list[str]] | None, params: dict, run_id: str) -> dict:
    """Write the run report, log the table; raise RunFailedError naming the failed partitions, or
    saying why planning failed (`groups` is None: the plan task left no plan)."""
    if groups is None:
        raise RunFailedError(_plan_failure(pipeline_name, run_id))
    config, pipeline = load_pipeline(pipeline_name)
    output_dir = output_location(config)
    outcomes = read_outcomes(output_dir, pipeline.name, run_id)
    planned = [day for group in groups for day in group]
    missing = [day for day in planned if day not in outcomes]
    ledger_states: dict = {}
    if missing:
        try:
            ledger_states = ledger_for(config).partitions(pipeline.name, missing)
        except LedgerError as exc:  # still write the report: it is how the run's failure is explained
            log.warning("cannot read the ledger for partitions without an outcome: %s", exc)
    ordered = []
    for day in planned:
        outcome = outcomes.get(day)
        if outcome is None:  # the task died without writing (killed worker) or never ran
            state = ledger_states.get(day)
            outcome = PartitionOutcome(day, "unknown", error="no outcome recorded: the sync task did not finish")
            if state is not None:
                outcome.error = f"{outcome.error} (ledger: {state.status}, last error: {state.last_error})"
        ordered.append(outcome)
    report = build_report(pipeline=pipeline.name, run_id=run_id, dry_run=bool(params.get("dry_run")),
                          params=_public_params(params), outcomes=ordered)
    path = write_report(output_dir, report, hyperline_secrets(pipeline))
    try:  # the sync's outcome is report.json: a summary that cannot be written is logged, not the run's failure
        log.info("usage: %s, HTML report: %s", *write_run_insight(output_dir, report))
    except Exception as exc:
        log.error("could not write the usage summary or the HTML report: %s: %s", type(exc).__name__, exc)
    dead = [p for o in ordered for p in o.dead_letters]
    log.info("run report for %s, %s\n%s", pipeline.name, run_id, render_table(ordered))
    log.info("report: %s", path)
    log.info("dead letters: %s", ", ".join(dead) if dead else "none")
    if not report["balanced"]:
        log.warning("counts do not add up (read != sent + rejected + skipped + duplicates): see %s", path)
    if params.get("dry_run"):  # leaves the real state as it was
        discard_dry_run_state(output_dir, pipeline.name, run_id)
    else:
        _prune_expired(config, pipeline)
    if report["failed_partitions"]:
        raise RunFailedError(
            f"{len(report['failed_partitions'])} partition(s) failed: {', '.join(report['failed_partitions'])}; "
            f"details in {path}. Rerun them with params {{\"partitions\": [\"failed\"]}}."
        )
    return {"report": str(path), "status": report["status"], "totals": report["totals"]}


def _plan_failure(pipeline_name: str, run_id: str) -> str:
    try:
        config, pipeline = load_pipeline(pipeline_name)
    except Exception as exc:
        return f"planning failed, nothing was synced: the config cannot be read: {type(exc).__name__}: {exc}"
    why = read_plan_failure(output_location(config), pipeline.name, run_id)
    return ("planning failed, nothing was synced: " +
            (why or "the plan task left no plan and no error (killed, or it never ran): see its log"))


def _prune_expired(config: Config, pipeline: PipelineConfig) -> None:
    """`tuning.state_retention_days`: old dedup id files go after each run; a failure to remove them
    is logged, never the run's failure."""
    if pipeline.tuning.state_retention_days is None:
        return
    try:
        removed = prune_expired(config, pipeline, ledger_for(config))
    except Exception as exc:
        log.warning("could not prune state older than %s days: %s: %s", pipeline.tuning.state_retention_days,
                    type(exc).__name__, exc)
        return
    if removed:
        log.info("pruned the dedup ids of %d days (%s to %s, %.1f MB): older than state_retention_days (%d)",
                 len(removed), removed[0].day, removed[-1].day, sum(f.bytes for f in removed) / 1e6,
                 pipeline.tuning.state_retention_days)


def _public_params(params: dict) -> dict:
    return {k: params.get(k) for k in ("start", "end", "partitions", "dry_run", "resend", "replay_dead_letters",
                                       "replay_reason")}


class DryRunSink:
    """Gzipped JSONL of the events a dry run would send; created on the first event, published
    whole when closed (`store.writer`)."""

    def __init__(self, path: Location) -> None:
        self.path = path
        self.written = False
        self._stack = contextlib.ExitStack()
        self._file: gzip.GzipFile | None = None

    def write(self, partition: str, events: list[dict]) -> None:
        if self._file is None:
            target: IO[bytes] = self._stack.enter_context(writer(self.path))
            self._file = self._stack.enter_context(gzip.GzipFile(fileobj=target, mode="wb", compresslevel=5))
        self._file.write(b"".join(orjson.dumps(e) + b"\n" for e in events))

    def close(self) -> None:
        if self._file is not None:
            self._file = None
            self._stack.close()
            self.written = True
