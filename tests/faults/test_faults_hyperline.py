"""Hyperline misbehaving: flaky answers, a full outage (circuit breaker), a wrong API key.

Every scenario runs the real DAG (dag.test) over the session archive on moto S3 and ends by proving
that Hyperline holds exactly the expected events by id, as their first-received copies, and that the
ledger and the run report agree with each other and with the archive's manifest.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hyperline_devtools.emulator import Faults
from hyperline_sync.pipeline.unit_sync import IN_FLIGHT_BATCHES
from hyperline_sync.state.ledger import DONE, FAILED, Counts
from tests.faults.harness import DAYS, FAST_TUNING, HYPERLINE_CONN_ID, PIPELINE, RANGE, Harness, xcom_rows

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]  # a hang fails in minutes


def test_flaky_hyperline_loses_nothing_and_duplicates_nothing(harness: Harness):
    """1. 20% 429 (Retry-After), 10% 5xx, 5% dropped connections, 5% stored-then-500 (lost acks)."""
    h = harness
    h.emulator.set_faults(Faults(rate_429=0.20, rate_5xx=0.10, rate_drop=0.05, rate_store_then_500=0.05,
                                 retry_after=0.01, seed=7))
    run = h.run(RANGE)
    assert run.state == "success"

    h.assert_exact()
    statuses = h.emulator.statuses
    # Every kind of fault really happened, and the hook rode them all out.
    assert statuses[429] and statuses[503] and statuses[0] and statuses[500], statuses
    report = h.report(run.run_id)
    assert report["status"] == "success"
    assert report["totals"]["sent"] == len(h.manifest.expected_events)
    assert sum(p["retries"] for p in report["partitions"]) > 0
    h.assert_ledger_matches_manifest()
    h.assert_report_matches_ledger(report)
    # A lost acknowledgement makes the hook resend a batch Hyperline already stored: harmless
    # (upsert on record.id), measured here. No other path may send an event twice.
    twice = h.sent_twice()
    assert 0 < twice <= statuses[500] * FAST_TUNING["batch_size"]
    assert max(h.emulator.post_counts.values()) <= 1 + statuses[500]
    h.record("1. flaky Hyperline (429/5xx/drop/lost ack)", len(h.manifest.expected_events))


# The outage scenarios: 4 attempts per request, so a batch is given up on in ~0.1 s.
OUTAGE_TUNING = {"retries": 2, "send_max_attempts": 4, "breaker_failures": 3}
IN_FLIGHT = 2  # sends at once (a chunk's, and the next chunk's sent ahead), one request each while no key is accepted


def test_hyperline_down_opens_the_breaker_and_a_rerun_after_recovery_completes(harness: Harness):
    """2. Hyperline answers 503 to everything for the whole run."""
    h = harness
    h.configure(tuning=OUTAGE_TUNING)
    h.emulator.set_faults(Faults(always_status=503))
    down = h.run(RANGE)
    assert down.state == "failed"

    # Bounded: each failed send gives up after send_max_attempts for the batches in flight, and the
    # breaker opens after breaker_failures of them. Without it: 3 days x 3 tries x 8 requests.
    bound = OUTAGE_TUNING["breaker_failures"] * IN_FLIGHT * OUTAGE_TUNING["send_max_attempts"]
    assert 0 < h.emulator.requests <= bound
    assert set(h.emulator.statuses) == {503}
    assert h.emulator.events == {}

    report = h.report(down.run_id)
    assert report["status"] == "failed"
    assert report["failed_partitions"] == [d.isoformat() for d in DAYS]
    # Each day's last try either gave up itself or was stopped by the open breaker: which one depends
    # on the order dag.test runs the retries in. Both say why, and at least one day met the breaker.
    errors = [part["error"] for part in report["partitions"]]
    assert all("HTTP 503" in e and ("CircuitOpenError" in e or "HyperlineUnavailableError" in e) for e in errors)
    stopped = [e for e in errors if "CircuitOpenError: circuit breaker open until" in e]
    assert stopped and all("batches in a row failed after retries" in e for e in stopped)
    ledger = h.ledger()
    failures, open_until, last_error = ledger.breaker(PIPELINE)
    assert failures == OUTAGE_TUNING["breaker_failures"] and open_until > dt.datetime.now(dt.UTC)
    assert "unavailable" in last_error
    states = ledger.partitions(PIPELINE)
    for day in DAYS:
        state = states[day.isoformat()]
        assert state.status == FAILED
        assert "circuit breaker open" in state.last_error or "unavailable" in state.last_error
        assert state.counts.sent == 0 and state.objects_done == 0 and state.claimed_by is None
        # Nothing Hyperline did not acknowledge is marked done, nor remembered for dedup.
        assert [o for o in ledger.objects(PIPELINE, day.isoformat()) if o["status"] == DONE] == []
    assert committed_ids(h) == set()
    h.assert_report_matches_ledger(report)

    # Hyperline is back, but the breaker is still cooling down: a rerun sends nothing and says why.
    h.emulator.set_faults(Faults())
    requests = h.emulator.requests
    held = h.run({"partitions": ["failed"]})
    assert held.state == "failed" and h.emulator.requests == requests
    assert all("circuit breaker open" in p["error"] for p in h.report(held.run_id)["partitions"])

    # The cool-down passes (moved into the past instead of waiting 15 minutes): the rerun of the
    # failed partitions completes with exactly the expected events, each sent once.
    ledger.set_breaker(PIPELINE, failures, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), last_error)
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    assert [p["partition"] for p in h.report(rerun.run_id)["partitions"]] == [d.isoformat() for d in DAYS]
    h.assert_exact()
    assert max(h.emulator.post_counts.values()) == 1
    assert ledger.breaker(PIPELINE)[0] == 0  # a success closes the breaker
    h.assert_ledger_matches_manifest()
    h.assert_report_matches_ledger(h.report(rerun.run_id))
    assert ledger.failed_partitions(PIPELINE) == []
    h.record("2. Hyperline down (503), breaker, rerun", len(h.manifest.expected_events))


def test_hyperline_going_down_mid_partition_marks_done_only_what_it_acknowledged(harness: Harness):
    """2b. Hyperline accepts the first requests, then answers 503 to everything."""
    h = harness
    h.configure(tuning=OUTAGE_TUNING)
    h.emulator.set_faults(Faults(script=("ok",) * 9, rate_5xx=1.0, status_5xx=503))
    down = h.run(RANGE)
    assert down.state == "failed"
    stored = set(h.emulator.events)
    assert 0 < len(stored) < len(h.manifest.expected_events)

    ledger = h.ledger()
    done_objects = [o for day in DAYS for o in ledger.objects(PIPELINE, day.isoformat()) if o["status"] == DONE]
    assert done_objects, "the first requests were acknowledged: at least one object should be done"
    for obj in done_objects:
        key = obj["key"].removeprefix("logs/")
        expected = {i for i, e in h.manifest.expected_events.items() if e.key == key}
        assert expected <= stored, f"{key} is done but {len(expected - stored)} of its events are not at Hyperline"
        assert obj["sent"] == len(expected)
    assert committed_ids(h) <= stored  # dedup never remembers an unacknowledged id
    assert len(done_objects) < len(h.manifest.objects)

    h.emulator.set_faults(Faults())
    ledger.set_breaker(PIPELINE, 0, None, None)  # an operator closing the breaker after the incident
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    h.assert_exact()
    h.assert_ledger_matches_manifest()
    h.assert_report_matches_ledger(h.report(rerun.run_id))
    # Only events of the object interrupted by the outage can have been sent twice.
    interrupted = {i for i, n in h.emulator.post_counts.items() if n > 1}
    done_keys = {o["key"].removeprefix("logs/") for o in done_objects}
    assert not {h.manifest.expected_events[i].key for i in interrupted} & done_keys
    # ...and of that object only the slices whose sends were in flight (a chunk's, and the next chunk's
    # first, sent ahead): what was answered before was checkpointed.
    assert h.posted_again() <= IN_FLIGHT_BATCHES * FAST_TUNING["batch_size"]
    h.record("2b. Hyperline down mid-partition, rerun", len(h.manifest.expected_events))


def test_a_wrong_api_key_fails_fast_and_never_shows_the_key(harness: Harness, monkeypatch):
    """4. A wrong API key: one request per partition, never retried although the tasks have retries."""
    h = harness
    wrong = "test_wrong_SENTINEL_key_31c8"
    h.evidence.secrets["wrong Hyperline API key"] = wrong
    h.configure(tuning={"retries": 3})
    monkeypatch.setenv(f"AIRFLOW_CONN_{HYPERLINE_CONN_ID.upper()}",
                       json.dumps({"conn_type": "hyperline", "host": h.emulator.url, "password": wrong}))
    one_day = {"start": DAYS[0].isoformat(), "end": DAYS[1].isoformat()}
    run = h.run(one_day)
    assert run.state == "failed"
    assert h.emulator.requests == 1 and h.emulator.statuses == {401: 1}
    assert h.emulator.events == {}

    report = h.report(run.run_id)
    error = report["partitions"][0]["error"]
    assert error.startswith("HyperlineAuthError: Hyperline refused the API key of connection 'hyperline_faults'")
    state = h.ledger().partitions(PIPELINE)[DAYS[0].isoformat()]
    assert state.status == FAILED and "hyperline_faults" in state.last_error and state.objects_done == 0

    # The whole range: still one request per partition, none retried.
    full = h.run(RANGE)
    assert full.state == "failed"
    assert h.emulator.requests == 1 + len(DAYS) and set(h.emulator.statuses) == {401}

    output = h.output()
    assert "Hyperline refused the API key of connection 'hyperline_faults'" in output
    places = {"task logs": output, "reports": report_texts(h), "xcom": xcom_text([run.run_id, full.run_id])}
    for where, text in places.items():
        assert text, where
        assert wrong not in text, f"the API key leaked into {where}"
    h.record("4. wrong API key (1 request per partition)", 0)


def committed_ids(h: Harness) -> set[str]:
    """Message ids the dedup has recorded as delivered (the per-object id files)."""
    import pyarrow.parquet as pq

    folder = h.state_dir / PIPELINE / "ids"
    return {i for path in folder.rglob("*.parquet") for i in pq.read_table(path).column("message_id").to_pylist()}


def report_texts(h: Harness) -> str:
    return "\n".join(p.read_text() for p in sorted(h.reports_dir().rglob("*.json")))


def xcom_text(run_ids: list[str]) -> str:
    return "\n".join(f"{row}" for row in xcom_rows(run_ids))



def test_hyperline_refusing_everything_fails_the_partition_and_keeps_the_dead_letters(harness: Harness):
    """2c. Hyperline (or a proxy before it) answers 422 to every request: bisection would dead-letter
    every event and call the day done. More than tuning.max_rejected_share of the events refused (and
    at least 100) fails the partition instead; after the fix, the rerun sends the refused events."""
    h = harness
    h.configure(tuning={"chunk_size": 500})  # one batch a chunk: the guard trips after one bisected batch
    h.emulator.set_faults(Faults(always_status=422))
    one_day = {"start": DAYS[0].isoformat(), "end": DAYS[1].isoformat()}
    run = h.run(one_day)
    assert run.state == "failed"
    assert h.emulator.events == {}

    part = h.report(run.run_id)["partitions"][0]
    assert part["status"] == FAILED
    assert "SystemicRejectionError: Hyperline refused" in part["error"]
    assert "over tuning.max_rejected_share = 0.5" in part["error"]
    state = h.ledger().partitions(PIPELINE)[DAYS[0].isoformat()]
    assert state.status == FAILED and "refusal of everything" in state.last_error
    refused = [row for rows in h.dead_letters(DAYS[0]).values() for row in rows
               if row["reason"].startswith("rejected_by_hyperline: HTTP 422")]
    assert len(refused) >= 100  # the dead letters stay
    assert part["counts"]["rejected"] >= len(refused) and Counts(**part["counts"]).balanced

    h.emulator.set_faults(Faults())  # the proxy is fixed
    rerun = h.run({"partitions": ["failed"]})
    assert rerun.state == "success"
    expected = {i for i, e in h.manifest.expected_events.items() if e.day == DAYS[0]}
    h.assert_exact(expected)
    h.assert_ledger_matches_manifest([DAYS[0]])
    assert not [row for rows in h.dead_letters(DAYS[0]).values() for row in rows
                if row["reason"].startswith("rejected_by_hyperline")]
    h.record("2c. Hyperline answers 422 to everything, rerun", len(expected))
