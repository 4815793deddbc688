"""`hyperline-sync validate`: exit 0 on a valid file, else 2 and every problem, for CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from hyperline_sync.orchestration.cli import main


def pipeline(name: str, **keys: object) -> dict:
    return {"name": name, "source": {"kind": "s3_archive", "url": "file:///data", "source_id": "src1"}, **keys}


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_valid_file_exits_0_and_names_its_pipelines(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, {"pipelines": [pipeline("a"), pipeline("b")]})
    assert main(["validate", "--config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid, pipelines: a, b\n"


def test_an_invalid_file_exits_2_listing_every_problem(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LEAKY", "hunter2-Secret")
    path = write(tmp_path, {"state": {"output_dirr": "x"}, "pipelines": [
        pipeline("a", tuning={"batch_size": 9000}), pipeline("b"), pipeline("c", schedule="${LEAKY}")]})
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"hyperline-sync: state.output_dirr: unknown key; did you mean 'output_dir'? (in {path})",
        "  pipelines[0].tuning.batch_size: must be <= 5000, got 9000",
        "  pipelines[2].schedule: must be a 5-field cron expression or an @preset such as @hourly, "
        "got <value of ${LEAKY}>",
    ]


def test_run_as_a_module(tmp_path: Path) -> None:
    path = write(tmp_path, {"pipelines": [pipeline("a", start_date="2026-13-01")]})
    done = subprocess.run([sys.executable, "-m", "hyperline_sync.orchestration.cli", "validate", "--config", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "pipelines[0].start_date: must be a date YYYY-MM-DD, got '2026-13-01'" in done.stderr
