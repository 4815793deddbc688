"""The run limits of `tuning` (rejected share, volume share, empty partitions) and
`mapping.allow_properties`: defaults, accepted values, and refused ones by key."""

from __future__ import annotations

import pytest

from hyperline_sync.config import ConfigError, MappingConfig, TuningConfig, parse_config, parse_mapping


def pipeline(**keys: object) -> dict:
    return {"pipelines": [{"name": "p", "source": {"kind": "s3_archive", "url": "file:///d", "source_id": "s"},
                           **keys}]}


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return str(caught.value)


def test_defaults() -> None:
    tuning = TuningConfig()
    assert (tuning.max_rejected_share, tuning.min_volume_share, tuning.empty_partition) == (0.5, 0.1, "warn")
    assert MappingConfig().allow_properties == ()


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [
        ({"max_rejected_share": 1}, ("max_rejected_share", 1.0)),
        ({"max_rejected_share": 0.01}, ("max_rejected_share", 0.01)),
        ({"min_volume_share": 0}, ("min_volume_share", 0.0)),
        ({"min_volume_share": 1}, ("min_volume_share", 1.0)),
        ({"empty_partition": "fail"}, ("empty_partition", "fail")),
        ({"empty_partition": "warn"}, ("empty_partition", "warn")),
    ],
)
def test_accepted_values(tuning: dict, expected: tuple) -> None:
    parsed = parse_config(pipeline(tuning=tuning)).pipelines[0].tuning
    assert getattr(parsed, expected[0]) == expected[1]


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [
        ({"max_rejected_share": 0}, "max_rejected_share: must be a number > 0 and <= 1, got 0"),
        ({"max_rejected_share": 1.5}, "max_rejected_share: must be a number > 0 and <= 1, got 1.5"),
        ({"max_rejected_share": True}, "max_rejected_share: must be a number > 0 and <= 1, got True"),
        ({"max_rejected_share": "0.5"}, "max_rejected_share: must be a number > 0 and <= 1, got '0.5'"),
        ({"max_rejected_share": None}, "max_rejected_share: must be a number > 0 and <= 1, got None"),
        ({"min_volume_share": -0.1}, "min_volume_share: must be a number >= 0 and <= 1, got -0.1"),
        ({"min_volume_share": 1.01}, "min_volume_share: must be a number >= 0 and <= 1, got 1.01"),
        ({"empty_partition": "skip"}, "empty_partition: must be one of: warn, fail, got 'skip'"),
        ({"empty_partition": None}, "empty_partition: must be one of: warn, fail, got None"),
        ({"empty_partiton": "fail"}, "empty_partiton: unknown key; did you mean 'empty_partition'?"),
    ],
)
def test_refused_values_name_the_key(tuning: dict, expected: str) -> None:
    assert error_of(pipeline(tuning=tuning)).startswith("pipelines[0].tuning." + expected)


def test_allow_properties_takes_credential_names_in_any_spelling() -> None:
    mapping = parse_mapping({"allow_properties": ["writeKey", "API_KEY"]})
    assert mapping.allow_properties == ("writeKey", "API_KEY")
    assert mapping.withheld.names == {"password", "secret", "authorization"}
    assert MappingConfig().withheld.names == {"writekey", "write_key", "password", "apikey", "api_key", "secret",
                                        "authorization"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"allow_properties": ["token"]}, "mapping.allow_properties[0]: 'token' is not a withheld property name"),
        ({"allow_properties": "writeKey"}, "mapping.allow_properties: must be a list of strings"),
        ({"allow_properties": [""]}, "mapping.allow_properties[0]: must not be empty"),
        ({"customer_id": "context.password"}, "mapping.customer_id: password is a credential"),
        ({"customer_id": "api_key"}, "mapping.customer_id: apiKey is a credential"),
    ],
)
def test_refused_mapping_values_name_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(raw)
    assert str(caught.value).startswith(expected)
