"""The provider metadata that registers the ``hyperline`` connection type with Airflow."""

from __future__ import annotations

import json
from pathlib import Path

import airflow
import jsonschema

from hyperline_provider import get_provider_info


def test_provider_info_matches_airflows_runtime_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())

    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_and_form() -> None:
    (connection,) = get_provider_info()["connection-types"]

    assert connection["connection-type"] == "hyperline"
    assert connection["hook-class-name"] == "hyperline_provider.hooks.hyperline.HyperlineHook"
    assert connection["hook-name"] == "Hyperline"
    behaviour = connection["ui-field-behaviour"]
    assert set(behaviour["hidden-fields"]) == {"login", "port", "schema", "extra"}
    assert behaviour["relabeling"]["password"] == "API key"
    assert behaviour["placeholders"]["host"] == "https://ingest.hyperline.co"
    fields = connection["conn-fields"]
    assert set(fields) == {"batch_size", "timeout", "max_requests_per_second"}
    assert fields["batch_size"]["schema"]["default"] == 5000
    assert fields["batch_size"]["schema"]["maximum"] == 5000


def test_task_runtime_resolves_the_hook_class() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["hyperline"]

    assert hook is not None
    assert hook.hook_class_name == "hyperline_provider.hooks.hyperline.HyperlineHook"
    assert hook.connection_id_attribute_name == "hyperline_conn_id"


def test_providers_manager_registers_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()

    assert manager.field_behaviours["hyperline"]["relabeling"]["password"] == "API key"
    assert "extra__hyperline__batch_size" in manager.connection_form_widgets
