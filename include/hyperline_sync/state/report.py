"""Run reports: one JSON file per run plus a readable table for the task log.

Each sync task writes its partition's outcome (`PartitionOutcome`) as a small JSON file as soon as
it ends, success or failure; the summarize task gathers them with the ledger's view of partitions
that left no outcome (a killed worker), writes the run report and prints the table.

`counts` are this run's work and add up: read = sent + rejected + skipped + duplicates. Lines of a
unit that an earlier attempt had already settled (answered by Hyperline, checkpointed: see
`checkpoint`) are read again by a resuming run to get past them but neither sent nor counted there:
they are in `resumed` (outside the balance), and in the ledger's totals of the unit from that attempt.
Every error text is redacted (`redact_secrets`: any `Bearer <token>`, and the given secrets) as it is
written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import orjson

from hyperline_sync.redact import redact_secrets
from hyperline_sync.state import store
from hyperline_sync.state.ledger import COUNT_FIELDS, Counts
from hyperline_sync.state.store import Location


@dataclass
class PartitionOutcome:
    """What happened to one partition in one run."""

    partition: str
    status: str  # done | failed | dry_run | busy | unknown
    counts: Counts = field(default_factory=Counts)
    objects_total: int = 0
    objects_synced: int = 0
    objects_skipped: int = 0
    requests: int = 0
    retries: int = 0
    dropped_properties: int = 0  # property values Hyperline cannot take (nulls, arrays of objects)
    seconds: float = 0.0
    error: str | None = None
    dead_letters: list[str] = field(default_factory=list)
    dry_run_output: str | None = None
    ledger_totals: Counts | None = None  # the partition over all runs (counts above: this run only)
    watermark: str | None = None  # warehouse: newest uuid_ts of the slices, once all of them are synced
    warning: str | None = None  # a complete day with implausibly little data (pipeline.volume)
    resumed: int = 0  # lines settled by an earlier attempt, read again but not sent (see module docstring)
    corrections: dict | None = None  # units changed at the source since synced (pipeline.corrections)
    rejects: dict[str, int] = field(default_factory=dict)  # this run's rejected events by reason

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PartitionOutcome:
        data = dict(data)
        data["counts"] = Counts(**data.get("counts", {}))
        if data.get("ledger_totals") is not None:
            data["ledger_totals"] = Counts(**data["ledger_totals"])
        return cls(**data)


def safe_name(run_id: str) -> str:
    """A run id usable as a file name (run ids hold ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)


def run_dir(output_dir: Location, pipeline: str, run_id: str) -> Location:
    return output_dir / pipeline / "runs" / safe_name(run_id)


def write_outcome(output_dir: Location, pipeline: str, run_id: str, outcome: PartitionOutcome,
                  secrets: Iterable[str] = ()) -> Location:
    path = run_dir(output_dir, pipeline, run_id) / "partitions" / f"{outcome.partition}.json"
    data = outcome.to_json()
    if data["error"] is not None:
        data["error"] = redact_secrets(data["error"], secrets)
    _write_json(path, data)
    return path


def write_plan_failure(output_dir: Location, pipeline: str, run_id: str, error: str,
                       secrets: Iterable[str] = ()) -> Location:
    """Why the run's plan task failed, for summarize to say (it gets no plan to summarize)."""
    path = run_dir(output_dir, pipeline, run_id) / "plan_failed.txt"
    store.write_bytes(path, redact_secrets(error, secrets).encode())
    return path


def read_plan_failure(output_dir: Location, pipeline: str, run_id: str) -> str | None:
    data = store.read_bytes(run_dir(output_dir, pipeline, run_id) / "plan_failed.txt")
    return data.decode() if data is not None else None


def read_outcomes(output_dir: Location, pipeline: str, run_id: str) -> dict[str, PartitionOutcome]:
    folder = run_dir(output_dir, pipeline, run_id) / "partitions"
    outcomes = {}
    for name in _outcome_files(output_dir, pipeline, run_id):
        data = store.read_bytes(folder / name)
        if data is not None:
            outcomes[name.removesuffix(".json")] = PartitionOutcome.from_json(orjson.loads(data))
    return outcomes


def _outcome_files(output_dir: Location, pipeline: str, run_id: str) -> list[str]:
    folder = run_dir(output_dir, pipeline, run_id) / "partitions"
    return [e.name for e in store.list_files(folder) if e.name.endswith(".json")]


def build_report(
    *, pipeline: str, run_id: str, dry_run: bool, params: dict, outcomes: Sequence[PartitionOutcome]
) -> dict:
    totals = Counts()
    for outcome in outcomes:
        totals.add(outcome.counts)
    failed = [o.partition for o in outcomes if o.status not in ("done", "dry_run")]
    return {
        "pipeline": pipeline,
        "run_id": run_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "dry_run": dry_run,
        "params": params,
        "status": "failed" if failed else "success",
        "failed_partitions": failed,
        "totals": totals.as_dict(),
        "balanced": totals.balanced and all(o.counts.balanced for o in outcomes),
        "resumed": sum(o.resumed for o in outcomes),
        "partitions": [o.to_json() for o in outcomes],
    }


def write_report(output_dir: Location, report: dict, secrets: Iterable[str] = ()) -> Location:
    path = run_dir(output_dir, report["pipeline"], report["run_id"]) / "report.json"
    for part in report["partitions"]:
        if part.get("error") is not None:
            part["error"] = redact_secrets(part["error"], secrets)
    _write_json(path, report)
    return path


def render_table(outcomes: Iterable[PartitionOutcome]) -> str:
    """Fixed-width table: one row per partition, then the totals."""
    headers = ["partition", "status", *COUNT_FIELDS, "resumed", "objects", "error"]
    rows: list[list[str]] = []
    totals = Counts()
    for o in outcomes:
        totals.add(o.counts)
        rows.append([
            o.partition,
            o.status,
            *(str(getattr(o.counts, n)) for n in COUNT_FIELDS),
            str(o.resumed),
            f"{o.objects_synced}/{o.objects_total}",
            (o.error or "")[:80],
        ])
    rows.append(["TOTAL", "", *(str(getattr(totals, n)) for n in COUNT_FIELDS), "", "", ""])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return "\n".join(_row(r, widths) for r in [headers, ["-" * w for w in widths], *rows])


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _write_json(path: Location, data: dict) -> None:
    store.write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str))
