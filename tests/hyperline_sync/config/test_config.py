"""Config loading: lookup order, env expansion, defaults, and errors that name the bad key."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from hyperline_sync.config import (
    CONFIG_ENV,
    ConfigError,
    MappingConfig,
    PropertyRule,
    S3ArchiveSourceConfig,
    TuningConfig,
    load_config,
    parse_config,
)
from hyperline_sync.config.models import DEFAULT_START_DATE

FULL = """
state:
  ledger_conn_id: state_db
  dir: /var/lib/hyperline
  output_dir: /var/lib/hyperline/out
pipelines:
  - name: acme
    source:
      kind: s3_archive
      url: s3://acme-segment/logs/
      source_id: aBcD1234Ef
      aws_conn_id: aws_acme
    hyperline_conn_id: hyperline_prod
    start_date: 2026-01-01
    schedule: "15 * * * *"
    mapping:
      events: {include: ["API Call"]}
      event_types: {"API Call": api_call}
    tuning: {chunk_size: 1000, batch_size: 500, dedup_window_days: 3, lookback_days: 2,
             claim_ttl_minutes: 30, max_requests_per_second: 2.5}
  - name: local_copy
    source: {kind: s3_archive, url: "file:///data/segment", source_id: other01}
"""


def write(tmp_path: Path, text: str, name: str = "pipelines.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def minimal(**pipeline: object) -> dict:
    entry = {"name": "p", "source": {"kind": "s3_archive", "url": "file:///data", "source_id": "src1"}}
    entry.update(pipeline)
    return {"pipelines": [entry]}


def error_of(raw: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return str(caught.value)


def test_full_config_parses_into_frozen_models(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))

    assert config.state.ledger_conn_id == "state_db"
    assert config.state.dir == Path("/var/lib/hyperline")
    assert config.state.output_dir == Path("/var/lib/hyperline/out")
    acme = config.pipeline("acme")
    assert acme.dag_id == "segment_to_hyperline__acme"
    assert acme.source == S3ArchiveSourceConfig(
        url="s3://acme-segment/logs", source_id="aBcD1234Ef", aws_conn_id="aws_acme"
    )
    assert (acme.source.scheme, acme.source.bucket, acme.source.prefix) == ("s3", "acme-segment", "logs")
    assert acme.hyperline_conn_id == "hyperline_prod"
    assert acme.start_date == date(2026, 1, 1)
    assert acme.schedule == "15 * * * *"
    assert acme.mapping.include_events == frozenset({"API Call"})
    assert acme.mapping.event_types == {"API Call": "api_call"}
    assert acme.tuning == TuningConfig(chunk_size=1000, batch_size=500, dedup_window_days=3, lookback_days=2,
                                       claim_ttl_minutes=30, max_requests_per_second=2.5)
    with pytest.raises(ValidationError, match="frozen"):
        acme.name = "other"  # type: ignore[misc]


def test_defaults_of_a_minimal_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    config = parse_config(minimal())
    pipeline = config.pipelines[0]

    assert pipeline.source.scheme == "file"
    assert pipeline.source.local_root == Path("/data")
    assert pipeline.source.aws_conn_id is None
    assert pipeline.hyperline_conn_id == "hyperline_default"
    assert pipeline.schedule == "0 * * * *"
    assert pipeline.start_date == DEFAULT_START_DATE
    assert pipeline.mapping == MappingConfig()
    assert pipeline.tuning == TuningConfig()
    assert config.state.dir == tmp_path / "airflow" / "hyperline_sync"
    assert config.state.output_dir == config.state.dir / "reports"
    assert config.state.ledger_conn_id is None


def test_state_dir_without_airflow_home_is_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    assert parse_config(minimal()).state.dir == Path("~/airflow/hyperline_sync").expanduser()


def test_s3_source_defaults_to_aws_default_connection() -> None:
    raw = minimal(source={"kind": "s3_archive", "url": "s3://bucket-name", "source_id": "x1"})
    source = parse_config(raw).pipelines[0].source
    assert (source.aws_conn_id, source.bucket, source.prefix) == ("aws_default", "bucket-name", "")


def test_relative_state_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "state: {dir: state, output_dir: ../out}\n" + yaml.safe_dump(minimal()))
    config = load_config(path)
    assert config.state.dir == tmp_path / "state"
    assert config.state.output_dir == tmp_path / ".." / "out"


def test_lookup_order_argument_then_env_and_no_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = write(tmp_path, yaml.safe_dump(minimal(name="from_env")), "env.yaml")
    from_arg = write(tmp_path, yaml.safe_dump(minimal(name="from_arg")), "arg.yaml")
    monkeypatch.setenv(CONFIG_ENV, str(from_env))

    assert load_config(from_arg).pipelines[0].name == "from_arg"
    assert load_config().pipelines[0].name == "from_env"
    monkeypatch.delenv(CONFIG_ENV)
    with pytest.raises(ConfigError, match=f"no config file: pass --config FILE or set {CONFIG_ENV}"):
        load_config()


def test_the_demo_config_reads_the_demo_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hyperline_devtools.demo import DEMO_CONFIG

    monkeypatch.delenv("HYPERLINE_SYNC_HOME", raising=False)
    demo = load_config(DEMO_CONFIG).pipeline("demo")
    assert demo.source.url == "file:///tmp/hyperline-sync/archive"
    assert (demo.source.kind, demo.source.source_id, demo.hyperline_conn_id) == (
        "s3_archive",
        "demoSrc01",
        "hyperline_default",
    )
    monkeypatch.setenv("HYPERLINE_SYNC_HOME", str(tmp_path))
    assert load_config(DEMO_CONFIG).pipeline("demo").source.local_root == tmp_path / "archive"


def test_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET", "acme-logs")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("UNSET", raising=False)
    raw = minimal(
        source={"kind": "s3_archive", "url": "s3://${BUCKET}/${UNSET:-segment}", "source_id": "${EMPTY:-dflt}"}
    )
    source = parse_config(raw).pipelines[0].source
    assert (source.bucket, source.prefix, source.source_id) == ("acme-logs", "segment", "dflt")


def test_unset_variable_without_default_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    message = error_of(minimal(hyperline_conn_id="${NOPE}"))
    assert message.startswith("pipelines[0].hyperline_conn_id: environment variable NOPE is not set")


def test_malformed_reference_is_an_error() -> None:
    assert error_of(minimal(hyperline_conn_id="${not closed")).startswith("pipelines[0].hyperline_conn_id: malformed")


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {"source": {"kind": "s3_archive", "url": "http://x", "source_id": "a"}},
            "pipelines[0].source.url: must start with s3:// or file://",
        ),
        (
            {"source": {"kind": "s3_archive", "url": "file://relative/dir", "source_id": "a"}},
            "pipelines[0].source.url: a file:// url needs an absolute path",
        ),
        (
            {"source": {"kind": "s3_archive", "url": "s3://Bad_Bucket", "source_id": "a"}},
            "pipelines[0].source.url: invalid S3 bucket name",
        ),
        (
            {"source": {"kind": "s3_archive", "url": "s3://bucket", "source_id": "a/b"}},
            "pipelines[0].source.source_id: must match",
        ),
        ({"source": {"kind": "bigquery"}}, "pipelines[0].source.kind: must be one of: s3_archive, warehouse"),
        ({"source": {"kind": "s3_archive", "source_id": "a"}}, "pipelines[0].source.url: is required"),
        ({"source": "s3://bucket"}, "pipelines[0].source: must be a mapping"),
        ({"name": "Acme-1"}, "pipelines[0].name: must match"),
        ({"schedule": "every hour"}, "pipelines[0].schedule: must be a 5-field cron"),
        ({"schedule": "0 0 * * * *"}, "pipelines[0].schedule: must be a 5-field cron"),
        ({"start_date": "yesterday"}, "pipelines[0].start_date: must be a date"),
        ({"hyperline_conn_id": ""}, "pipelines[0].hyperline_conn_id: must not be empty"),
        ({"tuning": {"batch_size": 0}}, "pipelines[0].tuning.batch_size: must be >= 1"),
        ({"tuning": {"batch_size": 5001}}, "pipelines[0].tuning.batch_size: must be <= 5000"),
        ({"tuning": {"batch_size": "100"}}, "pipelines[0].tuning.batch_size: must be an integer"),
        ({"tuning": {"batch_size": True}}, "pipelines[0].tuning.batch_size: must be an integer"),
        ({"tuning": {"chunk_size": 0}}, "pipelines[0].tuning.chunk_size: must be >= 1"),
        ({"tuning": {"dedup_window_days": -1}}, "pipelines[0].tuning.dedup_window_days: must be >= 0"),
        ({"tuning": {"lookback_days": -2}}, "pipelines[0].tuning.lookback_days: must be >= 0"),
        ({"tuning": {"claim_ttl_minutes": 0}}, "pipelines[0].tuning.claim_ttl_minutes: must be >= 1"),
        ({"tuning": {"max_requests_per_second": 0}}, "pipelines[0].tuning.max_requests_per_second: must be"),
        ({"tuning": {"max_requests_per_second": "fast"}}, "pipelines[0].tuning.max_requests_per_second: must be"),
        ({"mapping": {"event_types": {"API Call": ""}}}, 'pipelines[0].mapping.event_types["API Call"]: must not'),
    ],
)
def test_invalid_values_are_reported_with_their_key_path(patch: dict, expected: str) -> None:
    assert error_of(minimal(**patch)).startswith(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"pipelines": [], "stat": {}}, "stat: unknown key; did you mean 'state'?"),
        ({"state": {"dirr": "/x"}, **minimal()}, "state.dirr: unknown key; did you mean 'dir'?"),
        (minimal(schedul="@daily"), "pipelines[0].schedul: unknown key; did you mean 'schedule'?"),
        (
            minimal(source={"kind": "s3_archive", "url": "s3://bucket", "source_id": "a", "aws_conn": "x"}),
            "pipelines[0].source.aws_conn: unknown key; did you mean 'aws_conn_id'?",
        ),
        (minimal(tuning={"batch": 10}), "pipelines[0].tuning.batch: unknown key"),
        (minimal(mapping={"event": {}}), "pipelines[0].mapping.event: unknown key; did you mean 'events'?"),
    ],
)
def test_unknown_keys_are_errors(raw: dict, expected: str) -> None:
    assert error_of(raw).startswith(expected)


def test_pipeline_list_must_be_non_empty_and_names_unique() -> None:
    assert error_of({"pipelines": []}).startswith("pipelines: must be a non-empty list")
    assert error_of({}).startswith("pipelines: is required")
    twice = {"pipelines": minimal()["pipelines"] * 2}
    assert error_of(twice).startswith("pipelines[1].name: duplicate pipeline name 'p'")


def test_schedule_null_means_manual_only_and_presets_pass() -> None:
    assert parse_config(minimal(schedule=None)).pipelines[0].schedule is None
    assert parse_config(minimal(schedule="@daily")).pipelines[0].schedule == "@daily"


def test_start_date_accepts_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("START", "2026-03-04")
    assert parse_config(minimal(start_date="${START}")).pipelines[0].start_date == date(2026, 3, 4)


def test_unknown_pipeline_name_is_a_config_error() -> None:
    config = parse_config(minimal())
    with pytest.raises(ConfigError, match="no pipeline named 'nope' \\(known: p\\)"):
        config.pipeline("nope")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file") as missing:
        load_config(tmp_path / "absent.yaml")
    assert str(tmp_path / "absent.yaml") in str(missing.value)

    broken = write(tmp_path, "pipelines: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(broken)

    bad_key = write(tmp_path, yaml.safe_dump(minimal(tuning={"chunk_size": 0})), "bad.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(bad_key)
    assert str(caught.value).startswith("pipelines[0].tuning.chunk_size: must be >= 1")
    assert caught.value.source == str(bad_key)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, ""))


def test_mapping_section_is_validated_through_the_pipeline() -> None:
    pipeline = parse_config(minimal(mapping={"properties": {"*": {"exclude": ["debug"]}}})).pipelines[0]
    assert pipeline.mapping.properties == {"*": PropertyRule(exclude=frozenset({"debug"}))}
