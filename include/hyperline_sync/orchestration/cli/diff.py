"""`hyperline-sync diff`: what a mapping change changes, per customer and event type, before it ships.

Both mappings run over the same source data through the DAG's code path against throwaway state
(`trial.trial_run`), sending nothing. The source, tuning and dedup come from `--config`'s pipeline;
from `--against` only the same-named pipeline's `mapping` is taken. The fields summed are those of
both files' `report.sum_properties`. Exit 0 with the table on stdout (the rows that change, then the
totals); 2 with the reason for a config error, an unreadable source or a range over MAX_DAYS days;
1 when a day failed otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hyperline_sync.config import PipelineConfig, load_config
from hyperline_sync.config.models import ReportConfig
from hyperline_sync.insight.mapping_diff import compare_usage, render_diff_html, render_diff_text
from hyperline_sync.orchestration.cli.trial import MAX_DAYS, DiscardSender, SourceUnreadableError, day_span, trial_run


@dataclass
class MappingDiff:
    table: pd.DataFrame  # `insight.mapping_diff.compare_usage`
    failed: list[str]  # days that failed (not for an unreadable source: that raises)


def _summing_both(a: PipelineConfig, b: PipelineConfig) -> ReportConfig:
    types = {*a.report.sum_properties, *b.report.sum_properties}
    return ReportConfig(sum_properties={
        t: tuple(dict.fromkeys((*a.report.sum_properties.get(t, ()), *b.report.sum_properties.get(t, ()))))
        for t in sorted(types)
    })


def mapping_diff(config_path: str | None, against_path: str, pipeline_name: str, start: str, end: str) -> MappingDiff:
    current = load_config(config_path).pipeline(pipeline_name)
    candidate = load_config(against_path).pipeline(pipeline_name)
    days = day_span(start, end)
    if candidate.source != current.source:
        print(f"hyperline-sync: the pipelines' sources differ; both mappings read --config's ({current.source.kind})",
              file=sys.stderr)
    a = current.model_copy(update={"report": _summing_both(current, candidate)})
    b = a.model_copy(update={"mapping": candidate.mapping})
    runs = [trial_run(pipeline, days, DiscardSender()) for pipeline in (a, b)]
    for trial in runs:
        unreadable = trial.unreadable()
        if unreadable:
            raise SourceUnreadableError(unreadable)
    failed = sorted({day for trial in runs for day in trial.failed})
    return MappingDiff(compare_usage(runs[0].usage.frame(), runs[1].usage.frame()), failed)


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("diff", help="compare, per customer and event type, what two mappings send for the "
                                         "same days")
    p.add_argument("--config", help="pipelines YAML with the current mapping (default: $HYPERLINE_SYNC_CONFIG)")
    p.add_argument("--against", required=True, help="pipelines YAML with the candidate mapping")
    p.add_argument("--pipeline", required=True, help="the pipeline (same name in both files)")
    p.add_argument("--start", required=True, help="first received day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help=f"day after the last one (exclusive), YYYY-MM-DD; at most {MAX_DAYS} "
                                                "days after --start")
    p.add_argument("--html", type=Path, help="also write the comparison as a self-contained HTML page")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    diff = mapping_diff(args.config, args.against, args.pipeline, args.start, args.end)
    sys.stdout.write(render_diff_text(diff.table))
    if args.html:
        title = f"{args.pipeline}: mapping diff, {args.start} to {args.end} (exclusive)"
        args.html.write_text(render_diff_html(diff.table, title), encoding="utf-8")
    if diff.failed:
        print(f"hyperline-sync: partitions failed: {', '.join(diff.failed)}", file=sys.stderr)
    return 1 if diff.failed else 0
