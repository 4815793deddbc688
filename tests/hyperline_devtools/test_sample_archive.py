"""The sample archive generator: layout, determinism, and a manifest that matches the files.

The files are decoded here with the standard library only (not hyperline_sync.sources.archive), so these
tests check the generator independently of the reader it is used to test.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest

from hyperline_devtools.sample_archive import generate_archive, main

DAYS = [date(2026, 2, 1) + timedelta(days=i) for i in range(3)]
REASONS = {
    "malformed_json",
    "missing_customer_id",
    "invalid_customer_id",
    "invalid_timestamp",
    "missing_message_id",
    "missing_event",
    "line_too_long",
}


def decoded_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


@pytest.fixture(scope="module")
def nasty(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("nasty")
    return generate_archive(root, "srcN", DAYS, 600, seed=11, objects_per_day=3)


def test_layout_is_segment_logs_source_day_ms(nasty) -> None:
    for key, day in nasty.object_days.items():
        prefix, source, folder, name = key.split("/")
        assert (prefix, source) == ("segment-logs", "srcN")
        assert int(folder) == int((day - date(1970, 1, 1)).total_seconds()) * 1000
        assert name.endswith(".gz")
        assert (nasty.root / key).is_file()
    assert {day for day in nasty.object_days.values()} == set(DAYS)
    assert sorted(nasty.objects) == sorted(nasty.object_days)


def test_manifest_read_counts_match_the_non_empty_lines_on_disk(nasty) -> None:
    for key, counts in nasty.objects.items():
        lines = decoded_lines(nasty.root / key)
        assert counts.read == sum(1 for line in lines if line.strip(b"\r"))
    for day in DAYS:
        assert nasty.by_day[day].read == 600
    assert nasty.lines_total == 600 * len(DAYS)


def test_every_line_lands_in_exactly_one_bucket(nasty) -> None:
    for counts in [*nasty.objects.values(), *nasty.by_day.values()]:
        assert counts.read == counts.events + counts.duplicates + counts.skipped + counts.rejected_total
    totals = nasty.totals
    assert totals.events == len(nasty.expected_events)
    assert sum(c.read for c in nasty.objects.values()) == totals.read


def test_nasty_archive_has_every_reject_reason_and_duplicates_each_day(nasty) -> None:
    assert set(nasty.totals.rejected) == REASONS
    assert all(nasty.by_day[day].duplicates >= 2 for day in DAYS)
    assert nasty.totals.dropped_properties > 0


def test_expected_events_point_at_their_first_copy(nasty) -> None:
    first_seen: dict[str, tuple[str, int]] = {}
    for key in sorted(nasty.objects, key=lambda k: (nasty.object_days[k], k)):
        for line_no, line in enumerate(decoded_lines(nasty.root / key), start=1):
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("type") == "track" and "messageId" in message:
                first_seen.setdefault(message["messageId"], (key, line_no))
    for message_id, expected in nasty.expected_events.items():
        assert first_seen[message_id] == (expected.key, expected.line_no)
        assert expected.record["id"] == message_id
        assert expected.timestamp.endswith("Z") and len(expected.timestamp) == 24


def test_a_later_copy_with_another_timestamp_exists_and_the_first_is_expected(nasty) -> None:
    copies: dict[str, set[str]] = {}
    for key in nasty.objects:
        for line in decoded_lines(nasty.root / key):
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("messageId") in nasty.expected_events:
                copies.setdefault(message["messageId"], set()).add(message.get("timestamp"))
    changed = {mid for mid, stamps in copies.items() if len(stamps) > 1}
    assert len(changed) == len(DAYS) - 1  # one per day after the first
    for message_id in changed:
        assert nasty.expected_events[message_id].day < max(DAYS)


def test_write_key_is_on_every_json_object_line(nasty) -> None:
    secret = nasty.write_key.encode()
    assert nasty.write_key.startswith("wk_SECRET_")
    objects_seen = 0
    for key in nasty.objects:
        for line in decoded_lines(nasty.root / key):
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                if line.startswith(b"{"):
                    assert secret in line
                continue
            if isinstance(message, dict):
                objects_seen += 1
                assert message["writeKey"] == nasty.write_key
    assert objects_seen > 0


def test_special_encodings_plain_and_multi_member(nasty) -> None:
    first_day = sorted(k for k, d in nasty.object_days.items() if d == DAYS[0])
    assert (nasty.root / first_day[-1]).read_bytes()[:2] != b"\x1f\x8b"  # plain NDJSON named .gz
    multi = (nasty.root / first_day[0]).read_bytes()
    assert multi.count(b"\x1f\x8b\x08") > 1  # several gzip members


def test_decoys_exist_and_are_never_expected(nasty) -> None:
    assert "segment-logs/dummy-object.txt" in nasty.decoy_keys
    assert any(key.startswith("segment-logs/test/segment-logs/") for key in nasty.decoy_keys)
    for key in nasty.decoy_keys:
        assert (nasty.root / key).is_file()
    assert nasty.decoy_message_ids
    assert not nasty.decoy_message_ids & set(nasty.expected_events)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_archive(tmp_path / "a", "src", DAYS[:1], 300, seed=5)
    b = generate_archive(tmp_path / "b", "src", DAYS[:1], 300, seed=5)
    c = generate_archive(tmp_path / "c", "src", DAYS[:1], 300, seed=6)
    assert list(a.objects) == list(b.objects)
    for key in a.objects:
        assert (a.root / key).read_bytes() == (b.root / key).read_bytes()
    assert a.summary()["days"] == b.summary()["days"]
    assert a.expected_events.keys() == b.expected_events.keys()
    assert a.expected_events.keys() != c.expected_events.keys()


def test_clean_archive_is_all_valid_realistic_lines(tmp_path: Path) -> None:
    manifest = generate_archive(tmp_path, "src", DAYS[:2], 2000, seed=1, nasty=False)
    assert manifest.totals.rejected_total == 0
    assert manifest.totals.duplicates == 0
    assert manifest.decoy_keys == []
    sizes, kinds, events = [], Counter(), Counter()
    for key in manifest.objects:
        for line in decoded_lines(tmp_path / key):
            message = orjson.loads(line)
            sizes.append(len(line))
            kinds[message["type"]] += 1
            events[message.get("event")] += 1
    assert len(sizes) == 4000
    assert 550 <= sum(sizes) / len(sizes) <= 800  # ~650-byte lines, like real archives
    assert set(kinds) == {"track", "identify", "page", "screen", "group", "alias"}
    assert {"API Call", "Storage Used", "Seat Added"} <= set(events)
    assert manifest.totals.skipped == sum(n for kind, n in kinds.items() if kind != "track")


def test_keep_expected_false_keeps_counts_only(tmp_path: Path) -> None:
    manifest = generate_archive(tmp_path, "src", DAYS[:1], 300, keep_expected=False)
    assert manifest.expected_events == {}
    assert manifest.totals.events > 0


def test_invalid_sizes_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nasty archives need"):
        generate_archive(tmp_path, "src", DAYS[:1], 50)
    with pytest.raises(ValueError, match="too small"):
        generate_archive(tmp_path, "src", DAYS[:1], 200, objects_per_day=190)
    with pytest.raises(ValueError, match=">= 1"):
        generate_archive(tmp_path, "src", DAYS[:1], 10, nasty=False, objects_per_day=0)


def test_cli_writes_an_archive_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "archive"
    (out / "stale").mkdir(parents=True)
    args = ["--out", str(out), "--source-id", "cliSrc", "--start", "2026-02-01", "--days", "2"]
    assert main([*args, "--events-per-day", "300", "--clean", "--seed", "3"]) == 0

    printed = capsys.readouterr().out
    summary = json.loads((out / "sample-manifest.json").read_text())
    assert not (out / "stale").exists()
    assert f"wrote {2 * 300} lines" in printed
    assert summary["write_key"] in printed
    assert set(summary["days"]) == {"2026-02-01", "2026-02-02"}
    assert sorted(p.parent.name for p in (out / "segment-logs" / "cliSrc").glob("*/*.gz"))
