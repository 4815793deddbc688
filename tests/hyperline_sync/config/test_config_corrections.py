"""The `corrections` pipeline key and `tuning.corrections_approval_over`."""

from __future__ import annotations

import pytest

from hyperline_sync.config import ConfigError, parse_config


def _pipeline(**keys) -> dict:
    return {"pipelines": [{"name": "p", "source": {"kind": "s3_archive", "url": "file:///data", "source_id": "s1"},
                           **keys}]}


def test_defaults_report_and_ask_approval_over_a_thousand_deletions():
    pipeline = parse_config(_pipeline()).pipelines[0]
    assert (pipeline.corrections, pipeline.tuning.corrections_approval_over) == ("report", 1000)


def test_every_mode_is_accepted():
    for mode in ("off", "report", "retract"):
        assert parse_config(_pipeline(corrections=mode)).pipelines[0].corrections == mode


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"corrections": "delete"}, "pipelines[0].corrections"),
        ({"tuning": {"corrections_approval_over": -1}}, "pipelines[0].tuning.corrections_approval_over: must be >= 0"),
    ],
)
def test_bad_values_name_the_key(keys, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(_pipeline(**keys))
    assert str(caught.value).startswith(message)
