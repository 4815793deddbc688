"""The run's usage summary and HTML report, written by summarize next to report.json.

Each sync task left its days' usage next to their outcomes (`partitions/<day>.usage.csv`); they are
combined into `usage.csv` (only the days the run planned: a day without a part sent nothing this
run) and drawn, with the run report, into `report.html`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hyperline_sync.insight.html_report import render_run_report
from hyperline_sync.insight.usage import combine, read_usage, usage_part_path, write_usage
from hyperline_sync.state import store
from hyperline_sync.state.report import run_dir
from hyperline_sync.state.store import Location

__all__ = ["write_run_insight"]


def write_run_insight(output_dir: Location, report: Mapping) -> tuple[Location, Location]:
    """Write `usage.csv` and `report.html` of the run `report` describes; returns their paths."""
    pipeline, run_id = report["pipeline"], report["run_id"]
    parts = [usage_part_path(output_dir, pipeline, run_id, p["partition"]) for p in report["partitions"]]
    usage = combine([read_usage(path) for path in parts if store.exists(path)])
    folder = run_dir(output_dir, pipeline, run_id)
    usage_path = write_usage(folder / "usage.csv", usage)
    html_path = folder / "report.html"
    store.write_bytes(html_path, render_run_report(report, usage).encode())
    return usage_path, html_path
