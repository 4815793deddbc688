"""The operator commands against a real sync: `status`, `breaker reset`, `replay-dead-letters`.

A day is synced for real (the DAG's task body, the Hyperline hook over HTTP to the emulator) while
the emulator refuses one customer; after the "fix" (the emulator accepts it again) the replay must
read exactly those lines again from the archive and deliver them, once.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
import yaml

from hyperline_devtools.emulator import Emulator, Faults
from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.orchestration import tasks
from hyperline_sync.orchestration.cli import main
from hyperline_sync.orchestration.cli.replay import replay
from hyperline_sync.orchestration.cli.status import pipeline_status, render
from hyperline_sync.pipeline.sync import PartitionFailedError
from hyperline_sync.state.deadletter import read_dead_letters
from hyperline_sync.state.ledger import DONE, Ledger
from hyperline_sync.state.operations import BREAKER_RESET, REPLAY, operations, reset_breaker

DAY = dt.date(2026, 6, 2)
API_KEY = "ops_test_secret"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return generate_archive(tmp_path_factory.mktemp("archive"), "opsSrc01", [DAY], 800, seed=5, objects_per_day=2)


@pytest.fixture
def setup(archive, tmp_path, monkeypatch):
    config = tmp_path / "pipelines.yaml"
    state = tmp_path / "state"
    config.write_text(yaml.safe_dump({"state": {"dir": str(state)}, "pipelines": [{
        "name": "ops", "hyperline_conn_id": "hyperline_ops",
        "source": {"kind": "s3_archive", "url": f"file://{archive.root}", "source_id": archive.source_id},
        "tuning": {"chunk_size": 150, "batch_size": 100}}]}))
    monkeypatch.setenv("HYPERLINE_SYNC_CONFIG", str(config))
    with Emulator(api_key=API_KEY) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_HYPERLINE_OPS", json.dumps(
            {"conn_type": "hyperline", "host": emulator.url, "password": API_KEY}))
        yield config, state, emulator


def _letters(state: Path) -> list[dict]:
    return [row for p in sorted((state / "reports" / "ops" / "dead_letters").rglob("*.jsonl.gz"))
            for row in read_dead_letters(p)]


def test_replay_after_a_fix_sends_the_refused_lines_once_and_counts_add_up(archive, setup, capsys):
    config, state, emulator = setup
    refused = next(e.customer_id for e in archive.expected_events.values())
    refused_ids = {i for i, e in archive.expected_events.items() if e.customer_id == refused}
    emulator.set_faults(Faults(reject_customer_ids=frozenset({refused})))
    tasks.sync("ops", [DAY.isoformat()], {}, "scheduled__first")
    before = _letters(state)
    hyperline_rows = [r for r in before if r["reason"].startswith("rejected_by_hyperline")]
    assert {r["event"]["record"]["id"] for r in hyperline_rows} == refused_ids
    assert not refused_ids & set(emulator.events)
    emulator.set_faults(Faults())  # the fix: the customer exists now

    # A dry run counts and changes nothing.
    assert main(["replay-dead-letters", "--config", str(config), "--pipeline", "ops", "--day", DAY.isoformat(),
                 "--reason", "rejected_by_hyperline", "--dry-run"]) == 0
    assert f"would replay {len(hyperline_rows)} dead letters" in capsys.readouterr().out
    assert not refused_ids & set(emulator.events) and _letters(state) == before

    code = main(["replay-dead-letters", "--config", str(config), "--pipeline", "ops", "--day", DAY.isoformat(),
                 "--reason", "rejected_by_hyperline"])
    assert code == 0
    assert refused_ids <= set(emulator.events)
    assert all(emulator.post_counts[i] == 1 for i in refused_ids)
    after = _letters(state)
    assert sorted(map(json.dumps, after)) == sorted(json.dumps(r) for r in before if r not in hyperline_rows)

    ledger = Ledger.sqlite(state / "ledger.db")
    (replay,) = [o for o in operations(ledger, "ops") if o.action == REPLAY]
    assert replay.partition == DAY.isoformat()
    assert replay.counts.as_dict() == {"read": len(refused_ids), "sent": len(refused_ids), "rejected": 0,
                                       "skipped": 0, "duplicates": 0}
    assert ledger.partitions("ops")[DAY.isoformat()].status == DONE  # the sync's row is left as it was
    assert ledger.partitions("ops")[DAY.isoformat()].claimed_by is None

    # Everything left: the transform's rejects are read again and rejected again; nothing is sent twice.
    requests = emulator.requests
    assert main(["replay-dead-letters", "--config", str(config), "--pipeline", "ops", "--day",
                 DAY.isoformat()]) == 0
    assert emulator.requests == requests
    last = [o for o in operations(ledger, "ops") if o.action == REPLAY][-1]
    assert last.counts.sent == 0
    assert last.counts.read + last.detail["missing"] == len(after) == last.detail["letters"]
    assert last.counts.balanced
    assert sorted(r["line_no"] for r in _letters(state)) == sorted(r["line_no"] for r in after)


def test_replay_refuses_a_day_that_is_not_done(setup):
    config, state, _emulator = setup
    # dead letters of a day the ledger has no done row for (as a failed run leaves them)
    letters = state / "reports" / "ops" / "dead_letters" / "2026-06-09"
    letters.mkdir(parents=True)
    (letters / "x.jsonl.gz").write_bytes(gzip.compress(
        b'{"reason":"malformed_json","source_key":"x","line_no":1,"partition":"2026-06-09"}\n'))
    with pytest.raises(PartitionFailedError, match="not done"):
        replay(str(config), "ops", "2026-06-09")


def test_status_shows_partitions_claims_breaker_dead_letters_and_operations(archive, setup, capsys):
    config, state, _emulator = setup
    tasks.sync("ops", [DAY.isoformat()], {}, "scheduled__first")
    ledger = Ledger.sqlite(state / "ledger.db")
    ledger.set_breaker("ops", 3, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10), "HTTP 503 from Hyperline")
    ledger.claim("ops", "2026-06-03", "manual__x [map 0, try 1] @gone:1:ab", dt.timedelta(minutes=5), "manual__x")
    now = dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC) + dt.timedelta(days=2)
    status = pipeline_status(str(config), "ops", 3, now=now)
    assert status["by_status"] == {"done": 1, "running": 1}
    assert status["breaker"]["consecutive_failures"] == 3
    assert [c["partition"] for c in status["claims"]] == ["2026-06-03"]
    rejected = archive.by_day[DAY].rejected_total
    assert sum(status["dead_letters"][DAY.isoformat()].values()) == rejected
    text = render(status)
    assert "2026-06-03" in text and "manual__x" in text and "HTTP 503" in text

    assert main(["status", "--config", str(config), "--pipeline", "ops", "--days", "3650", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["partitions"][0]["partition"] == DAY.isoformat()
    assert printed["breaker"]["state"] == "open"

    assert main(["breaker", "reset", "--config", str(config), "--pipeline", "ops"]) == 0
    assert "reset (was open until" in capsys.readouterr().out
    assert ledger.breaker("ops") == (0, None, None)
    assert main(["status", "--config", str(config), "--pipeline", "ops", "--days", "3650"]) == 0
    out = capsys.readouterr().out
    assert "breaker: closed" in out and "breaker_reset" in out


def test_breaker_reset_is_audited_on_both_ledgers(ledger):
    ledger.set_breaker("p", 5, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15), "HTTP 502")
    failures, open_until, error = reset_breaker(ledger, "p")
    assert (failures, error) == (5, "HTTP 502") and open_until is not None
    assert ledger.breaker("p") == (0, None, None)
    (op,) = operations(ledger, "p")
    assert op.action == BREAKER_RESET and op.detail["consecutive_failures"] == 5 and "@" in op.actor
