"""`hyperline-sync diff`: two mappings over the same (known) source data, compared per customer and
event type; its refusals (exit 2): a config error, an unreadable source, a range over MAX_DAYS days."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import orjson
import pytest
import yaml

from hyperline_sync.orchestration.cli import main
from hyperline_sync.orchestration.cli.trial import MAX_DAYS
from hyperline_sync.sources.archive.listing import day_folder
from tests.hyperline_sync.insight.test_html_report import network_references

DAYS = [dt.date(2026, 6, 1), dt.date(2026, 6, 2)]
RANGE = ["--start", "2026-06-01", "--end", "2026-06-03"]
ODD = '<img src=x onerror="alert(1)">'  # a customer id is user data
# (user, event, ms) per day; every message but c2's names its account (the same id) in properties.account
TRAFFIC = {
    DAYS[0]: [("c1", "API Call", 100), ("c1", "API Call", 50), ("c2", "API Call", 7), ("c2", "Login", None),
              (ODD, "API Call", 1)],
    DAYS[1]: [("c1", "API Call", 25), ("c2", "Login", None), (ODD, "Login", None)],
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    for day, rows in TRAFFIC.items():
        folder = root / "segment-logs" / "diffSrc01" / day_folder(day)
        folder.mkdir(parents=True)
        lines = []
        for n, (user, event, ms) in enumerate(rows):
            properties = {"ms": ms} if ms is not None else {}
            if user != "c2":
                properties["account"] = user
            lines.append(orjson.dumps({"type": "track", "event": event, "messageId": f"{day}-{n}", "userId": user,
                                       "timestamp": f"{day}T10:00:00.000Z", "properties": properties}))
        (folder / "part-0.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return root


def config(tmp_path: Path, name: str, archive: Path, **pipeline) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path / "real-state")}, "pipelines": [{
        "name": "billing", "source": {"kind": "s3_archive", "url": f"file://{archive}", "source_id": "diffSrc01"},
        **pipeline}]}))
    return str(path)


def table(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    return [line.split() for line in lines[2:-1]]  # after the header and its rule, before the totals


def test_a_renamed_event_type_moves_the_events_and_sums(archive, tmp_path, capsys):
    current = config(tmp_path, "a", archive, report={"sum_properties": {"API Call": ["ms"]}})
    candidate = config(tmp_path, "b", archive, mapping={"event_types": {"API Call": "api_call"}},
                       report={"sum_properties": {"api_call": ["ms"]}})
    html = tmp_path / "diff.html"
    assert main(["diff", "--config", current, "--against", candidate, "--pipeline", "billing", *RANGE,
                 "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["customer_id", "event_type", "events_a", "events_b", "events_delta",
                                           "sum_ms_a", "sum_ms_b", "sum_ms_delta"]
    assert table(out) == [  # "<" sorts before "c"; Login is the same under both mappings
        [*ODD.split(), "API", "Call", "1", "0", "-1", "1", "-1"],
        [*ODD.split(), "api_call", "0", "1", "1", "1", "1"],
        ["c1", "API", "Call", "3", "0", "-3", "175", "-175"],
        ["c1", "api_call", "0", "3", "3", "175", "175"],
        ["c2", "API", "Call", "1", "0", "-1", "7", "-7"],
        ["c2", "api_call", "0", "1", "1", "7", "7"],
    ]
    assert out.splitlines()[-1] == "events: 8 with --config, 8 with --against (+0)"
    page = html.read_text()
    assert network_references(page) == [] and ODD not in page
    assert not (tmp_path / "real-state").exists()  # a diff touches no state


def test_a_customer_filtered_out_loses_exactly_its_events(archive, tmp_path, capsys):
    current = config(tmp_path, "a", archive)
    candidate = config(tmp_path, "b", archive, mapping={"customer_id": "properties.account"})
    html = tmp_path / "diff.html"
    assert main(["diff", "--config", current, "--against", candidate, "--pipeline", "billing", *RANGE,
                 "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert table(out) == [["c2", "API", "Call", "1", "0", "-1"], ["c2", "Login", "2", "0", "-2"]]
    assert out.splitlines()[-1] == "events: 8 with --config, 5 with --against (-3)"
    page = html.read_text()
    assert page.count("<svg") == 1 and "c2: -3" in page


def test_the_same_mapping_changes_nothing(archive, tmp_path, capsys):
    current = config(tmp_path, "a", archive)
    assert main(["diff", "--config", current, "--against", current, "--pipeline", "billing", *RANGE]) == 0
    assert capsys.readouterr().out.startswith("no change")


def test_refusals_exit_2_with_the_reason(archive, tmp_path, capsys):
    current = config(tmp_path, "a", archive)
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"pipelines": [{"name": "billing", "source": {"kind": "s3_archive",
                                                                            "url": "ftp://x", "source_id": "s"}}]}))
    base = ["diff", "--config", current, "--pipeline", "billing"]
    assert main([*base, "--against", str(bad), *RANGE]) == 2
    assert "pipelines[0].source.url" in capsys.readouterr().err

    assert main([*base, "--against", str(tmp_path / "missing.yaml"), *RANGE]) == 2
    assert "cannot read config file" in capsys.readouterr().err

    other = config(tmp_path, "other", archive)
    Path(other).write_text(Path(other).read_text().replace("name: billing", "name: other"))
    assert main([*base, "--against", other, *RANGE]) == 2
    assert "no pipeline named 'billing'" in capsys.readouterr().err

    end = (DAYS[0] + dt.timedelta(days=MAX_DAYS + 1)).isoformat()
    assert main([*base, "--against", current, "--start", "2026-06-01", "--end", end]) == 2
    assert f"at most {MAX_DAYS} at a time" in capsys.readouterr().err

    gone = config(tmp_path, "gone", tmp_path / "nowhere")
    assert main(["diff", "--config", gone, "--against", current, "--pipeline", "billing", *RANGE]) == 2
    assert "cannot read the source of pipeline billing" in capsys.readouterr().err
