"""The hook's retry budget is configurable per pipeline (tuning.send_*) and reaches HyperlineHook."""

from __future__ import annotations

import pytest

from hyperline_sync.config import ConfigError, TuningConfig, parse_config
from hyperline_sync.orchestration.tasks import make_sender


def _pipeline(tuning: dict) -> dict:
    return {"pipelines": [{"name": "p", "source": {"kind": "s3_archive", "url": "file:///data", "source_id": "s1"},
                           "tuning": tuning}]}


def test_defaults_match_the_hook():
    tuning = TuningConfig()
    assert (tuning.send_max_attempts, tuning.send_backoff_seconds, tuning.send_max_retry_seconds) == (8, 1.0, 300.0)


def test_send_keys_reach_the_hook():
    config = parse_config(_pipeline({"send_max_attempts": 15, "send_backoff_seconds": 0.01,
                                     "send_max_retry_seconds": 30}))
    policy = make_sender(config.pipelines[0]).hook.retry_policy
    assert (policy.max_attempts, policy.backoff_base, policy.max_retry_seconds) == (15, 0.01, 30.0)


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"send_max_attempts": 0}, "pipelines[0].tuning.send_max_attempts: must be >= 1"),
        ({"send_max_attempts": 1.5}, "pipelines[0].tuning.send_max_attempts: must be an integer"),
        ({"send_backoff_seconds": -1}, "pipelines[0].tuning.send_backoff_seconds: must be a number of seconds"),
        ({"send_max_retry_seconds": "1m"}, "pipelines[0].tuning.send_max_retry_seconds: must be a number"),
        ({"send_backoff_seconds": True}, "pipelines[0].tuning.send_backoff_seconds: must be a number"),
    ],
)
def test_bad_send_keys_name_the_key(tuning, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(_pipeline(tuning))
    assert str(caught.value).startswith(message)
