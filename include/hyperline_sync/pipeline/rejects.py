"""Rejects as the dead letters can hold them: why a line failed, and what of it is kept.

A raw reject keeps the line cut to `RAW_PREVIEW_BYTES` with any writeKey value masked. A message
reject keeps the parsed message, but the dead letters are orjson lines, which nest at most 254
levels: a message nested deeper keeps its first `KEPT_DEPTH` levels, the rest replaced by a note,
so that one odd line can never stop its object's dead letters from being written.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["KEPT_DEPTH", "RAW_PREVIEW_BYTES", "TOO_DEEP_NOTE", "failure_reason", "raw_reject", "storable"]

RAW_PREVIEW_BYTES = 2048
KEPT_DEPTH = 200  # below orjson's 254, leaving room for the dead-letter row around the message
TOO_DEEP_NOTE = f"[nested deeper than {KEPT_DEPTH} levels: not kept]"
_WRITE_KEY = re.compile(r'("writeKey"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)')


def failure_reason(exc: Exception) -> str:
    """The reject reason of a line whose decoding or mapping raised `exc`: `too_deep` when it is
    nested beyond what the decoder or the mapping can recurse into, else `malformed_json`."""
    return "too_deep" if isinstance(exc, RecursionError) else "malformed_json"


def raw_reject(reason: str, source_key: str, line_no: int, line: bytes, detail: str) -> dict[str, Any]:
    preview = line[:RAW_PREVIEW_BYTES].decode("utf-8", errors="replace")
    return {
        "reason": reason,
        "source_key": source_key,
        "line_no": line_no,
        "raw": _WRITE_KEY.sub(r'\1"[REDACTED]"', preview)[:RAW_PREVIEW_BYTES],
        "detail": detail,
    }


def storable(message: dict[str, Any]) -> dict[str, Any]:
    """`message` itself when a dead letter can hold it (nearly always), else a copy cut at KEPT_DEPTH."""
    try:
        orjson.dumps([[message]], default=str)  # two levels for the dead-letter row that holds it
    except TypeError:
        return _cut(message, KEPT_DEPTH)
    return message


def _cut(value: Any, levels: int) -> Any:
    if type(value) is dict:
        return {k: _cut(v, levels - 1) for k, v in value.items()} if levels else TOO_DEEP_NOTE
    if type(value) is list:
        return [_cut(v, levels - 1) for v in value] if levels else TOO_DEEP_NOTE
    return value
