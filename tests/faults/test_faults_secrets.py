"""8. Secrets: after every other scenario (this test is ordered last), no secret appears in any log,
report, dead letter, ledger file or XCom value the runs produced.

Searched for: the Hyperline API key (and the wrong one of scenario 4), the AWS secret of the moto
connection, the IAM user's secret (scenario 5), the ledger database password (scenario 6), and the
Segment writeKey carried by every archived line. Searched in: each scenario's state dir (reports,
per-partition outcomes, dead letters, dry-run output, the SQLite ledger, dedup id files), the task
logs (dag.test prints them to stdout, captured per test), log records, subprocess output, Airflow's
metadata DB (whole file, and the XCom table row by row) and AIRFLOW_HOME's log folder.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import AIRFLOW_HOME
from tests.faults.harness import API_KEY, DAYS, HYPERLINE_CONN_ID, RANGE, Evidence, Harness, xcom_rows

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]  # a hang fails in minutes


def readable(path: Path) -> bytes:
    """A file's bytes as a leak would show in them: gzip inflated, parquet as its values."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return data
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return repr(pq.read_table(path).to_pylist()).encode()
    return data


def files_under(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in sorted(root.rglob("*")) if p.is_file())


def leaks(secrets: dict[str, str], places: Iterable[tuple[str, bytes]]) -> list[str]:
    found = []
    for where, data in places:
        for label, secret in secrets.items():
            if secret.encode() in data:
                found.append(f"{label} in {where}")
    return found


def test_no_secret_in_any_log_report_dead_letter_or_xcom(evidence: Evidence, harness: Harness, monkeypatch):
    h = harness
    if not evidence.run_ids:  # selected alone: produce something to search first
        variable = f"AIRFLOW_CONN_{HYPERLINE_CONN_ID.upper()}"
        good, wrong = os.environ[variable], "test_wrong_SENTINEL_key_31c8"
        evidence.secrets["wrong Hyperline API key"] = wrong
        monkeypatch.setenv(variable, good.replace(API_KEY, wrong))
        h.run({"start": DAYS[0].isoformat(), "end": DAYS[1].isoformat()})
        monkeypatch.setenv(variable, good)
        h.run(RANGE)
        evidence.text("stdout of this test", h.output())
    secrets = dict(evidence.secrets)
    assert {"Hyperline API key", "AWS secret", "Segment writeKey"} <= secrets.keys()

    # The search works: it finds the writeKey in the archive it was read from (gzipped lines).
    archive_places = ((str(p), readable(p)) for p in files_under([h.manifest.root]))
    assert any("Segment writeKey" in leak for leak in leaks(secrets, archive_places))

    outputs = list(files_under([*evidence.state_dirs, *evidence.logs, AIRFLOW_HOME / "logs"]))
    assert any(p.name == "report.json" for p in outputs) and any("dead_letters" in p.parts for p in outputs)
    places: list[tuple[str, bytes]] = [(str(p), readable(p)) for p in outputs]
    places += [(where, text.encode()) for where, text in evidence.texts]
    assert evidence.log_file is not None
    places.append((str(evidence.log_file), evidence.log_file.read_bytes()))
    places.append(("Airflow metadata DB file", (AIRFLOW_HOME / "airflow.db").read_bytes()))
    rows = xcom_rows(evidence.run_ids)
    assert rows, "the runs pushed no XCom at all?"
    places += [(f"XCom {row[:5]}", repr(row).encode()) for row in xcom_rows()]
    assert sum(len(text) for where, text in evidence.texts if where.startswith("stdout")) > 10_000  # task logs

    found = leaks(secrets, places)
    assert found == [], "\n".join(found)
    h.record(f"8. secrets: {len(secrets)} secrets, {len(places)} places searched", 0)
