"""Reading the file: refused YAML features, impossible dates, secrets kept out of errors, every
problem listed, and a file read pipeline by pipeline."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from hyperline_sync.config import ConfigError, load_config, parse_config, read_pipelines

SECRET = "sk_live_9F8e7d/6c5b+4a3210"  # fails every check it is put through below


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipelines.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def entry(name: str = "p", **keys: object) -> dict:
    return {"name": name, "source": {"kind": "s3_archive", "url": "file:///data", "source_id": "src1"}, **keys}


def error_of(raw: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            base: &src {kind: s3_archive, url: "file:///data", source_id: src1}
            pipelines: [{name: a, source: *src}]
            """,
            "line 2: YAML anchors (&src) are not supported",
        ),
        (
            """
            pipelines:
              - name: a
                source: {kind: s3_archive, url: "file:///data", source_id: src1}
                tuning: {<<: *defaults}
            """,
            "line 5: YAML aliases (*defaults) are not supported",
        ),
    ],
)
def test_anchors_and_aliases_are_refused_with_their_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="invalid YAML") as caught:
        load_config(path)
    assert expected in str(caught.value)
    assert caught.value.source == str(path)


def test_billion_laughs_is_refused_before_anything_expands(tmp_path: Path) -> None:
    # Nine levels of ten aliases each: a billion strings if the aliases were followed.
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(lines) + "\npipelines: [*a9]\n")
    with pytest.raises(ConfigError, match=r"line 1: YAML anchors \(&a0\) are not supported"):
        load_config(path)


def test_an_impossible_date_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "pipelines:\n- {name: p, start_date: 2026-13-01, source: {kind: s3_archive, "
                           "url: 'file:///data', source_id: src1}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(
        f"pipelines[0].start_date: must be a date YYYY-MM-DD, got '2026-13-01' (in {path})")


def test_a_date_the_yaml_reads_as_a_date_still_parses(tmp_path: Path) -> None:
    path = write(tmp_path, "pipelines:\n- {name: p, start_date: 2026-02-28, source: {kind: s3_archive, "
                           "url: 'file:///data', source_id: src1}}\n")
    assert str(load_config(path).pipelines[0].start_date) == "2026-02-28"


@pytest.mark.parametrize(
    ("keys", "key_path"),
    [
        ({"source": {"kind": "s3_archive", "url": "s3://${HIDDEN}", "source_id": "s"}},
         "pipelines[0].source.url: invalid S3 bucket name <value of ${HIDDEN}>"),
        ({"schedule": "${HIDDEN}"}, "pipelines[0].schedule: must be a 5-field cron"),
        ({"start_date": "${HIDDEN:-2026-01-01}"}, "pipelines[0].start_date: must be a date"),
        ({"source": {"kind": "warehouse", "conn_id": "w", "schema": "${HIDDEN}"}},
         "pipelines[0].source.schema: must be a Segment source schema"),
        ({"source": {"kind": "warehouse", "conn_id": "w", "schema": "s", "events": ["a", "${HIDDEN}"]}},
         "pipelines[0].source.events[1]: must be an event table"),
        ({"source": {"kind": "${HIDDEN}"}}, "pipelines[0].source.kind: must be one of"),
        ({"tuning": {"empty_partition": "${HIDDEN}"}}, "pipelines[0].tuning.empty_partition: must be one of"),
        ({"mapping": {"allow_properties": ["${HIDDEN}"]}}, "pipelines[0].mapping.allow_properties[0]: "),
        ({"name": "${HIDDEN}"}, "pipelines[0].name: must match"),
        ({"hyperline_conn_id": "${HIDDEN}"}, "pipelines[0].hyperline_conn_id: must match"),
    ],
)
def test_an_expanded_value_is_never_printed_the_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, keys: dict, key_path: str
) -> None:
    monkeypatch.setenv("HIDDEN", SECRET)
    message = str(error_of({"pipelines": [entry(**keys)]}))
    assert message.startswith(key_path)
    assert SECRET not in message
    if "must match" not in key_path:  # pattern messages quote no value at all
        assert "<value of ${HIDDEN}>" in message


def test_the_same_value_written_in_the_file_is_quoted() -> None:
    # What the test above hides: a literal value is quoted, so the hiding is not an accident.
    message = str(error_of({"pipelines": [entry(schedule=SECRET)]}))
    assert f"got {SECRET!r}" in message


def test_every_problem_is_listed_first_one_first(tmp_path: Path) -> None:
    raw = {"state": {"dirr": "x"}, "pipelines": [entry("a", tuning={"batch_size": 0}), entry("b"),
                                                  entry("c", schedule="often", mapping={"evnts": {}})]}
    error = error_of(raw)
    assert [str(issue) for issue in error.issues] == [
        "state.dirr: unknown key; did you mean 'dir'?",
        "pipelines[0].tuning.batch_size: must be >= 1, got 0",
        "pipelines[2].schedule: must be a 5-field cron expression or an @preset such as @hourly, got 'often'",
        "pipelines[2].mapping.evnts: unknown key; did you mean 'events'?",
    ]
    assert str(error).splitlines()[1:] == [f"  {issue}" for issue in error.issues[1:]]


def test_read_pipelines_keeps_the_valid_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    raw = {"pipelines": [entry("good"), entry("bad", hyperline_conn_id="${NOPE}"), entry("Bad Name"),
                         entry("good", schedule="@daily")]}
    path = write(tmp_path, yaml.safe_dump(raw))
    loaded = read_pipelines(path)

    assert [p.name for p in loaded.pipelines] == ["good"]
    broken = {name: str(error) for name, error in loaded.broken}
    assert broken.keys() == {"bad", None, "good"}
    assert broken["bad"] == (f"pipelines[1].hyperline_conn_id: environment variable NOPE is not set "
                             f"(use ${{NOPE:-default}}) (in {path})")
    assert broken[None].startswith("pipelines[2].name: must match")
    assert broken["good"].startswith("pipelines[3].name: duplicate pipeline name 'good'")
    config, good = loaded.pipeline("good")
    assert good.schedule == "0 * * * *" and config.pipelines == (good,)
    with pytest.raises(ConfigError, match=r"pipelines\[1\].hyperline_conn_id: environment variable NOPE"):
        loaded.pipeline("bad")
    with pytest.raises(ConfigError, match="environment variable NOPE") as everything:
        load_config(path)
    assert len(everything.value.issues) == 3


def test_a_shared_section_error_breaks_every_pipeline(tmp_path: Path) -> None:
    loaded = read_pipelines(write(tmp_path, yaml.safe_dump({"state": {"dir": 3}, "pipelines": [entry("a")]})))
    assert loaded.pipelines == ()
    ((name, error),) = loaded.broken
    assert name == "a" and str(error).startswith("state.dir: must be a path, got a number")
    with pytest.raises(ConfigError, match=r"state\.dir"):
        loaded.pipeline("a")
