"""Planning a run's days from params, data intervals and run_after."""

from __future__ import annotations

import datetime as dt

import pytest

from hyperline_sync.pipeline.partitions import PlanError, day_range, group_days, group_label, plan_days

UTC = dt.UTC


def plan(params=None, interval=None, run_after=None, lookback=1, failed=()):
    return plan_days(
        params=params or {},
        data_interval=interval,
        run_after=run_after or dt.datetime(2026, 11, 5, 10, 0, tzinfo=UTC),
        lookback_days=lookback,
        failed_partitions=lambda: failed,
    )


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_hourly_interval_covers_its_day_and_the_day_before():
    interval = (dt.datetime(2026, 11, 5, 9, tzinfo=UTC), dt.datetime(2026, 11, 5, 10, tzinfo=UTC))
    assert plan(interval=interval) == [d("2026-11-04"), d("2026-11-05")]


def test_interval_ending_at_midnight_does_not_touch_the_next_day():
    interval = (dt.datetime(2026, 11, 5, 23, tzinfo=UTC), dt.datetime(2026, 11, 6, 0, tzinfo=UTC))
    assert plan(interval=interval, lookback=0) == [d("2026-11-05")]


def test_interval_in_another_timezone_is_read_in_utc():
    tz = dt.timezone(dt.timedelta(hours=-5))
    interval = (dt.datetime(2026, 11, 5, 20, tzinfo=tz), dt.datetime(2026, 11, 5, 21, tzinfo=tz))
    assert plan(interval=interval, lookback=0) == [d("2026-11-06")]


def test_manual_run_without_logical_date_uses_run_after():
    assert plan(run_after=dt.datetime(2026, 11, 5, 0, 30, tzinfo=UTC), lookback=0) == [
        d("2026-11-04"),
        d("2026-11-05"),
    ]


def test_manual_range_is_end_exclusive_and_wins_over_the_interval():
    interval = (dt.datetime(2026, 11, 5, 9, tzinfo=UTC), dt.datetime(2026, 11, 5, 10, tzinfo=UTC))
    assert plan({"start": "2026-10-30", "end": "2026-11-02"}, interval=interval) == day_range(
        d("2026-10-30"), d("2026-11-02")
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-11-02"}, "go together"),
        ({"start": "2026-11-02", "end": "2026-11-02"}, "must be after"),
        ({"start": "yesterday", "end": "2026-11-02"}, "start: 'yesterday' is not a date"),
        ({"partitions": ["2026-13-01"]}, "partitions"),
    ],
)
def test_bad_params_are_clear_errors(params, message):
    with pytest.raises(PlanError, match=message):
        plan(params)


def test_explicit_partitions_and_failed_keyword():
    got = plan({"partitions": ["2026-11-03", "failed", "2026-11-03"]}, failed=["2026-10-01", "2026-11-03"])
    assert got == [d("2026-10-01"), d("2026-11-03")]


def test_partitions_may_be_a_comma_separated_string():
    assert plan({"partitions": "2026-11-01, 2026-11-02"}) == [d("2026-11-01"), d("2026-11-02")]


def test_a_400_day_range_fits_in_the_mapped_task_limit():
    days = plan({"start": "2025-01-01", "end": "2026-02-05"})
    assert len(days) == 400
    groups = group_days(days)
    assert len(groups) == 400 and all(len(g) == 1 for g in groups)


def test_long_ranges_are_packed_into_groups_of_consecutive_days():
    days = day_range(d("2020-01-01"), d("2025-01-01"))
    groups = group_days(days, max_groups=1000)
    assert len(groups) <= 1000
    assert [day for g in groups for day in g] == [x.isoformat() for x in days]
    assert group_label(groups[0]) == f"{groups[0][0]}..{groups[0][-1]}"
    assert group_label(["2026-11-01"]) == "2026-11-01"
