"""Explaining a refused API key without printing it: which prefix it has, which environment the host is."""

from __future__ import annotations

from hyperline_provider import PRODUCTION_HOST, SANDBOX_HOST


def auth_message(conn_id: str, host: str, key: str, status: int | None, server_message: str) -> str:
    """Why Hyperline refused (or would refuse) the key of ``conn_id``; ``server_message`` is already redacted."""
    host = host.rstrip("/")
    head = f"Hyperline refused the API key of connection '{conn_id}'"
    head += f" (HTTP {status}: {server_message})." if status else f" ({server_message})."
    if not key:
        return f"{head} The connection has no API key: put it in the password (API key) field."
    environment = {PRODUCTION_HOST: "production", SANDBOX_HOST: "sandbox"}.get(host)
    prefix = next((p for p in ("prod_", "test_") if key.startswith(p)), None)
    advice = " The API key is missing, invalid, revoked or for the other environment."
    if prefix == "test_" and environment == "production":
        advice += (
            f" It starts with 'test_' (a sandbox key) but the host is production ({host}): "
            f"use {SANDBOX_HOST}, or a prod_ key."
        )
    elif prefix == "prod_" and environment == "sandbox":
        advice += (
            f" It starts with 'prod_' (a production key) but the host is the sandbox ({host}): "
            f"use {PRODUCTION_HOST}, or a test_ key."
        )
    elif prefix is None:
        advice += " It starts with neither 'prod_' nor 'test_', as Hyperline keys do."
    else:
        where = f"the {environment} host" if environment else "host"
        advice += f" It starts with '{prefix}', which fits {where} {host}: check it was not revoked."
    return head + advice
