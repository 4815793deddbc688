"""Dead letters: secrets scrubbed from parsed and raw events, one file per object, atomically replaced."""

from __future__ import annotations

from hyperline_sync.state.deadletter import (
    REDACTED,
    ObjectDeadLetters,
    dead_letter_path,
    read_dead_letters,
    scrub,
    scrub_raw,
)


def test_scrub_replaces_secret_keys_at_any_depth():
    event = {"writeKey": "wk_live", "properties": {"api_key": "k", "ok": 1, "list": [{"password": "p"}]}}
    assert scrub(event) == {
        "writeKey": REDACTED,
        "properties": {"api_key": REDACTED, "ok": 1, "list": [{"password": REDACTED}]},
    }
    assert event["writeKey"] == "wk_live"  # the caller's object is untouched


def test_scrub_raw_handles_broken_json_and_truncates():
    raw = b'{"type":"track","writeKey":"wk_SECRET_1","event":"x' + b"y" * 5000
    cleaned = scrub_raw(raw)
    assert "wk_SECRET_1" not in cleaned
    assert REDACTED in cleaned
    assert len(cleaned) <= 2048


def test_scrub_raw_survives_invalid_utf8():
    assert "wk_S" not in scrub_raw(b'{"writeKey": "wk_S", "x": "\xff\xfe"}')


def test_object_file_is_written_replaced_and_removed(tmp_path):
    path = dead_letter_path(tmp_path, "demo", "2026-11-01", "segment-logs/src/1761955200000/a.gz")
    letters = ObjectDeadLetters(path, "2026-11-01", "segment-logs/src/1761955200000/a.gz", "run-1")
    letters.add("malformed_json", 3, raw=b'{"writeKey":"wk_S"')
    letters.add("missing_customer_id", 4, event={"messageId": "m4", "writeKey": "wk_S"})
    assert letters.close() == path
    rows = read_dead_letters(path)
    assert [r["reason"] for r in rows] == ["malformed_json", "missing_customer_id"]
    assert rows[1]["event"]["writeKey"] == REDACTED
    assert all(r["partition"] == "2026-11-01" and r["run_id"] == "run-1" for r in rows)
    assert b"wk_S" not in path.read_bytes() and "wk_S" not in str(rows)

    # Reprocessing the object with no rejects removes the stale file.
    assert ObjectDeadLetters(path, "2026-11-01", "k", "run-2").close() is None
    assert not path.exists()


def test_saved_rows_survive_a_resumed_rerun_and_unsaved_ones_do_not(tmp_path):
    path = tmp_path / "dl" / "2026-11-01" / "a.gz.jsonl.gz"
    first = ObjectDeadLetters(path, "2026-11-01", "k", "run-1")
    first.add("malformed_json", 1, raw=b"{")
    size = first.save()  # checkpointed with the chunk
    first.add("malformed_json", 2, raw=b"{{")
    first.save()  # written, but the checkpoint after it never was (the worker died)
    rerun = ObjectDeadLetters(path, "2026-11-01", "k", "run-2")
    rerun.resume(size)
    rerun.add("missing_event", 7, event={"type": "track"})
    assert rerun.close() == path
    assert [(r["line_no"], r["run_id"]) for r in read_dead_letters(path)] == [(1, "run-1"), (7, "run-2")]
    assert not rerun.partial.exists()
