"""`hyperline-sync preview`: the DAG's code path, writing events instead of sending them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hyperline_devtools.sample_archive import generate_archive
from hyperline_sync.orchestration.cli import main

DAYS = [dt.date(2026, 5, 1), dt.date(2026, 5, 2)]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return generate_archive(tmp_path_factory.mktemp("archive"), "cliSrc01", DAYS, 600, seed=3, objects_per_day=2)


@pytest.fixture
def config_file(archive, tmp_path) -> Path:
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump({
        "state": {"dir": str(tmp_path / "real-state")},
        "pipelines": [{"name": "cli", "source": {"kind": "s3_archive", "url": f"file://{archive.root}",
                                                  "source_id": archive.source_id}}],
    }))
    return path


def test_preview_writes_exactly_the_deliverable_events(archive, config_file, tmp_path, capsys):
    out = tmp_path / "events.jsonl"
    code = main(["preview", "--config", str(config_file), "--pipeline", "cli", "--start", "2026-05-01",
                 "--end", "2026-05-03", "--output", str(out)])
    assert code == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["record"]["id"] for e in events} == set(archive.expected_events)
    assert len(events) == len(archive.expected_events)  # cross-day duplicates dropped, first copy kept
    for event in events:
        expected = archive.expected_events[event["record"]["id"]]
        assert (event["customer_id"], event["event_type"], event["timestamp"]) == (
            expected.customer_id, expected.event_type, expected.timestamp)
    table = capsys.readouterr().err
    assert "2026-05-01" in table and "TOTAL" in table
    assert not (tmp_path / "real-state").exists()  # a preview never touches real progress


def test_config_errors_exit_2_with_the_reason(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipelines: [{name: x, source: {kind: s3_archive, url: 'ftp://x', source_id: s}}]")
    assert main(["preview", "--config", str(bad), "--pipeline", "x", "--start", "2026-05-01",
                 "--end", "2026-05-02"]) == 2
    assert "pipelines[0].source.url" in capsys.readouterr().err


def test_unknown_pipeline_and_bad_range(config_file, capsys):
    assert main(["preview", "--config", str(config_file), "--pipeline", "nope", "--start", "2026-05-01",
                 "--end", "2026-05-02"]) == 2
    assert "no pipeline named 'nope'" in capsys.readouterr().err
    assert main(["preview", "--config", str(config_file), "--pipeline", "cli", "--start", "2026-05-02",
                 "--end", "2026-05-01"]) == 2


def test_the_console_script_is_installed(config_file, tmp_path):
    script = Path(sys.executable).parent / "hyperline-sync"
    done = subprocess.run([str(script), "preview", "--config", str(config_file), "--pipeline", "cli",
                           "--start", "2026-05-01", "--end", "2026-05-02"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") > 0 and all(json.loads(line) for line in done.stdout.splitlines())


@pytest.mark.parametrize("command", [["preview", "--start", "2026-05-01", "--end", "2026-05-02"],
                                     ["prune", "--before", "2026-05-01"]])
def test_every_command_without_a_config_exits_2_saying_so(command, monkeypatch, capsys):
    monkeypatch.delenv("HYPERLINE_SYNC_CONFIG", raising=False)
    assert main([*command, "--pipeline", "x"]) == 2
    assert "no config file: pass --config FILE or set HYPERLINE_SYNC_CONFIG" in capsys.readouterr().err
