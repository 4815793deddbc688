"""The local Hyperline emulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from hyperline_devtools.emulator import Emulator, Faults, event_problem

KEY = "test_emulator_key"


def event(record_id: str, customer: str = "cus_1", **record: Any) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "event_type": "api_call",
        "timestamp": "2026-11-20T10:00:00Z",
        "record": {"id": record_id, **record},
    }


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_key=KEY) as emu:
        yield emu


def post(emu: Emulator, path: str, payload: Any = None, *, data: bytes | None = None, key: str | None = KEY):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(emu.url + path, json=payload, data=data, headers=headers, timeout=10)


def test_batch_stores_events_and_answers_201_with_both_lists(emulator: Emulator) -> None:
    response = post(emulator, "/v1/events/batch", [event("a", n=1), event("b")])

    assert response.status_code == 201
    body = response.json()
    assert [e["record"]["id"] for e in body["events_created"]] == ["a", "b"]
    assert body["events_failed"] == []
    assert emulator.events["a"]["record"]["n"] == 1
    assert emulator.requests == 1


def test_resending_a_record_id_upserts_and_counts_posts(emulator: Emulator) -> None:
    post(emulator, "/v1/events/batch", [event("a", n=1), event("b")])
    post(emulator, "/v1/events/batch", [event("a", n=2)])

    assert len(emulator.events) == 2
    assert emulator.events["a"]["record"]["n"] == 2
    assert emulator.post_counts == {"a": 2, "b": 1}
    assert emulator.stats()["posts_per_id_max"] == 2


def test_auth_missing_wrong_and_basic(emulator: Emulator) -> None:
    missing = post(emulator, "/v1/events/batch", [event("a")], key=None)
    wrong = post(emulator, "/v1/events/batch", [event("a")], key="test_other")
    basic = requests.post(
        emulator.url + "/v1/events/batch",
        json=[event("a")],
        headers={"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()},
        timeout=10,
    )

    assert (missing.status_code, missing.json()) == (401, {"message": "Missing authentication token"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid API key"
    assert basic.status_code == 201
    assert emulator.requests == 3
    assert emulator.auth_schemes == {"basic": 1}
    assert list(emulator.events) == ["a"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "Body must be an array of 1 to 5000 events"),
        (b'{"customer_id": "x"}', "Body must be an array of 1 to 5000 events"),
        (b"[{", "Malformed JSON body"),
    ],
)
def test_malformed_batches_are_400_with_a_message(emulator: Emulator, body: bytes, message: str) -> None:
    response = post(emulator, "/v1/events/batch", data=body)

    assert response.status_code == 400
    assert response.json() == {"message": message}


def test_more_than_5000_events_is_400(emulator: Emulator) -> None:
    response = post(emulator, "/v1/events/batch", [event(str(i)) for i in range(5001)])

    assert response.status_code == 400
    assert emulator.events == {}


def test_invalid_events_are_listed_as_failed_and_not_stored(emulator: Emulator) -> None:
    bad = [
        {"event_type": "api_call", "timestamp": "2026-11-20T10:00:00Z", "record": {"id": "no-customer"}},
        event("nested", tags=[{"a": 1}]),
        event("null", value=None),
        {**event("no-zone"), "timestamp": "2026-11-20 10:00:00"},
        {**event("int-id"), "record": {"id": 485}},
    ]
    response = post(emulator, "/v1/events/batch", [event("good"), *bad])

    body = response.json()
    assert response.status_code == 201
    assert [e["record"]["id"] for e in body["events_created"]] == ["good"]
    assert body["events_failed"] == bad
    assert list(emulator.events) == ["good"]


def test_refused_customers_and_records_fail_without_failing_the_batch(emulator: Emulator) -> None:
    emulator.set_faults(Faults(reject_customer_ids={"cus_unknown"}, reject_record_ids={"r2"}))

    body = post(emulator, "/v1/events/batch", [event("r1"), event("r2"), event("r3", "cus_unknown")]).json()

    assert [e["record"]["id"] for e in body["events_failed"]] == ["r2", "r3"]
    assert list(emulator.events) == ["r1"]


def test_a_poisoned_record_makes_the_whole_batch_400(emulator: Emulator) -> None:
    emulator.set_faults(Faults(poison_record_ids={"bad"}))

    response = post(emulator, "/v1/events/batch", [event("ok1"), event("bad"), event("ok2")])

    assert response.status_code == 400
    assert "index 1" in response.json()["message"]
    assert emulator.events == {}


def test_bodies_over_max_body_bytes_are_413(emulator: Emulator) -> None:
    emulator.set_faults(Faults(max_body_bytes=300))

    big = post(emulator, "/v1/events/batch", [event(str(i)) for i in range(5)])
    small = post(emulator, "/v1/events/batch", [event("one")])

    assert big.status_code == 413
    assert small.status_code == 201
    assert list(emulator.events) == ["one"]


def test_single_event_endpoint(emulator: Emulator) -> None:
    created = post(emulator, "/v1/events", event("solo"))
    invalid = post(emulator, "/v1/events", {**event("x"), "timestamp": "yesterday"})

    assert created.status_code == 201
    assert created.json()["record"]["id"] == "solo"
    assert invalid.status_code == 400 and "timestamp" in invalid.json()["message"]
    assert list(emulator.events) == ["solo"]


def listing(emu: Emulator, **params: Any) -> requests.Response:
    """``GET /v1/events``; Hyperline requires ``event_type``, so it defaults to the one ``event`` uses."""
    params.setdefault("event_type", "api_call")
    headers = {"Authorization": f"Bearer {KEY}"}
    return requests.get(emu.url + "/v1/events", params=params, headers=headers, timeout=10)


def test_listing_pages_and_filters(emulator: Emulator) -> None:
    post(emulator, "/v1/events/batch", [event(f"r{i}", "cus_a" if i < 3 else "cus_b") for i in range(5)])
    post(emulator, "/v1/events/batch", [{**event("other"), "event_type": "storage"}])

    page = listing(emulator, take=2, skip=1).json()
    by_id = listing(emulator, record_id__in="r4,r0,missing,other").json()
    by_customer = listing(emulator, customer_id="cus_b", take=100).json()
    by_type = listing(emulator, event_type="storage").json()

    assert page["meta"] == {"total": 5, "taken": 2, "skipped": 1}
    assert [e["record_id"] for e in page["data"]] == ["r1", "r2"]
    assert page["data"][0]["id"].startswith("evt_")
    assert [e["record_id"] for e in by_id["data"]] == ["r4", "r0"]
    assert by_customer["meta"]["total"] == 2
    assert [e["record_id"] for e in by_type["data"]] == ["other"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"event_type": None}, 400),  # Hyperline requires it
        ({"event_type": ""}, 400),
        ({"take": 0}, 200),
        ({"take": 100}, 200),
        ({"take": 101}, 400),
        ({"take": -1}, 400),
        ({"take": "many"}, 400),
        ({"event_type": "never_sent", "take": 0}, 200),  # what the hook's connection test sends
    ],
)
def test_listing_is_as_strict_as_hyperline(emulator: Emulator, params: dict[str, Any], status: int) -> None:
    answer = listing(emulator, **params)

    assert answer.status_code == status
    if status == 400:
        assert answer.json()["message"]


def test_listing_ignores_unknown_parameters_as_hyperline_does(emulator: Emulator) -> None:
    post(emulator, "/v1/events/batch", [event(f"r{i}") for i in range(60)])

    misspelt = listing(emulator, record_id="r1").json()  # the filter is record_id__in

    assert misspelt["meta"]["total"] == 60 and misspelt["meta"]["taken"] == 50  # unfiltered, default take


def test_listing_filters_timestamps_and_sorts(emulator: Emulator) -> None:
    stamps = ["2026-11-20T10:00:00Z", "2026-11-21T10:00:00+00:00", 1_795_348_800_000]  # the last: 2026-11-22 12:00Z
    post(emulator, "/v1/events/batch", [{**event(f"t{i}"), "timestamp": ts} for i, ts in enumerate(stamps)])

    window = listing(emulator, timestamp_gte="2026-11-21T00:00:00Z", timestamp_lte="2026-11-22T12:00:00Z").json()
    ascending = listing(emulator, sort="timestamp", order="asc").json()
    descending = listing(emulator, sort="timestamp").json()  # desc by default

    assert sorted(e["record_id"] for e in window["data"]) == ["t1", "t2"]
    assert [e["record_id"] for e in ascending["data"]] == ["t0", "t1", "t2"]
    assert [e["record_id"] for e in descending["data"]] == ["t2", "t1", "t0"]
    assert listing(emulator, timestamp_gte="yesterday").status_code == 400


def test_an_id_under_two_event_types_is_two_events_and_delete_takes_both(emulator: Emulator) -> None:
    post(emulator, "/v1/events/batch", [event("x"), {**event("x"), "event_type": "storage"}, event("y")])

    assert len(emulator.stored_events()) == 3
    assert listing(emulator, event_type="storage", record_id__in="x,y").json()["meta"]["total"] == 1
    headers = {"Authorization": f"Bearer {KEY}"}
    deleted = requests.delete(emulator.url + "/v1/events", json={"matching": "record_ids", "record_ids": ["x"]},
                              headers=headers, timeout=10)
    assert deleted.json() == {"deleted": 2}
    assert [e["record"]["id"] for e in emulator.stored_events()] == ["y"]


def test_read_script_applies_to_listings_only(emulator: Emulator) -> None:
    emulator.set_faults(Faults(read_script=("503", "429")))
    post(emulator, "/v1/events/batch", [event("a")])  # not consumed by the ingest POST

    assert [listing(emulator).status_code for _ in range(3)] == [503, 429, 200]


def test_delete_by_record_ids(emulator: Emulator) -> None:
    post(emulator, "/v1/events/batch", [event("a"), event("b"), event("c")])
    headers = {"Authorization": f"Bearer {KEY}"}

    deleted = requests.delete(
        emulator.url + "/v1/events",
        json={"matching": "record_ids", "record_ids": ["a", "c", "zz"]},
        headers=headers,
        timeout=10,
    )
    refused = requests.delete(emulator.url + "/v1/events", json={"record_ids": ["b"]}, headers=headers, timeout=10)
    not_an_object = requests.delete(emulator.url + "/v1/events", json=["b"], headers=headers, timeout=10)

    assert (deleted.status_code, deleted.json()) == (200, {"deleted": 2})
    assert refused.status_code == not_an_object.status_code == 400
    assert list(emulator.events) == ["b"]


def test_scripted_outcomes_apply_one_per_ingest_request(emulator: Emulator) -> None:
    emulator.set_faults(Faults(script=("503", "429", "drop", "store_then_500", "bad_201", "ok"), retry_after=0.05))
    statuses: list[Any] = []
    for i in range(6):
        try:
            response = post(emulator, "/v1/events/batch", [event(f"s{i}")])
        except requests.ConnectionError:
            statuses.append("dropped")
        else:
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "0.050"

    assert statuses == [503, 429, "dropped", 500, 201, 201]
    # store_then_500 and bad_201 stored their event although the answer was not an acknowledgement
    assert sorted(emulator.events) == ["s3", "s4", "s5"]
    assert emulator.statuses[0] == 1


def test_503_carries_the_overloaded_retry_after_verbatim(emulator: Emulator) -> None:
    emulator.set_faults(Faults(script=("503", "500", "503"), overloaded_retry_after="-5"))

    answers = [post(emulator, "/v1/events/batch", [event(str(i))]) for i in range(3)]

    assert [a.status_code for a in answers] == [503, 500, 503]
    assert [a.headers.get("Retry-After") for a in answers] == ["-5", None, "-5"]


def test_listing_does_not_consume_the_script(emulator: Emulator) -> None:
    emulator.set_faults(Faults(script=("503",)))
    assert listing(emulator).status_code == 200
    assert post(emulator, "/v1/events/batch", [event("a")]).status_code == 503


def test_random_faults_are_deterministic_with_a_seed() -> None:
    def statuses() -> list[int]:
        with Emulator(api_key=KEY, faults=Faults(rate_5xx=0.3, rate_429=0.3, seed=42)) as emu:
            return [post(emu, "/v1/events/batch", [event(str(i))]).status_code for i in range(30)]

    first, second = statuses(), statuses()

    assert first == second
    assert {201, 429, 503} == set(first)


def test_always_status_applies_to_every_api_request(emulator: Emulator) -> None:
    emulator.set_faults(Faults(always_status=503))

    assert post(emulator, "/v1/events/batch", [event("a")]).status_code == 503
    assert listing(emulator).status_code == 503
    assert emulator.events == {}


def test_rate_limit_sends_headers_and_429_when_spent(emulator: Emulator) -> None:
    emulator.set_faults(Faults(rate_limit=2, rate_limit_window=60, retry_after=1.0))

    answers = [post(emulator, "/v1/events/batch", [event(str(i))]) for i in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    reset = datetime.fromisoformat(answers[2].headers["X-RateLimit-Reset"])
    assert reset.tzinfo is not None
    assert 0 < float(answers[2].headers["Retry-After"]) <= 60


def test_admin_endpoints_inspect_reset_and_set_faults(emulator: Emulator) -> None:
    post(emulator, "/v1/events/batch", [event("a"), event("b")])
    post(emulator, "/v1/events/batch", [event("a")])

    stats = requests.get(emulator.url + "/_emulator/stats", timeout=10).json()
    stored = requests.get(emulator.url + "/_emulator/events", timeout=10).json()["events"]
    set_faults = requests.post(emulator.url + "/_emulator/faults", json={"always_status": 502}, timeout=10)
    bad_faults = requests.post(emulator.url + "/_emulator/faults", json={"nope": 1}, timeout=10)

    assert stats["requests"] == 2 and stats["events"] == 2 and stats["posts_per_id_max"] == 2
    assert stats["max_request_events"] == 2
    assert {e["record_id"]: e["posts"] for e in stored} == {"a": 2, "b": 1}
    assert set_faults.status_code == 200 and emulator.faults.always_status == 502
    assert bad_faults.status_code == 400 and "nope" in bad_faults.json()["message"]

    requests.post(emulator.url + "/_emulator/reset", json={}, timeout=10)
    assert emulator.requests == 0 and emulator.events == {} and emulator.post_counts == {}


def test_faults_reject_bad_settings() -> None:
    with pytest.raises(ValueError, match="sum to <= 1"):
        Faults(rate_429=0.7, rate_5xx=0.7)
    with pytest.raises(ValueError, match="script item"):
        Faults(script=("explode",))
    with pytest.raises(ValueError, match="unknown fault keys: bogus"):
        Faults.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    ("candidate", "problem"),
    [
        (event("a"), None),
        ({**event("a"), "timestamp": 1766224800000}, None),
        ({**event("a"), "timestamp": "2026-11-20T10:00:00+02:00"}, None),
        (event("a", tags=["x", 1, True, 2.5]), None),
        ({**event("a"), "customer_id": ""}, "customer_id must be a non-empty string"),
        ({**event("a"), "timestamp": "2026-11-20"}, "timestamp must be an ISO 8601 date-time with a time zone"),
        (event("a", ratio=float("inf")), "record.ratio must be a finite number"),
        (event("a", nested={"b": 1}), "record.nested must be a string, number or boolean, or an array of those"),
        ([], "event must be an object"),
    ],
)
def test_event_problem(candidate: Any, problem: str | None) -> None:
    assert event_problem(candidate) == problem


def test_cli_prints_its_url_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperline_devtools.emulator", "--port", "0", "--api-key", "test_cli"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line[line.index("http://") :].strip()
        response = requests.post(
            url + "/v1/events/batch", json=[event("cli")], headers={"Authorization": "Bearer test_cli"}, timeout=10
        )
        stats = requests.get(url + "/_emulator/stats", timeout=10).json()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "test_cli" not in line  # the key is not echoed
    assert response.status_code == 201
    assert stats["events"] == 1
