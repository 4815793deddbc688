"""The usage tally: what it counts (accepted events only), how it sums (exactly), and its CSV."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from hyperline_sync.insight.usage import UsageTally, combine, read_usage, usage_totals, write_usage


def events(rows: list[tuple[str, str, str, dict]]) -> pd.DataFrame:
    """The transform's frame for (message_id, customer_id, event_type, record) rows."""
    return pd.DataFrame({
        "message_id": [r[0] for r in rows],
        "customer_id": [r[1] for r in rows],
        "event_type": [r[2] for r in rows],
        "timestamp": ["2026-05-01T00:00:00.000Z"] * len(rows),
        "record": [{"id": r[0], **r[3]} for r in rows],
        "line_no": list(range(1, len(rows) + 1)),
    })


FRAME = events([
    ("m1", "c1", "api_call", {"duration_ms": 100, "bytes": 0.1}),
    ("m2", "c1", "api_call", {"duration_ms": 250, "bytes": 0.2}),
    ("m3", "c2", "api_call", {"duration_ms": "300", "bytes": True}),  # not numbers: add nothing
    ("m4", "c2", "login", {"duration_ms": 7}),  # duration_ms is not summed for login
    ("m5", "c1", "api_call", {"duration_ms": 10**20}),  # beyond int64: still exact
])


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame.itertuples(index=False, name=None)]


def test_counts_and_sums_exactly_what_was_accepted():
    tally = UsageTally({"api_call": ["duration_ms", "bytes"]})
    tally.add("2026-05-01", FRAME, refused=["m2"])
    tally.add("2026-05-02", FRAME)
    assert list(tally.frame().columns) == ["day", "customer_id", "event_type", "events", "sum_bytes",
                                           "sum_duration_ms"]
    assert rows(tally.frame()) == [
        ("2026-05-01", "c1", "api_call", 2, Decimal("0.1"), 100 + 10**20),
        ("2026-05-01", "c2", "api_call", 1, 0, 0),
        ("2026-05-01", "c2", "login", 1, None, None),
        ("2026-05-02", "c1", "api_call", 3, Decimal("0.3"), 350 + 10**20),  # 0.1 + 0.2, not 0.30000000000000004
        ("2026-05-02", "c2", "api_call", 1, 0, 0),
        ("2026-05-02", "c2", "login", 1, None, None),
    ]
    assert tally.frame()["events"].sum() == 9


def test_without_sum_properties_it_counts_events_only():
    tally = UsageTally()
    tally.add("2026-05-01", FRAME, refused={"m1", "m2", "m3", "m4", "m5"})
    assert tally.frame().empty and list(tally.frame().columns) == ["day", "customer_id", "event_type", "events"]
    tally.add("2026-05-01", FRAME)
    assert rows(tally.frame()) == [("2026-05-01", "c1", "api_call", 3), ("2026-05-01", "c2", "api_call", 1),
                                   ("2026-05-01", "c2", "login", 1)]


def test_slices_add_up_to_the_whole():
    whole, sliced = (UsageTally({"api_call": ["bytes", "duration_ms"]}) for _ in range(2))
    for day in ["2026-05-01", "2026-05-02"]:
        whole.add(day, FRAME)
        for start in range(len(FRAME)):
            sliced.add(day, FRAME.iloc[start:start + 1])
    assert rows(sliced.frame()) == rows(whole.frame())
    assert rows(combine([whole.frame(), sliced.frame()])) == [
        (*row[:3], 2 * row[3], *(None if v is None else 2 * v for v in row[4:])) for row in rows(whole.frame())]


def test_the_csv_keeps_ids_as_strings_and_sums_exact(tmp_path):
    tally = UsageTally({"api_call": ["bytes", "duration_ms"]})
    tally.add("2026-05-01", events([("m1", "00123", "api_call", {"bytes": 1e-7, "duration_ms": 2**70}),
                                    ("m2", "a,\"b\"\nc", "api_call", {"bytes": 1.5}),
                                    ("m3", "00123", "login", {})]))
    path = write_usage(tmp_path / "usage.csv", tally.frame())
    assert path.read_text().splitlines()[:2] == ["day,customer_id,event_type,events,sum_bytes,sum_duration_ms",
                                                 "2026-05-01,00123,api_call,1,0.0000001,1180591620717411303424"]
    again = read_usage(path)
    assert rows(again) == rows(tally.frame())
    assert rows(usage_totals(combine([again, again]))) == [
        ("00123", "api_call", 2, Decimal("0.0000002"), 2 * 2**70),
        ("00123", "login", 2, None, None),
        ("a,\"b\"\nc", "api_call", 2, Decimal("3.0"), 0),
    ]


def test_integer_sums_are_exact_on_both_sides_of_the_float64_limit():
    for big in (2**51 - 1, 2**52 + 1, 2**62):  # the first by a bincount, the others (past 2**53) one by one
        tally = UsageTally({"api_call": ["n"]})
        tally.add("2026-05-01", events([("m1", "c1", "api_call", {"n": big}), ("m2", "c1", "api_call", {"n": big}),
                                        ("m3", "c2", "api_call", {"n": -3})]))
        assert rows(tally.frame()) == [("2026-05-01", "c1", "api_call", 2, 2 * big),
                                       ("2026-05-01", "c2", "api_call", 1, -3)]
        assert all(type(v) is int for v in tally.frame()["sum_n"])
