"""Hyperline provider: registers the ``hyperline`` connection type with Airflow.

Airflow 3 only takes connection types from provider distributions, so this project declares the
``apache_airflow_provider`` entry point (see ``pyproject.toml``) pointing at :func:`get_provider_info`.
The connection form is declared here (``conn-fields`` / ``ui-field-behaviour``) rather than with the
hook's deprecated ``get_connection_form_widgets()`` / ``get_ui_field_behaviour()`` methods, so the UI
can build the form without importing the hook.
"""

from __future__ import annotations

from typing import Any

from hyperline_provider.limits import (
    DEFAULT_TIMEOUT,
    MAX_BATCH_EVENTS,
    RATE_LIMIT_REQUESTS,
    RATE_LIMIT_WINDOW_SECONDS,
)

# Must equal the distribution name in pyproject.toml: Airflow refuses a provider whose
# "package-name" differs from the installed distribution.
PACKAGE_NAME = "segment-hyperline-sync"
CONN_TYPE = "hyperline"
HOOK_CLASS_NAME = "hyperline_provider.hooks.hyperline.HyperlineHook"
PRODUCTION_HOST = "https://ingest.hyperline.co"
SANDBOX_HOST = "https://sandbox.ingest.hyperline.co"


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Hyperline",
        "description": "Hyperline usage-event ingestion (`Hyperline <https://www.hyperline.co/>`__).",
        "integrations": [
            {
                "integration-name": "Hyperline",
                "external-doc-url": "https://docs.hyperline.co/api-reference/endpoints/billable-events/ingest-billable-events",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Hyperline", "python-modules": ["hyperline_provider.hooks.hyperline"]},
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": "Hyperline",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "port", "schema", "extra"],
                    "relabeling": {"host": "Ingest URL", "password": "API key"},
                    "placeholders": {
                        "host": PRODUCTION_HOST,
                        "password": "prod_... (production) or test_... (sandbox)",
                    },
                },
                "conn-fields": {
                    "batch_size": {
                        "label": "Batch size",
                        "description": f"Events per POST /v1/events/batch request (1-{MAX_BATCH_EVENTS}).",
                        "schema": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": MAX_BATCH_EVENTS,
                            "default": MAX_BATCH_EVENTS,
                        },
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "description": f"Per-request timeout; empty means {DEFAULT_TIMEOUT:g} seconds.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "max_requests_per_second": {
                        "label": "Max requests per second",
                        "description": (
                            "Client-side request rate limit per worker; empty means no limit. Hyperline allows "
                            f"{RATE_LIMIT_REQUESTS} requests per {RATE_LIMIT_WINDOW_SECONDS} s per API key."
                        ),
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                },
            }
        ],
    }
