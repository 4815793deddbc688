"""The hook's listing and deletion of stored events, against the emulator over real HTTP."""

# ruff: noqa: F811 (the fixtures are the hook tests', imported by name)

from __future__ import annotations

import pytest

from hyperline_devtools.emulator import Faults
from hyperline_provider.exceptions import HyperlineAuthError, HyperlineUnavailableError
from tests.hyperline_provider.hooks.test_hyperline import connect, emulator, make_hook  # noqa: F401 (fixtures)


def event(record_id: str, event_type: str = "api_call") -> dict:
    return {"customer_id": "cus_1", "event_type": event_type, "timestamp": "2026-11-20T10:00:00Z",
            "record": {"id": record_id}}


def test_list_events_by_record_ids_and_delete_them(make_hook, emulator) -> None:
    hook = make_hook()
    hook.send_events([event(f"r{i}") for i in range(5)] + [event("r0", "storage")])

    page = hook.list_events("api_call", record_ids=["r1", "r3", "nope"])
    deleted = hook.delete_events(["r0", "r1"])

    assert page.total == 2 and sorted(e["record_id"] for e in page.events) == ["r1", "r3"]
    assert page.unfiltered("api_call", ["r1", "r3", "nope"]) == []
    assert deleted == 3  # r0 under both event types, and r1
    assert sorted(emulator.events) == ["r2", "r3", "r4"]


def test_a_page_that_ignored_a_filter_is_told_apart(make_hook) -> None:
    hook = make_hook()
    hook.send_events([event(f"r{i}") for i in range(3)])

    page = hook.list_events("api_call", take=100)  # as if record_id__in had been dropped on the way

    assert {e["record_id"] for e in page.unfiltered("api_call", ["r1"])} == {"r0", "r2"}


def test_listing_and_deleting_are_retried_on_429_and_5xx(make_hook, emulator) -> None:
    hook = make_hook()
    hook.send_events([event("a")])
    emulator.set_faults(Faults(read_script=("503", "429", "drop", "500")))

    page = hook.list_events("api_call", record_ids=["a"])
    deleted = hook.delete_events(["a"])

    assert page.total == 1 and deleted == 1
    assert emulator.statuses[503] == emulator.statuses[429] == emulator.statuses[500] == 1


def test_listing_gives_up_as_unavailable_and_a_bad_key_is_an_auth_error(make_hook, connect, emulator) -> None:
    emulator.set_faults(Faults(always_status=503))
    with pytest.raises(HyperlineUnavailableError, match="gave up on GET"):
        make_hook(max_attempts=3).list_events("api_call")
    emulator.set_faults(Faults())
    with pytest.raises(HyperlineAuthError):
        make_hook(connect("hyperline_bad", password="wrong")).list_events("api_call")
